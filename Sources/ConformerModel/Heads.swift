// The two decoder heads on top of the encoder: the CTC projection and the RNN-T prediction
// network + joint (docs/MODEL.md §2).

import Foundation
import TensorModule
import WeightFormat

// MARK: - CTC

/// `ctc_decoder.decoder_layers.0`: Conv1d(d → classes, k = 1), evaluated only on the columns of
/// one language's block plus the shared blank.
public struct CTCHead: Sendable {
    /// decoder_layers.0 weight [classes, d, 1] and bias [classes].
    public let projection: LinearWeights
    /// The configuration this part was built from.
    public let config: CTCConfig
    /// Model width (d_model).
    public let dModel: Int

    init(_ r: WeightReader, config: CTCConfig, dModel: Int) throws(ModelLoadError) {
        projection = try LinearWeights(r, "decoder_layers.0", out: config.numClasses, in: dModel,
                                       weightShape: [config.numClasses, dModel, 1])
        self.config = config
        self.dModel = dModel
    }

    /// Log-probabilities over one language's block of global ids and the shared blank:
    /// log_softmax(logits[:, block ∪ {blank}]) → [frames, block.count + 1], the blank last.
    public func logProbs(_ encoded: UnsafePointer<Float>, frames: Int, block: Range<Int>) -> Tensor {
        let width = block.count + 1
        let out = Tensor(zeros: [frames, width])   // (T', 257)
        let o = out.pointer
        projection.apply(encoded, rows: frames, outputs: block, into: o, ldy: width)
        projection.apply(encoded, rows: frames, outputs: config.blankId..<(config.blankId + 1),
                         into: o + block.count, ldy: width)
        logSoftmaxRows(o, rows: frames, cols: width)
        return out
    }
}

// MARK: - RNN-T

/// The LSTM state of the prediction network: h and c for every layer, [layers, H] each.
public struct PredictionState: Sendable {
    /// Hidden state of every layer, [layers, H].
    public var h: [Float]
    /// Cell state of every layer, [layers, H].
    public var c: [Float]
}

/// `rnnt_decoder` (embedding → stacked LSTM) and the joint (`joint_enc`, `joint_pred`, the
/// activation and one `joint_post_net_<lang>` per language).
public struct Transducer: Sendable {
    /// The configuration this part was built from.
    public let config: RNNTConfig
    /// prediction.embed.weight [vocab, H]
    public let embed: FloatWeights
    /// dec_rnn.lstm.weight_ih_l{k} [4H, in] (its bias is in `gateBias`)
    public let weightIH: [LinearWeights]
    /// dec_rnn.lstm.weight_hh_l{k} [4H, H] (its bias is in `gateBias`)
    public let weightHH: [LinearWeights]
    /// bias_ih_l{k} + bias_hh_l{k}, summed once at load, [4H].
    public let gateBias: [Tensor]
    /// joint.enc [J, d]
    public let jointEnc: LinearWeights
    /// joint.pred [J, H]
    public let jointPred: LinearWeights
    /// joint.post_net.{lang} [257, J]
    public let postNets: [String: LinearWeights]

    /// A transducer from its parts (tests, computed weights); shapes as documented on each field.
    public init(config: RNNTConfig, embed: FloatWeights, weightIH: [LinearWeights], weightHH: [LinearWeights],
                gateBias: [Tensor], jointEnc: LinearWeights, jointPred: LinearWeights, postNets: [String: LinearWeights]) {
        precondition(weightIH.count == config.predLayers && weightHH.count == config.predLayers
                     && gateBias.count == config.predLayers, "one LSTM weight pair and bias per layer")
        self.config = config; self.embed = embed; self.weightIH = weightIH; self.weightHH = weightHH
        self.gateBias = gateBias; self.jointEnc = jointEnc; self.jointPred = jointPred; self.postNets = postNets
    }

