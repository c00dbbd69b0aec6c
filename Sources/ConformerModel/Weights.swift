// The model's weights, one struct per block, each field beside its checkpoint key (NeMo's names,
// Weights/FORMAT.md). Loading is strict: every tensor present with its shape, none left unused.

import Foundation
import TensorModule
import WeightFormat

/// Errors loading a model from a weights file; each message ends with what to do.
public enum ModelLoadError: Error, CustomStringConvertible, Sendable, Equatable {
    case weights(WeightFormatError)
    case missingConfig(path: String)
    case badConfig(path: String, reason: String)
    case unusedTensors(path: String, names: [String])

    /// The message, ending with what to do.
    public var description: String {
        switch self {
        case .weights(let e): return e.description
        case .missingConfig(let path):
            return "\(path) has no 'vani.config' metadata: it was not written by vani-convert; convert the release with vani-convert"
        case .badConfig(let path, let reason):
            return "\(path): the model configuration is invalid (\(reason)); re-create the file with vani-convert"
        case .unusedTensors(let path, let names):
            let shown = names.prefix(5).joined(separator: ", ")
            return "\(path) holds \(names.count) tensor(s) this engine does not use (\(shown)\(names.count > 5 ? ", …" : "")): the file does not match its configuration; re-create it with vani-convert"
        }
    }
}

/// Typed access to the archive with the engine's error type.
struct WeightReader {
    let archive: WeightsArchive
    let prefix: String
    /// The precision of the matrices that `Precision.isReduced` names.
    var precision: Precision = .fp32

    func callAsFunction(_ name: String, _ shape: [Int]) throws(ModelLoadError) -> FloatWeights {
        do { return try archive.floats(prefix + name, shape: shape) } catch { throw .weights(error) }
    }

    func optional(_ name: String, _ shape: [Int]) throws(ModelLoadError) -> FloatWeights? {
        archive.info(prefix + name) == nil ? nil : try self(name, shape)
    }

    func scoped(_ more: String) -> WeightReader {
        WeightReader(archive: archive, prefix: prefix + more, precision: precision)
    }

    /// A weight matrix [out, in] (stored with `shape`) in the reader's precision. Reads what the
    /// file holds: int8 with `….weight_scale` is used in place for int8 (else dequantized), bf16
    /// in place for bf16; otherwise the fp32 view (widened from f16/bf16) is converted here and its
    /// pages are handed back to the kernel (`evict`), so quantizing at load keeps about one fp32
    /// matrix resident at a time.
    func reduced(_ name: String, _ shape: [Int], out: Int, in k: Int) throws(ModelLoadError) -> WeightStorage {
        let full = prefix + name
        guard let info = archive.info(full) else { throw .weights(.missingTensor(path: archive.path, tensor: full)) }
        do {
            if info.dtype == .i8 {
                let raw = try archive.raw(full, shape: shape)
                let scales = try archive.floats(Precision.scaleName(of: full), shape: [out])
                let q = ReducedWeights.int8(stored: raw.bytes, scales: scales, out: out, in: k, owner: archive)
                if precision == .int8 { return .int8(q) }
                var widened = [Float](repeating: 0, count: out * k)
                widened.withUnsafeMutableBufferPointer { b in
                    for o in 0..<out { q.widenRow(o, bf16: false, count: k, into: b.baseAddress! + o * k) }
                }
                let w = FloatWeights(shape: shape, values: widened)
                return precision == .bf16 ? .bf16(.bf16(from: w.pointer, out: out, in: k)) : .fp32(w)
            }
            if info.dtype == .bf16, precision == .bf16 {
                let raw = try archive.raw(full, shape: shape)
                return .bf16(ReducedWeights.bf16(stored: raw.bytes, out: out, in: k, owner: archive))
            }
        } catch { throw .weights(error) }
        let w = try self(name, shape)
        switch precision {
        case .fp32, .tf32: return .fp32(w)
        case .bf16:
            defer { archive.evict(full) }
            return .bf16(.bf16(from: w.pointer, out: out, in: k))
        case .int8:
            defer { archive.evict(full) }
            return .int8(.int8(from: w.pointer, out: out, in: k))
        }
    }
}

/// LayerNorm gamma and beta.
public struct NormWeights: Sendable {
    /// LayerNorm scale.
    public let gamma: FloatWeights
    /// LayerNorm shift.
    public let beta: FloatWeights

