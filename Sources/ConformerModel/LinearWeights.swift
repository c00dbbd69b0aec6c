// The one seam for products with a weight matrix. Every such product in the model — the
// feed-forwards with their fused bias + SiLU, the attention projections, the conv module's
// pointwise layers (bias + GLU), the subsampling's 1×1 and im2col products, the CTC block, the
// LSTM's input and recurrent products and the joint — goes through `LinearWeights.apply`, so a
// new precision (bf16, int8 with scales) is one `WeightStorage` case here and one kernel family
// in CKernels, and the parity tests run once per precision.

import TensorModule
import WeightFormat

/// How a weight matrix [out, in] is stored.
public enum WeightStorage: Sendable {
    /// float32, row-major [out, in]: borrowed from the mapped file, or widened once at load
    /// when the file stores f16/bf16.
    case fp32(FloatWeights)
    // bf16 and int8 (with per-output-channel fp32 scales) plug in here.

    /// Short name for logs and benchmarks.
    public var precisionName: String {
        switch self {
        case .fp32: return "fp32"
        }
    }
}

/// A weight matrix W [out, in] (PyTorch Linear or a convolution viewed as one) and its bias
/// [out], applied as y = x · Wᵀ + b in one of a few fused forms.
public struct LinearWeights: Sendable {
    /// The weight matrix, in its stored precision.
    public let storage: WeightStorage
    /// The bias [out], always float32; nil for layers without one.
    public let bias: FloatWeights?
    /// Input width (`in`; for a convolution, channels × kernel elements).
    public let inFeatures: Int
    /// Output width (`out`; for a convolution, output channels).
    public let outFeatures: Int

    /// What happens to the product before it is stored.
    public enum Epilogue {
        /// y = x · Wᵀ (the bias, if any, is not added).
        case none
        /// y = x · Wᵀ + b (no bias: as `.none`).
        case bias
        /// y = SiLU(x · Wᵀ + b), in one pass over y (the feed-forward's first linear).
        case biasSiLU
        /// product = x · Wᵀ [rows, out]; y = GLU(product + b) [rows, out / 2]: first half ×
        /// sigmoid(second half) (the conv module's first pointwise layer). `product` must not
        /// overlap `y`.
        case biasGLU(product: UnsafeMutablePointer<Float>)
    }

    /// Weights around a float32 matrix (tests, computed weights).
    public init(weight: FloatWeights, bias: FloatWeights?, out: Int, in inFeatures: Int) {
        precondition(weight.count == out * inFeatures, "weight of \(weight.count) values is not [\(out), \(inFeatures)]")
        precondition(bias.map { $0.count == out } ?? true, "bias of \(bias?.count ?? 0) values is not [\(out)]")
        storage = .fp32(weight)
        self.bias = bias
        self.inFeatures = inFeatures
        self.outFeatures = out
    }

    /// Reads `name.weight` (shape `weightShape`, default [out, in]) and `name.bias` [out].
    init(_ r: WeightReader, _ name: String, out: Int, in inFeatures: Int, bias hasBias: Bool = true,
         weightShape: [Int]? = nil) throws(ModelLoadError) {
        let weight = try r(name + ".weight", weightShape ?? [out, inFeatures])
        self.init(weight: weight, bias: hasBias ? try r(name + ".bias", [out]) : nil, out: out, in: inFeatures)
    }

    /// The float32 matrix.
    private var fp32: UnsafePointer<Float> {
        switch storage {
        case .fp32(let w): return w.pointer
        }
    }

    // MARK: - Time-major products (x [rows, in])

    /// y[rows, out] = epilogue(x[rows, in] · Wᵀ); with `accumulate` (epilogues `.none` and
    /// `.bias` only) the result is added to y instead.
    public func apply(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>,
                      epilogue: Epilogue = .bias, accumulate: Bool = false) {
        switch epilogue {
        case .none:
            linear(x, rows: rows, inFeatures: inFeatures, weight: fp32, bias: nil, outFeatures: outFeatures,
                   into: y, accumulate: accumulate)
        case .bias:
            linear(x, rows: rows, inFeatures: inFeatures, weight: fp32, bias: bias?.pointer,
                   outFeatures: outFeatures, into: y, accumulate: accumulate)
        case .biasSiLU:
            precondition(!accumulate, "bias + SiLU does not accumulate")
            linear(x, rows: rows, inFeatures: inFeatures, weight: fp32, bias: nil, outFeatures: outFeatures, into: y)
            if let b = bias { biasSilu(y, rows: rows, cols: outFeatures, bias: b.pointer) }
            else { silu(y, count: rows * outFeatures) }
        case .biasGLU(let product):
            precondition(!accumulate, "bias + GLU does not accumulate")
            precondition(outFeatures % 2 == 0, "GLU needs an even output width, not \(outFeatures)")
            linear(x, rows: rows, inFeatures: inFeatures, weight: fp32, bias: nil, outFeatures: outFeatures,
                   into: product)                                                   // (rows, out)
            if let b = bias { biasGLU(product, rows: rows, channels: outFeatures / 2, bias: b.pointer, into: y) }
            else { glu(product, rows: rows, channels: outFeatures / 2, into: y) }    // (rows, out / 2)
        }
    }

    /// The output columns `outputs` only: y[r, j] = x[r] · W[outputs.lowerBound + j] + b[…]
    /// for j in 0..<outputs.count, written with row stride `ldy` (the CTC head evaluates one
    /// language's block and the blank this way).
    public func apply(_ x: UnsafePointer<Float>, rows: Int, outputs: Range<Int>,
                      into y: UnsafeMutablePointer<Float>, ldy: Int) {
        precondition(outputs.lowerBound >= 0 && outputs.upperBound <= outFeatures,
                     "outputs \(outputs) outside 0..<\(outFeatures)")
        let n = outputs.count
        if let b = bias {
            for r in 0..<rows { (y + r * ldy).update(from: b.pointer + outputs.lowerBound, count: n) }
        }
        sgemm(transB: true, m: rows, n: n, k: inFeatures, a: x, lda: inFeatures,
              b: fp32 + outputs.lowerBound * inFeatures, ldb: inFeatures,
              beta: bias == nil ? 0 : 1, c: y, ldc: ldy)
    }

    // MARK: - Channel-major products (x [in, columns])

    /// y[out, columns] = W · x[in, columns] + b[:, None]: a 1×1 convolution over channel-major
    /// planes, or a dense convolution over its im2col matrix.
    public func applyChannelMajor(_ x: UnsafePointer<Float>, columns: Int, into y: UnsafeMutablePointer<Float>) {
        if let b = bias {
            for c in 0..<outFeatures { (y + c * columns).update(repeating: b.pointer[c], count: columns) }
        }
        sgemm(m: outFeatures, n: columns, k: inFeatures, a: fp32, lda: inFeatures, b: x, ldb: columns,
              beta: bias == nil ? 0 : 1, c: y, ldc: columns)
    }
}