    init(_ r: WeightReader, config c: RNNTConfig, dModel: Int, languages: [String: LanguageEntry])
        throws(ModelLoadError) {
        config = c
        let h = c.predHidden
        let dec = r.scoped("rnnt_decoder.prediction.")
        embed = try dec("embed.weight", [c.vocabSize, h])
        var ih: [LinearWeights] = [], hh: [LinearWeights] = [], bias: [Tensor] = []
        for k in 0..<c.predLayers {
            ih.append(LinearWeights(weight: try dec("dec_rnn.lstm.weight_ih_l\(k)", [4 * h, h]), bias: nil, out: 4 * h, in: h))
            hh.append(LinearWeights(weight: try dec("dec_rnn.lstm.weight_hh_l\(k)", [4 * h, h]), bias: nil, out: 4 * h, in: h))
            let bi = try dec("dec_rnn.lstm.bias_ih_l\(k)", [4 * h])
            let bh = try dec("dec_rnn.lstm.bias_hh_l\(k)", [4 * h])
            let sum = Tensor(zeros: [4 * h])
            add(bi.pointer, bh.pointer, into: sum.pointer, count: 4 * h)
            bias.append(sum)
        }
        weightIH = ih; weightHH = hh; gateBias = bias
        let joint = r.scoped("joint.")
        jointEnc = try LinearWeights(joint, "enc", out: c.jointHidden, in: dModel)
        jointPred = try LinearWeights(joint, "pred", out: c.jointHidden, in: h)
        var nets: [String: LinearWeights] = [:]
        for (code, entry) in languages {
            nets[code] = try LinearWeights(joint, "post_net.\(code)", out: entry.blockSize + 1, in: c.jointHidden)
        }
        postNets = nets
    }

    /// The zero state the wrapper starts from.
    public func initialState() -> PredictionState {
        let n = config.predLayers * config.predHidden
        return PredictionState(h: [Float](repeating: 0, count: n), c: [Float](repeating: 0, count: n))
    }

    /// `joint_enc` over all encoder frames: [T', d] → [T', J].
    public func projectEncoder(_ encoded: UnsafePointer<Float>, frames: Int) -> Tensor {
        let out = Tensor(zeros: [frames, config.jointHidden])   // (T', J)
        jointEnc.apply(encoded, rows: frames, into: out.pointer)
        return out
    }

    /// One prediction-network step: feeds `token` (an embedding row) through the LSTM stack from
    /// `state`, writes the new state into `next` (same sizes; no allocation) and `joint_pred(g)`
    /// [J] into `projected`. `scratch` holds `stepScratchCount` floats.
    public func predict(token: Int, from state: PredictionState, into next: inout PredictionState,
                        projected: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>) {
        precondition(token >= 0 && token < config.vocabSize, "token \(token) outside the embedding (\(config.vocabSize) rows)")
        let hidden = config.predHidden
        let gates = scratch                       // (4H)
        let input = scratch + 4 * hidden          // (H)
        input.update(from: embed.pointer + token * hidden, count: hidden)
        next.h.withUnsafeMutableBufferPointer { hBuf in
            next.c.withUnsafeMutableBufferPointer { cBuf in
                state.h.withUnsafeBufferPointer { hBuf.baseAddress!.update(from: $0.baseAddress!, count: $0.count) }
                state.c.withUnsafeBufferPointer { cBuf.baseAddress!.update(from: $0.baseAddress!, count: $0.count) }
                for layer in 0..<config.predLayers {
                    let h = hBuf.baseAddress! + layer * hidden
                    let c = cBuf.baseAddress! + layer * hidden
                    gates.update(from: gateBias[layer].pointer, count: 4 * hidden)
                    weightIH[layer].apply(input, rows: 1, into: gates, epilogue: .none, accumulate: true)   // (4H)
                    weightHH[layer].apply(h, rows: 1, into: gates, epilogue: .none, accumulate: true)       // (4H)
                    // PyTorch gate order: input, forget, cell (g), output.
                    for j in 0..<hidden {
                        let i = 1 / (1 + expf(-gates[j]))
                        let f = 1 / (1 + expf(-gates[hidden + j]))
                        let g = tanhf(gates[2 * hidden + j])
                        let o = 1 / (1 + expf(-gates[3 * hidden + j]))
                        c[j] = f * c[j] + i * g
                        h[j] = o * tanhf(c[j])
                    }
                    input.update(from: h, count: hidden)
                }
            }
        }
        jointPred.apply(input, rows: 1, into: projected)
    }

    /// Floats of scratch `predict` needs.
    public var stepScratchCount: Int { 5 * config.predHidden }

    /// The joint for one frame: post_net(act(f + g)) → [257] logits into `out`;
    /// `scratch` holds J floats.
    public func joint(encoderFrame f: UnsafePointer<Float>, projected g: UnsafePointer<Float>,
                      postNet: LinearWeights, scratch: UnsafeMutablePointer<Float>, into out: UnsafeMutablePointer<Float>) {
        let j = config.jointHidden
        add(f, g, into: scratch, count: j)
        switch config.jointActivation {
        case .relu: relu(scratch, count: j)
        case .tanh: TensorModule.tanh(scratch, count: j)
        case .sigmoid: sigmoid(scratch, count: j)
        case .identity: break
        }
        postNet.apply(scratch, rows: 1, into: out)
    }
}
