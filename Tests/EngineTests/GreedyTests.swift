// CTC and RNN-T greedy search on small hand-made inputs, where every expected token, frame and
// log-probability is worked out by hand (the parity tests check them end to end on real models).

import ConformerModel
import Decoding
import Foundation
import TensorModule
import Testing
import WeightFormat

/// log_softmax(row)[k], in Double.
private func logSoftmax(_ row: [Float], _ k: Int) -> Float {
    let m = row.max()!
    let sum = row.reduce(0.0) { $0 + exp(Double($1 - m)) }
    return Float(Double(row[k] - m) - log(sum))
}

@Suite("Greedy search on hand-made inputs")
struct GreedyTests {
    // MARK: - CTC

    /// Rows of log-probabilities over 3 tokens + the blank (index 3) whose argmax is `winners`.
    static func ctcRows(_ winners: [Int]) -> [Float] {
        winners.flatMap { w in (0..<4).map { $0 == w ? Float(-0.1) : Float(-3 - $0) } }
    }

    @Test func ctcCollapsesRepeatsAndDropsBlanks() {
        // frames:  0  1  2  3  4  5  6  7  8
        let winners = [1, 1, 3, 1, 2, 2, 3, 3, 0]
        let rows = Self.ctcRows(winners)
        let decoded = rows.withUnsafeBufferPointer {
            CTCGreedy.decode(logProbs: $0.baseAddress!, frames: winners.count, classes: 4, blank: 3)
        }
        #expect(decoded.ids == [1, 1, 2, 0], "a blank between two 1s keeps both")
        #expect(decoded.startFrames == [0, 3, 4, 8])
        #expect(decoded.endFrames == [1, 3, 5, 8], "a run ends on its last frame")
        #expect(decoded.logProbs == [-0.1, -0.1, -0.1, -0.1])
    }

    @Test func ctcOfOnlyBlanksIsEmpty() {
        let rows = Self.ctcRows([3, 3, 3])
        let decoded = rows.withUnsafeBufferPointer {
            CTCGreedy.decode(logProbs: $0.baseAddress!, frames: 3, classes: 4, blank: 3)
        }
        #expect(decoded == DecodedTokens())
    }

    @Test func ctcTakesTheFirstOfTiedMaxima() {
        // Equal values: the lower index wins, as torch.argmax does.
        let rows: [Float] = [-1, -1, -5, -5]
        let decoded = rows.withUnsafeBufferPointer {
            CTCGreedy.decode(logProbs: $0.baseAddress!, frames: 1, classes: 4, blank: 3)
        }
        #expect(decoded.ids == [0])
    }

    // MARK: - RNN-T

    /// A transducer small enough to follow by hand: d = J = 3, H = 1, one LSTM layer, two tokens
    /// and the blank (local index 2), SOS = embedding row 3. joint_enc and the post-net are
    /// identities and the activation is the identity, so the logits of frame t are the frame's
    /// three values plus joint_pred(h) = [0, 0, blankBonus · h].
    ///
    /// The LSTM: W_ih = [0, 0, 10, 10]ᵀ (input and forget gates σ(0) = ½, cell g = tanh(10x),
    /// output o = σ(10x)), W_hh = 0, biases 0; embed[SOS] = 0, embed[0] = 1, embed[1] = 0.
    /// Feeding SOS from zero: c = 0, h = 0. Feeding token 0 from c: c' = ½c + ½·tanh(10),
    /// h' = σ(10)·tanh(c').
    static func transducer(blankBonus: Float, maxSymbols: Int) -> (Transducer, LinearWeights) {
        let config = RNNTConfig(vocabSize: 4, predHidden: 1, predLayers: 1, jointHidden: 3,
                                jointActivation: .identity, maxSymbols: maxSymbols, sosId: 3, blankLocal: 2)
        func weights(_ values: [Float], out: Int, in n: Int) -> LinearWeights {
            LinearWeights(weight: FloatWeights(shape: [out, n], values: values), bias: nil, out: out, in: n)
        }
        let identity = weights([1, 0, 0, 0, 1, 0, 0, 0, 1], out: 3, in: 3)
        let transducer = Transducer(
            config: config, embed: FloatWeights(shape: [4, 1], values: [1, 0, 0, 0]),
            weightIH: [weights([0, 0, 10, 10], out: 4, in: 1)], weightHH: [weights([0, 0, 0, 0], out: 4, in: 1)],
            gateBias: [Tensor(zeros: [4])], jointEnc: identity, jointPred: weights([0, 0, blankBonus], out: 3, in: 1),
            postNets: ["xx": identity])
        return (transducer, identity)
    }

