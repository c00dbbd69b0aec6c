// The one seam for products with a weight matrix. Every such product in the model — the
// feed-forwards with their fused bias + SiLU, the attention projections, the conv module's
// pointwise layers (bias + GLU), the subsampling's 1×1 and im2col products, the CTC block, the
// LSTM's input and recurrent products and the joint — goes through `LinearWeights.apply`, so a
// new precision (bf16, int8 with scales) is one `WeightStorage` case here and one kernel family
// in CKernels, and the parity tests run once per precision.

import TensorModule
import WeightFormat

/// The number format of the encoder's weight products (docs/MODEL.md § Precision).
///
/// `fp32` is exact (the default); `bf16` stores the weights as bfloat16 and rounds each
/// activation row to bf16 for the product (fp32 sums); `int8` stores the weights as int8 per
/// output channel with fp32 scales and quantizes each activation row to uint8 on the fly (int32
/// sums). Only the products of the Conformer layers and the subsampling's output Linear change
/// (`Precision.isReduced(tensor:)`); LayerNorm, softmax, attention scores, the convolutions and
/// both decoders stay fp32.
public enum Precision: String, Sendable, CaseIterable, Codable {
    /// float32 everywhere.
    case fp32
    /// bfloat16 weights, fp32 accumulation (AVX-512 BF16 where the CPU has it).
    case bf16
    /// int8 weights per output channel, uint8 activations per row, int32 accumulation (AVX-512
    /// VNNI where the CPU has it).
    case int8
    /// fp32 storage with TF32 tensor-core products (a GPU precision; the CPU refuses it: see
    /// `ComputeDevice.precisions`). Loads as fp32.
    case tf32

    /// Whether the weight matrix stored under `name` (a full tensor name, `….weight`) is one the
    /// reduced precisions store narrower: every Linear and pointwise convolution of the Conformer
    /// layers, and the subsampling's output Linear. The others (subsampling convolutions, CTC and
    /// RNN-T heads) stay fp32: under 3 % of the encoder's work at the release's size and the
    /// places where a language's output block is chosen.
    public static func isReduced(tensor name: String) -> Bool {
        guard name.hasSuffix(".weight") else { return false }
        if name == "encoder.pre_encode.out.weight" { return true }
        guard name.hasPrefix("encoder.layers.") else { return false }
        return [".linear1.weight", ".linear2.weight", ".linear_q.weight", ".linear_k.weight",
                ".linear_v.weight", ".linear_out.weight", ".linear_pos.weight",
                ".pointwise_conv1.weight", ".pointwise_conv2.weight"].contains { name.hasSuffix($0) }
    }

    /// The name of the fp32 scales [out] stored beside an int8 weight matrix `name`
    /// (`x.weight` → `x.weight_scale`).
    public static func scaleName(of name: String) -> String { name + "_scale" }

    /// Whether this CPU runs the precision's products on their own instructions (fp32: always);
    /// otherwise they take the portable path (same numbers within docs/MODEL.md's tolerance, slower).
    public var isNative: Bool {
        switch self {
        case .fp32: return true
        case .bf16: return ReducedPrecisionKernels.bf16Native
        case .int8: return ReducedPrecisionKernels.int8Native
        case .tf32: return false
        }
    }

    /// One line for logs when the products take the portable path here; nil when native.
    public var portablePathNote: String? {
        switch self {
        case .fp32: return nil
        case .bf16 where !isNative:
            return "bf16 products run on the portable path: this CPU lacks AVX-512 BF16 (same numbers, slower)"
        case .int8 where !isNative:
            return "int8 products run on the portable path: this CPU lacks AVX-512 VNNI (same numbers, slower)"
        default: return nil
        }
    }
}

/// A weight matrix held in a reduced precision: bf16 bits or int8 values [out, stride], zero
/// past `in` in each row, with (int8) per-output-channel scales and row sums.
public final class ReducedWeights: @unchecked Sendable {
    /// First element (UInt16 bf16 bits or Int8).
    public let values: UnsafeRawPointer
    /// Elements between rows (`in` rounded up to 2 for bf16, 4 for int8).
    public let stride: Int
    /// int8: w ≈ scales[o] · values[o, i].
    public let scales: FloatWeights?
    /// int8: Σᵢ values[o, i].
    public let sums: UnsafePointer<Int32>?
    /// Bytes held in memory of its own (0 when borrowed from the mapped file).
    public let ownedBytes: Int
    private let owner: AnyObject?
    private let ownedValues: UnsafeMutableRawPointer?
    private let ownedSums: UnsafeMutablePointer<Int32>?