    init(_ r: WeightReader, _ name: String, _ d: Int) throws(ModelLoadError) {
        gamma = try r(name + ".weight", [d])
        beta = try r(name + ".bias", [d])
    }
}

/// `feed_forward{1,2}`: Linear(d → ff) → SiLU → Linear(ff → d).
public struct FeedForwardWeights: Sendable {
    /// feed_forward1.linear1
    public let linear1: LinearWeights
    /// feed_forward1.linear2
    public let linear2: LinearWeights

    init(_ r: WeightReader, _ name: String, d: Int, ff: Int) throws(ModelLoadError) {
        linear1 = try LinearWeights(r, name + ".linear1", out: ff, in: d)
        linear2 = try LinearWeights(r, name + ".linear2", out: d, in: ff)
    }
}

/// `self_attn`: rel-pos multi-head attention.
public struct AttentionWeights: Sendable {
    /// self_attn.linear_q
    public let linearQ: LinearWeights
    /// self_attn.linear_k
    public let linearK: LinearWeights
    /// self_attn.linear_v
    public let linearV: LinearWeights
    /// self_attn.linear_out
    public let linearOut: LinearWeights
    /// self_attn.linear_pos (no bias)
    public let linearPos: LinearWeights
    /// self_attn.pos_bias_u [heads, dK]
    public let posBiasU: FloatWeights
    /// self_attn.pos_bias_v [heads, dK]
    public let posBiasV: FloatWeights

    init(_ r: WeightReader, d: Int, heads: Int) throws(ModelLoadError) {
        linearQ = try LinearWeights(r, "self_attn.linear_q", out: d, in: d)
        linearK = try LinearWeights(r, "self_attn.linear_k", out: d, in: d)
        linearV = try LinearWeights(r, "self_attn.linear_v", out: d, in: d)
        linearOut = try LinearWeights(r, "self_attn.linear_out", out: d, in: d)
        linearPos = try LinearWeights(r, "self_attn.linear_pos", out: d, in: d, bias: false)
        posBiasU = try r("self_attn.pos_bias_u", [heads, d / heads])
        posBiasV = try r("self_attn.pos_bias_v", [heads, d / heads])
    }
}

/// `conv`: pointwise(d → 2d) → GLU → depthwise(k) with BatchNorm folded → SiLU → pointwise(d → d).
public struct ConvModuleWeights: Sendable {
    /// conv.pointwise_conv1 [2d, d, 1]
    public let pointwiseConv1: LinearWeights
    /// conv.depthwise_conv.weight [d, 1, k], stored kernel-major [k, d] for the time loop.
    public let depthwiseKernelMajor: Tensor
    /// conv.depthwise_conv.bias [d]
    public let depthwiseBias: FloatWeights
    /// conv.pointwise_conv2 [d, d, 1]
    public let pointwiseConv2: LinearWeights

    init(_ r: WeightReader, d: Int, kernel: Int) throws(ModelLoadError) {
        pointwiseConv1 = try LinearWeights(r, "conv.pointwise_conv1", out: 2 * d, in: d, weightShape: [2 * d, d, 1])
        let dw = try r("conv.depthwise_conv.weight", [d, 1, kernel])
        let km = Tensor(zeros: [kernel, d])   // (k, d)
        transpose(dw.pointer, rows: d, cols: kernel, into: km.pointer)
        depthwiseKernelMajor = km
        depthwiseBias = try r("conv.depthwise_conv.bias", [d])
        pointwiseConv2 = try LinearWeights(r, "conv.pointwise_conv2", out: d, in: d, weightShape: [d, d, 1])
    }
}

/// One Conformer layer (macaron FF, MHSA, conv module, FF, final norm).
public struct ConformerLayerWeights: Sendable {
    /// norm_feed_forward1
    public let normFeedForward1: NormWeights
    /// feed_forward1
    public let feedForward1: FeedForwardWeights
    /// norm_self_att
    public let normSelfAtt: NormWeights
    /// self_attn
    public let selfAttn: AttentionWeights
    /// norm_conv
    public let normConv: NormWeights
    /// conv
    public let conv: ConvModuleWeights
    /// norm_feed_forward2
    public let normFeedForward2: NormWeights
    /// feed_forward2
    public let feedForward2: FeedForwardWeights
    /// norm_out
    public let normOut: NormWeights