    static func decode(_ transducer: Transducer, _ postNet: LinearWeights, frames: [[Float]]) -> DecodedTokens {
        let flat = frames.flatMap { $0 }
        return flat.withUnsafeBufferPointer {
            RNNTGreedy.decode(transducer: transducer, postNet: postNet, encoded: $0.baseAddress!, frames: frames.count)
        }
    }

    @Test func rnntEmitsUpToMaxSymbolsPerFrame() {
        // No prediction-network influence (bonus 0): a token-favouring frame emits until the cap.
        let (transducer, postNet) = Self.transducer(blankBonus: 0, maxSymbols: 3)
        let frames: [[Float]] = [[5, 0, 0], [0, 0, 5], [0, 5, 0]]
        let decoded = Self.decode(transducer, postNet, frames: frames)
        #expect(decoded.ids == [0, 0, 0, 1, 1, 1])
        #expect(decoded.startFrames == [0, 0, 0, 2, 2, 2])
        #expect(decoded.endFrames == decoded.startFrames, "RNN-T: a token ends on its emission frame")
        let p0 = logSoftmax([5, 0, 0], 0), p1 = logSoftmax([0, 5, 0], 1)
        for (got, want) in zip(decoded.logProbs, [p0, p0, p0, p1, p1, p1]) {
            #expect(abs(got - want) < 1e-6, "log-prob \(got) vs \(want)")
        }
    }

    @Test func rnntFeedsTheEmittedTokenBackAndKeepsTheStateOnBlank() {
        // Bonus 100: after token 0 is fed (h = σ(10)·tanh(0.5) ≈ 0.462) the blank gets ≈ +46.2.
        // frame 0 [5, 0, 0]:  h = 0 (SOS) → emits 0; fed → blank 46.2 > 5 → next frame.
        // frame 1 [5, 0, 0]:  blank 46.2 wins; nothing emitted, the state stays.
        // frame 2 [60, 0, 0]: 60 > 46.2 → emits 0; fed again: c = 0.75, h ≈ 0.635 → blank 63.5 > 60.
        let (transducer, postNet) = Self.transducer(blankBonus: 100, maxSymbols: 10)
        let decoded = Self.decode(transducer, postNet, frames: [[5, 0, 0], [5, 0, 0], [60, 0, 0]])
        #expect(decoded.ids == [0, 0])
        #expect(decoded.startFrames == [0, 2])
        let h1 = Float(1 / (1 + exp(-10.0)) * tanh(0.5 * tanh(10.0)))
        let expected = [logSoftmax([5, 0, 0], 0), logSoftmax([60, 0, 100 * h1], 0)]
        for (got, want) in zip(decoded.logProbs, expected) {
            #expect(abs(got - want) < 1e-4, "log-prob \(got) vs \(want)")
        }
    }

    @Test func rnntOfNoFramesIsEmpty() {
        let (transducer, postNet) = Self.transducer(blankBonus: 0, maxSymbols: 3)
        let decoded = [Float(0)].withUnsafeBufferPointer {
            RNNTGreedy.decode(transducer: transducer, postNet: postNet, encoded: $0.baseAddress!, frames: 0)
        }
        #expect(decoded == DecodedTokens())
    }
}