    init(values: UnsafeRawPointer, stride: Int, scales: FloatWeights?, sums: UnsafeMutablePointer<Int32>?,
         owner: AnyObject?, ownedValues: UnsafeMutableRawPointer?, ownedBytes: Int) {
        self.values = values; self.stride = stride; self.scales = scales
        self.sums = sums.map { UnsafePointer($0) }; self.ownedSums = sums
        self.owner = owner; self.ownedValues = ownedValues; self.ownedBytes = ownedBytes
    }

    deinit {
        ownedValues?.deallocate()
        ownedSums?.deallocate()
    }

    /// bf16 bits of an fp32 matrix [out, in] (rounded to nearest even), in memory of its own.
    public static func bf16(from w: UnsafePointer<Float>, out: Int, in k: Int) -> ReducedWeights {
        let stride = (k + 1) & ~1
        let p = UnsafeMutablePointer<UInt16>.allocate(capacity: max(1, out * stride))
        p.initialize(repeating: 0, count: out * stride)
        for o in 0..<out { ReducedPrecisionKernels.toBF16(w + o * k, count: k, into: p + o * stride) }
        return ReducedWeights(values: UnsafeRawPointer(p), stride: stride, scales: nil, sums: nil, owner: nil,
                              ownedValues: UnsafeMutableRawPointer(p), ownedBytes: 2 * out * stride)
    }

    /// int8 per output channel of an fp32 matrix [out, in], in memory of its own.
    public static func int8(from w: UnsafePointer<Float>, out: Int, in k: Int) -> ReducedWeights {
        let stride = (k + 3) & ~3
        let q = UnsafeMutablePointer<Int8>.allocate(capacity: max(1, out * stride))
        var scales = [Float](repeating: 0, count: out)
        let sums = UnsafeMutablePointer<Int32>.allocate(capacity: max(1, out))
        ReducedPrecisionKernels.quantizeInt8(w, rows: out, cols: k, ldw: k, into: q, ldq: stride,
                                             scales: &scales, sums: sums)
        return ReducedWeights(values: UnsafeRawPointer(q), stride: stride,
                              scales: FloatWeights(shape: [out], values: scales), sums: sums, owner: nil,
                              ownedValues: UnsafeMutableRawPointer(q), ownedBytes: out * stride + 8 * out)
    }

    /// Stored bf16 bits [out, in] (`bytes`, little-endian), borrowed in place when `in` is even
    /// and the bytes 2-aligned, else copied into rows padded to an even width.
    static func bf16(stored bytes: UnsafeRawBufferPointer, out: Int, in k: Int, owner: AnyObject) -> ReducedWeights {
        let base = bytes.baseAddress!
        if k % 2 == 0, Int(bitPattern: base) % 2 == 0 {
            return ReducedWeights(values: base, stride: k, scales: nil, sums: nil, owner: owner, ownedValues: nil,
                                  ownedBytes: 0)
        }
        let stride = (k + 1) & ~1
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(2, 2 * out * stride), alignment: 64)
        p.initializeMemory(as: UInt8.self, repeating: 0, count: 2 * out * stride)
        for o in 0..<out { (p + 2 * o * stride).copyMemory(from: base + 2 * o * k, byteCount: 2 * k) }
        return ReducedWeights(values: UnsafeRawPointer(p), stride: stride, scales: nil, sums: nil, owner: nil,
                              ownedValues: p, ownedBytes: 2 * out * stride)
    }

    /// Stored int8 values [out, in] with their scales, borrowed in place when `in` is a multiple of
    /// 4, else copied into padded rows; the row sums are computed here.
    static func int8(stored bytes: UnsafeRawBufferPointer, scales: FloatWeights, out: Int, in k: Int,
                     owner: AnyObject) -> ReducedWeights {
        let base = bytes.baseAddress!
        let sums = UnsafeMutablePointer<Int32>.allocate(capacity: max(1, out))
        if k % 4 == 0 {
            ReducedPrecisionKernels.rowSums(base.assumingMemoryBound(to: Int8.self), rows: out, cols: k, ldq: k,
                                            into: sums)
            return ReducedWeights(values: base, stride: k, scales: scales, sums: sums, owner: owner, ownedValues: nil,
                                  ownedBytes: 4 * out)
        }
        let stride = (k + 3) & ~3
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(4, out * stride), alignment: 64)
        p.initializeMemory(as: UInt8.self, repeating: 0, count: out * stride)
        for o in 0..<out { (p + o * stride).copyMemory(from: base + o * k, byteCount: k) }
        ReducedPrecisionKernels.rowSums(p.assumingMemoryBound(to: Int8.self), rows: out, cols: k, ldq: stride,
                                        into: sums)
        return ReducedWeights(values: UnsafeRawPointer(p), stride: stride, scales: scales, sums: sums, owner: nil,
                              ownedValues: p, ownedBytes: out * stride + 4 * out)
    }

    /// Row `o` widened to fp32 (k values): bf16 widened, int8 times its scale.
    func widenRow(_ o: Int, bf16: Bool, count k: Int, into out: UnsafeMutablePointer<Float>) {
        if bf16 {
            let row = (values + 2 * o * stride).assumingMemoryBound(to: UInt16.self)
            for i in 0..<k { out[i] = Float(bitPattern: UInt32(row[i]) << 16) }
        } else {
            let row = (values + o * stride).assumingMemoryBound(to: Int8.self)
            let s = scales!.pointer[o]
            for i in 0..<k { out[i] = s * Float(row[i]) }
        }
    }
}

