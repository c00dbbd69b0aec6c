// Greedy CTC and RNN-T decoding over one language's 257 outputs (docs/MODEL.md §2), the
// vocabulary that turns local ids into text, and token timings on the encoder's frame grid.

import ConformerModel
import Foundation
import TensorModule

/// Tokens chosen by a decoder, with the frames they were emitted on.
public struct DecodedTokens: Sendable, Equatable {
    /// Local ids (0 ..< blockSize) in emission order.
    public var ids: [Int] = []
    /// First encoder frame of each token.
    public var startFrames: [Int] = []
    /// Last encoder frame of each token (CTC: end of the run; RNN-T: the emission frame).
    public var endFrames: [Int] = []
    /// Log-probability of each token at its first frame.
    public var logProbs: [Float] = []

    /// Memberwise initialiser.
    public init() {}
}

/// One language's pieces: index 0 `<unk>`, `▁` marks a word start, the last index is the blank.
public struct Vocabulary: Sendable {
    /// The pieces by local id.
    public let pieces: [String]
    /// Memberwise initialiser.
    public init(pieces: [String]) { self.pieces = pieces }

    /// The piece with `▁` turned into a space.
    public func text(of id: Int) -> String { Self.spacing(pieces[id]) }

    /// The wrapper's detokenisation: concatenate, `▁` → space, strip. `<unk>` is kept.
    public func detokenize(_ ids: [Int]) -> String {
        Self.spacing(ids.map { pieces[$0] }.joined()).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// `▁` → space per Unicode scalar, as Python's `str.replace` does. `String`'s own
    /// replacement compares grapheme clusters, and `▁` followed by a combining vowel sign
    /// (`▁ु`) is one cluster, so it would be left in the text.
    static func spacing(_ text: String) -> String {
        var scalars = String.UnicodeScalarView()
        scalars.append(contentsOf: text.unicodeScalars.map { $0 == "\u{2581}" ? " " : $0 })
        return String(scalars)
    }
}

/// CTC greedy search: per-frame argmax, collapse repeats, drop the blank.
public enum CTCGreedy {
    /// - Parameters:
    ///   - logProbs: [frames, classes] log-probabilities with the blank at index `blank`.
    public static func decode(logProbs: UnsafePointer<Float>, frames: Int, classes: Int, blank: Int) -> DecodedTokens {
        var result = DecodedTokens()
        var previous = -1
        for t in 0..<frames {
            let row = logProbs + t * classes
            let (k, value) = argmax(row, count: classes)
            if k != blank {
                if k != previous {
                    result.ids.append(k)
                    result.startFrames.append(t)
                    result.endFrames.append(t)
                    result.logProbs.append(value)
                } else {
                    result.endFrames[result.endFrames.count - 1] = t
                }
            }
            previous = k
        }
        return result
    }
}

/// RNN-T greedy search exactly as the release's wrapper runs it: SOS first, at most
/// `maxSymbols` per frame, the state kept on blank, the emitted local id fed back.
public enum RNNTGreedy {
    /// Greedy RNN-T over encoder frames [frames, d] with one language's joint post-net; returns
    /// local ids with their frames.
    public static func decode(transducer: Transducer, postNet: LinearWeights, encoded: UnsafePointer<Float>,
                              frames: Int) -> DecodedTokens {
        let c = transducer.config
        let j = c.jointHidden
        let classes = postNet.outFeatures
        let f = transducer.projectEncoder(encoded, frames: frames)                 // (T', J)
        let scratch = Tensor(zeros: [transducer.stepScratchCount + 2 * j + classes])
        let stepScratch = scratch.pointer
        let jointScratch = scratch.pointer + transducer.stepScratchCount         // (J)
        let projected = jointScratch + j                                          // (J)
        let logits = projected + j                                                // (257)

        var result = DecodedTokens()
        // The prediction for (last token, state), cached across blank frames: `candidate` is the
        // state after feeding that token, adopted only when a symbol is emitted. Both states are
        // allocated once; an emission swaps them.
        var state = transducer.initialState()
        var candidate = transducer.initialState()
        transducer.predict(token: c.sosId, from: state, into: &candidate, projected: projected, scratch: stepScratch)
        for t in 0..<frames {
            let frame = f.pointer + t * j
            var emitted = 0
            while emitted < c.maxSymbols {
                transducer.joint(encoderFrame: frame, projected: projected, postNet: postNet,
                                 scratch: jointScratch, into: logits)
                let (k, _) = argmax(logits, count: classes)
                if k == c.blankLocal { break }
                logSoftmaxRows(logits, rows: 1, cols: classes)
                result.ids.append(k)
                result.startFrames.append(t)
                result.endFrames.append(t)
                result.logProbs.append(logits[k])
                emitted += 1
                swap(&state, &candidate)
                transducer.predict(token: k, from: state, into: &candidate, projected: projected, scratch: stepScratch)
            }
        }
        return result
    }
}
