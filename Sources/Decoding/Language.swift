// What a request's language and decoder become at the door: values that carry everything the
// decoders need, resolved once against the loaded model, so nothing below checks again.

import ConformerModel

/// Which decoder turns encoder frames into tokens.
public enum DecoderKind: String, Sendable, Codable, CaseIterable {
    /// Greedy CTC over the language's block of the CTC head.
    case ctc
    /// Greedy RNN-T through the prediction network and the language's joint post-net.
    case rnnt
}

/// One language of a loaded model, resolved from its code: its vocabulary, its block of the CTC
/// output and, when the model has an RNN-T head, its joint post-net.
///
/// Built only by `Language.resolve` (or `init` for tests), so holding one means the code was
/// checked against the model.
public struct Language: Sendable {
    /// The code (`hi`, `ta`, …).
    public let code: String
    /// The language's 257 pieces (256 tokens and the blank).
    public let vocabulary: Vocabulary
    /// Global ids of the language's tokens in the CTC output (hi = 1536..<1792 in the release).
    public let ctcBlock: Range<Int>
    /// `joint.post_net.<code>` [257, J]: the language's block of the RNN-T joint; nil when the
    /// model has no RNN-T head.
    public let postNet: LinearWeights?

    /// A language from its parts.
    public init(code: String, vocabulary: Vocabulary, ctcBlock: Range<Int>, postNet: LinearWeights?) {
        self.code = code
        self.vocabulary = vocabulary
        self.ctcBlock = ctcBlock
        self.postNet = postNet
    }

    /// The English names of the release's 22 languages, lower case as OpenAI writes a language
    /// (`"hindi"`), by code.
    public static let englishNames: [String: String] = [
        "as": "assamese", "bn": "bengali", "brx": "bodo", "doi": "dogri", "gu": "gujarati", "hi": "hindi",
        "kn": "kannada", "kok": "konkani", "ks": "kashmiri", "mai": "maithili", "ml": "malayalam",
        "mni": "manipuri", "mr": "marathi", "ne": "nepali", "or": "odia", "pa": "punjabi", "sa": "sanskrit",
        "sat": "santali", "sd": "sindhi", "ta": "tamil", "te": "telugu", "ur": "urdu",
    ]

    /// The English name of `code` in lower case (`"hi"` → `"hindi"`); the code itself when the
    /// name is not known.
    public static func englishName(of code: String) -> String { englishNames[code] ?? code }

    /// Every language of `model` (its configuration's entries), by code.
    public static func all(in model: ConformerASRModel) -> [String: Language] {
        var result: [String: Language] = [:]
        for (code, entry) in model.config.languages {
            result[code] = Language(code: code, vocabulary: Vocabulary(pieces: entry.vocabulary),
                                    ctcBlock: entry.blockStart..<(entry.blockStart + entry.blockSize),
                                    postNet: model.transducer?.postNets[code])
        }
        return result
    }

    /// This language's decoder of `kind`, or nil when the model lacks that head.
    public func decoder(_ kind: DecoderKind, in model: ConformerASRModel) -> Decoder? {
        switch kind {
        case .ctc: return .ctc(model.ctc, block: ctcBlock)
        case .rnnt:
            guard let transducer = model.transducer, let postNet else { return nil }
            return .rnnt(transducer, postNet: postNet)
        }
    }
}

/// A decoder resolved for one language: the head and the language's part of it.
public enum Decoder: Sendable {
    /// Greedy CTC over `block` of the CTC head (and the shared blank).
    case ctc(CTCHead, block: Range<Int>)
    /// Greedy RNN-T with the language's joint post-net.
    case rnnt(Transducer, postNet: LinearWeights)

    /// Which kind it is.
    public var kind: DecoderKind {
        switch self {
        case .ctc: return .ctc
        case .rnnt: return .rnnt
        }
    }

    /// Tokens for encoder frames [frames, d].
    public func decode(_ encoded: UnsafePointer<Float>, frames: Int) -> DecodedTokens {
        switch self {
        case .ctc(let head, let block):
            let logProbs = head.logProbs(encoded, frames: frames, block: block)     // (T', block + 1)
            return CTCGreedy.decode(logProbs: logProbs.pointer, frames: frames, classes: block.count + 1,
                                    blank: block.count)
        case .rnnt(let transducer, let postNet):
            return RNNTGreedy.decode(transducer: transducer, postNet: postNet, encoded: encoded, frames: frames)
        }
    }
}