/// How a weight matrix [out, in] is stored.
public enum WeightStorage: Sendable {
    /// float32, row-major [out, in]: borrowed from the mapped file, or widened once at load
    /// when the file stores f16/bf16 (or dequantized from int8).
    case fp32(FloatWeights)
    /// bfloat16 bits [out, stride], products on `gemmBF16`.
    case bf16(ReducedWeights)
    /// int8 per output channel with fp32 scales, products on `gemmInt8`.
    case int8(ReducedWeights)

    /// The storage's precision.
    public var precision: Precision {
        switch self {
        case .fp32: return .fp32
        case .bf16: return .bf16
        case .int8: return .int8
        }
    }

    /// Short name for logs and benchmarks.
    public var precisionName: String { precision.rawValue }
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

    /// Weights around a matrix already in a reduced precision.
    public init(storage: WeightStorage, bias: FloatWeights?, out: Int, in inFeatures: Int) {
        precondition(bias.map { $0.count == out } ?? true, "bias of \(bias?.count ?? 0) values is not [\(out)]")
        self.storage = storage
        self.bias = bias
        self.inFeatures = inFeatures
        self.outFeatures = out
    }

    /// Reads `name.weight` (shape `weightShape`, default [out, in]) and `name.bias` [out]; a
    /// matrix that `Precision.isReduced` names is held in the reader's precision (from fp32,
    /// f16 or bf16 in the file, or int8 with its `name.weight_scale`).
    init(_ r: WeightReader, _ name: String, out: Int, in inFeatures: Int, bias hasBias: Bool = true,
         weightShape: [Int]? = nil) throws(ModelLoadError) {
        let shape = weightShape ?? [out, inFeatures]
        let bias = hasBias ? try r(name + ".bias", [out]) : nil
        let full = r.prefix + name + ".weight"
        guard Precision.isReduced(tensor: full) else {
            self.init(weight: try r(name + ".weight", shape), bias: bias, out: out, in: inFeatures)
            return
        }
        let storage = try r.reduced(name + ".weight", shape, out: out, in: inFeatures)
        self.init(storage: storage, bias: bias, out: out, in: inFeatures)
    }

    /// The float32 matrix (the products that only fp32 storage offers).
    private var fp32: UnsafePointer<Float> {
        switch storage {
        case .fp32(let w): return w.pointer
        case .bf16, .int8:
            preconditionFailure("this product needs fp32 weights: load the layer in fp32 (Precision.isReduced)")
        }
    }