    init(_ r: WeightReader, _ c: EncoderConfig) throws(ModelLoadError) {
        let d = c.dModel
        normFeedForward1 = try NormWeights(r, "norm_feed_forward1", d)
        feedForward1 = try FeedForwardWeights(r, "feed_forward1", d: d, ff: c.ffDim)
        normSelfAtt = try NormWeights(r, "norm_self_att", d)
        selfAttn = try AttentionWeights(r, d: d, heads: c.heads)
        normConv = try NormWeights(r, "norm_conv", d)
        conv = try ConvModuleWeights(r, d: d, kernel: c.convKernel)
        normFeedForward2 = try NormWeights(r, "norm_feed_forward2", d)
        feedForward2 = try FeedForwardWeights(r, "feed_forward2", d: d, ff: c.ffDim)
        normOut = try NormWeights(r, "norm_out", d)
    }
}

/// One stride-2 stage of the subsampling front.
public struct SubsamplingStage: Sendable {
    /// The stage's 3×3 stride-2 convolution.
    public enum Convolution: Sendable {
        /// `conv.{i}`: dense, [C, Cin, 3, 3] viewed as [C, Cin·9] over the im2col matrix.
        case dense(LinearWeights)
        /// dw_striding after the first stage: `conv.{i}` depthwise [C, 1, 3, 3] with its bias,
        /// then `conv.{i+1}` pointwise 1×1 [C, C, 1, 1].
        case depthwise(kernel: FloatWeights, bias: FloatWeights, pointwise: LinearWeights)
    }
    /// The convolution (its ReLU follows).
    public let convolution: Convolution
    /// The convolution's shape with the input height (frames) left to fill in per call.
    public let shapeTemplate: Conv2dShape
}

/// `pre_encode`: the convolutional subsampling and its output Linear.
public struct SubsamplingWeights: Sendable {
    /// One entry per stride-2 stage, in order.
    public let stages: [SubsamplingStage]
    /// pre_encode.out [d, C·F']
    public let out: LinearWeights
    /// Feature bins after subsampling (F').
    public let outBins: Int

    init(_ r: WeightReader, _ c: EncoderConfig) throws(ModelLoadError) {
        let ch = c.subsamplingChannels
        var count = 0
        var f = c.subsamplingFactor
        while f > 1 { f /= 2; count += 1 }
        guard 1 << count == c.subsamplingFactor, count >= 1 else {
            throw .badConfig(path: r.archive.path, reason: "subsampling factor \(c.subsamplingFactor) is not a power of two")
        }
        var stages: [SubsamplingStage] = []
        var bins = c.featIn
        var index = 0
        for s in 0..<count {
            let cin = s == 0 ? 1 : ch
            let depthwise = c.subsampling == .dwStriding && s > 0
            let name = "conv.\(index)"
            let convolution: SubsamplingStage.Convolution
            if depthwise {
                convolution = .depthwise(kernel: try r(name + ".weight", [ch, 1, 3, 3]), bias: try r(name + ".bias", [ch]),
                                         pointwise: try LinearWeights(r, "conv.\(index + 1)", out: ch, in: ch,
                                                                      weightShape: [ch, ch, 1, 1]))
                index += 3   // depthwise, pointwise, activation
            } else {
                convolution = .dense(try LinearWeights(r, name, out: ch, in: cin * 9, weightShape: [ch, cin, 3, 3]))
                index += 2   // conv, activation
            }
            stages.append(SubsamplingStage(
                convolution: convolution,
                shapeTemplate: Conv2dShape(channelsIn: cin, height: 0, width: bins, channelsOut: ch,
                                           groups: depthwise ? ch : 1)))
            bins = convOutputSize(bins, kernel: 3, stride: 2, padding: 1)
        }
        self.stages = stages
        self.outBins = bins
        out = try LinearWeights(r, "out", out: c.dModel, in: ch * bins)
    }
}

/// All encoder weights.
public struct EncoderWeights: Sendable {
    /// `pre_encode`
    public let preEncode: SubsamplingWeights
    /// `pos_enc.pe` [rows, d] when the file stores it.
    public let positionalTable: FloatWeights?
    /// Conformer layers.
    public let layers: [ConformerLayerWeights]

    init(_ r: WeightReader, _ c: EncoderConfig) throws(ModelLoadError) {
        preEncode = try SubsamplingWeights(r.scoped("pre_encode."), c)
        positionalTable = c.posEmbRows > 0 ? try r("pos_enc.pe", [c.posEmbRows, c.dModel]) : nil
        var layers: [ConformerLayerWeights] = []
        for i in 0..<c.layers { layers.append(try ConformerLayerWeights(r.scoped("layers.\(i)."), c)) }
        self.layers = layers
    }
}
