// The result types of the pipeline: what the CLI prints and the HTTP service returns.

import Foundation

// The values a caller of `Recognizer` handles, re-exported so `import ASR` is enough.
@_exported import enum Audio.AudioError
@_exported import enum Audio.AudioLog
@_exported import struct Audio.AudioWarning
@_exported import struct Audio.PreparedAudio
@_exported import enum Backend.ComputeDevice
@_exported import enum ConformerModel.Precision
@_exported import enum Decoding.DecoderKind
@_exported import enum Decoding.Decoder
@_exported import struct Decoding.Language
@_exported import struct Decoding.Vocabulary

/// One emitted token with its time span on the audio.
public struct TokenTiming: Sendable, Codable, Equatable {
    /// The vocabulary piece with `▁` replaced by a space (a leading space marks a word start).
    public var text: String
    /// Local id in the language's 257-entry vocabulary.
    public var id: Int
    /// Seconds from the start of the audio: the first encoder frame of the token.
    public var start: Double
    /// Seconds: the end of the token's last frame (CTC) or start + one frame (RNN-T).
    public var end: Double
    /// Log-probability of the token at its emission frame.
    public var logProb: Float

    /// Memberwise initialiser.
    public init(text: String, id: Int, start: Double, end: Double, logProb: Float) {
        self.text = text; self.id = id; self.start = start; self.end = end; self.logProb = logProb
    }
}

/// A word (tokens between word starts) with its time span.
public struct WordTiming: Sendable, Codable, Equatable {
    /// The word's text.
    public var word: String
    /// Seconds from the start of the audio.
    public var start: Double
    /// Seconds from the start of the audio.
    public var end: Double
    /// Memberwise initialiser.
    public init(word: String, start: Double, end: Double) {
        self.word = word; self.start = start; self.end = end
    }
}

/// The text of one utterance with everything known about how it was produced.
///
/// Token times lie within the audio: the initialiser clamps every start and end to
/// [0, `duration`] (a token's last encoder frame can reach up to one frame past the last
/// sample), so words, cues and segments built from the tokens do too.
public struct Transcript: Sendable, Codable, Equatable {
    /// The text, as the release's wrapper produces it.
    public var text: String
    /// The language code it was decoded in.
    public var language: String
    /// The decoder that produced it.
    public var decoder: DecoderKind
    /// Seconds of audio transcribed.
    public var duration: Double
    /// Mean token log-probability (0 when no token was emitted).
    public var confidence: Double
    /// Every emitted token with its times, within [0, `duration`].
    public var tokens: [TokenTiming]
    /// What was wrong with the audio although it was transcribed (e.g. a truncated file: the
    /// text covers only what the file held), in order; empty when nothing was.
    public var warnings: [AudioWarning]

    /// Memberwise initialiser; token times are clamped to [0, `duration`].
    public init(text: String, language: String, decoder: DecoderKind, duration: Double,
                confidence: Double, tokens: [TokenTiming], warnings: [AudioWarning] = []) {
        self.text = text; self.language = language; self.decoder = decoder
        self.duration = duration; self.confidence = confidence
        self.tokens = tokens.map { Self.clamped($0, to: duration) }
        self.warnings = warnings
    }

    /// Decodes a transcript; `warnings` may be absent (transcripts written before it existed).
    public init(from decoder: any Swift.Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(text: try c.decode(String.self, forKey: .text), language: try c.decode(String.self, forKey: .language),
                  decoder: try c.decode(DecoderKind.self, forKey: .decoder), duration: try c.decode(Double.self, forKey: .duration),
                  confidence: try c.decode(Double.self, forKey: .confidence),
                  tokens: try c.decode([TokenTiming].self, forKey: .tokens),
                  warnings: try c.decodeIfPresent([AudioWarning].self, forKey: .warnings) ?? [])
    }

    /// A token with its times within [0, `duration`] (and end ≥ start).
    static func clamped(_ token: TokenTiming, to duration: Double) -> TokenTiming {
        guard duration.isFinite, duration >= 0 else { return token }
        var token = token
        token.start = min(max(token.start, 0), duration)
        token.end = min(max(token.end, token.start), duration)
        return token
    }
}


// MARK: - JSON

extension Transcript {
    /// The one JSON rendering of a transcript (`vani transcribe --format json`), one line:
    /// `{"confidence", "decoder", "duration", "file", "language", "text", "tokens": [{"end",
    /// "start", "text"}]}` with keys sorted, seconds rounded to the millisecond and confidence
    /// to 1e-4. `file` is omitted when nil; `warnings` (`[{"code", "message"}]`) only when the
    /// audio had something to report (e.g. a truncated file).
    public func jsonLine(file: String? = nil) -> String {
        struct Token: Encodable { let text: String; let start: Double; let end: Double }
        struct Line: Encodable {
            let file: String?
            let text: String
            let language: String
            let decoder: String
            let duration: Double
            let confidence: Double
            let tokens: [Token]
            let warnings: [AudioWarning]?
        }
        func millis(_ seconds: Double) -> Double { (seconds * 1000).rounded() / 1000 }
        let line = Line(file: file, text: text, language: language, decoder: decoder.rawValue,
                        duration: millis(duration), confidence: (confidence * 10000).rounded() / 10000,
                        tokens: tokens.map { Token(text: $0.text, start: millis($0.start), end: millis($0.end)) },
                        warnings: warnings.isEmpty ? nil : warnings)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Strings and finite numbers always encode; a NaN confidence (impossible from the
        // decoders) would be the only failure.
        return (try? encoder.encode(line)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}