    /// y[rows, out] = x · Wᵀ + beta · y (row stride `ldy`) in the stored precision, on the
    /// columns `outputs` of W.
    private func product(_ x: UnsafePointer<Float>, rows: Int, outputs: Range<Int>, beta: Float,
                         into y: UnsafeMutablePointer<Float>, ldy: Int) {
        let n = outputs.count, o = outputs.lowerBound
        switch storage {
        case .fp32(let w):
            sgemm(transB: true, m: rows, n: n, k: inFeatures, a: x, lda: inFeatures,
                  b: w.pointer + o * inFeatures, ldb: inFeatures, beta: beta, c: y, ldc: ldy)
        case .bf16(let w):
            gemmBF16(m: rows, n: n, k: inFeatures, a: x, lda: inFeatures,
                     w: (w.values + 2 * o * w.stride).assumingMemoryBound(to: UInt16.self), ldw: w.stride,
                     beta: beta, c: y, ldc: ldy)
        case .int8(let w):
            gemmInt8(m: rows, n: n, k: inFeatures, a: x, lda: inFeatures,
                     w: (w.values + o * w.stride).assumingMemoryBound(to: Int8.self), ldw: w.stride,
                     scales: w.scales!.pointer + o, sums: w.sums! + o, beta: beta, c: y, ldc: ldy)
        }
    }

    /// y[rows, out] = x · Wᵀ (+ b) (+ y with `accumulate`): `linear` for fp32 (unchanged bits),
    /// the same bias handling around the reduced-precision products.
    private func linearProduct(_ x: UnsafePointer<Float>, rows: Int, bias b: UnsafePointer<Float>?,
                               into y: UnsafeMutablePointer<Float>, accumulate: Bool = false) {
        if case .fp32(let w) = storage {
            linear(x, rows: rows, inFeatures: inFeatures, weight: w.pointer, bias: b, outFeatures: outFeatures,
                   into: y, accumulate: accumulate)
            return
        }
        var beta: Float = accumulate ? 1 : 0
        if let b {
            if accumulate {
                addBias(rows: rows, cols: outFeatures, bias: b, into: y)
            } else {
                for r in 0..<rows { (y + r * outFeatures).update(from: b, count: outFeatures) }
                beta = 1
            }
        }
        product(x, rows: rows, outputs: 0..<outFeatures, beta: beta, into: y, ldy: outFeatures)
    }

    // MARK: - Time-major products (x [rows, in])

    /// y[rows, out] = epilogue(x[rows, in] · Wᵀ); with `accumulate` (epilogues `.none` and
    /// `.bias` only) the result is added to y instead.
    public func apply(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>,
                      epilogue: Epilogue = .bias, accumulate: Bool = false) {
        switch epilogue {
        case .none:
            linearProduct(x, rows: rows, bias: nil, into: y, accumulate: accumulate)
        case .bias:
            linearProduct(x, rows: rows, bias: bias?.pointer, into: y, accumulate: accumulate)
        case .biasSiLU:
            precondition(!accumulate, "bias + SiLU does not accumulate")
            linearProduct(x, rows: rows, bias: nil, into: y)
            if let b = bias { biasSilu(y, rows: rows, cols: outFeatures, bias: b.pointer) }
            else { silu(y, count: rows * outFeatures) }
        case .biasGLU(let product):
            precondition(!accumulate, "bias + GLU does not accumulate")
            precondition(outFeatures % 2 == 0, "GLU needs an even output width, not \(outFeatures)")
            linearProduct(x, rows: rows, bias: nil, into: product)                  // (rows, out)
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
        product(x, rows: rows, outputs: outputs, beta: bias == nil ? 0 : 1, into: y, ldy: ldy)
    }

    // MARK: - Channel-major products (x [in, columns])

    /// y[out, columns] = W · x[in, columns] + b[:, None]: a 1×1 convolution over channel-major
    /// planes, or a dense convolution over its im2col matrix. fp32 storage only (the subsampling
    /// convolutions are never reduced).
    public func applyChannelMajor(_ x: UnsafePointer<Float>, columns: Int, into y: UnsafeMutablePointer<Float>) {
        if let b = bias {
            for c in 0..<outFeatures { (y + c * columns).update(repeating: b.pointer[c], count: columns) }
        }
        sgemm(m: outFeatures, n: columns, k: inFeatures, a: fp32, lda: inFeatures, b: x, ldb: columns,
              beta: bias == nil ? 0 : 1, c: y, ldc: columns)
    }
}
