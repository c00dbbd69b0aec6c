// Element-wise and row-wise operations on raw float buffers: bias broadcasting, activations,
// normalisation, softmax, GLU, argmax. All write into caller-provided memory; the hot loops
// are C kernels (Sources/CKernels) that clang vectorises for the CPU at hand.

import CKernels
import Foundation

/// y[r, c] += bias[c] for every row (bias broadcast over rows).
public func addBias(rows: Int, cols: Int, bias: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>) {
    Parallel.rows(rows, cols: cols) { r in vani_add_bias(y + r.lowerBound * cols, r.count, cols, bias) }
}

/// out = a + b over `count` elements (`out` may alias either input).
public func add(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, count: Int) {
    for i in 0..<count { out[i] = a[i] + b[i] }
}

/// x = max(x, 0) in place.
public func relu(_ x: UnsafeMutablePointer<Float>, count: Int) {
    Parallel.chunks(count) { start, n in
        let y = x + start
        for i in 0..<n { y[i] = max(y[i], 0) }
    }
}

/// x[r, c] = silu(x[r, c] + bias[c]) in place: a Linear's bias fused with SiLU (one pass).
public func biasSilu(_ x: UnsafeMutablePointer<Float>, rows: Int, cols: Int, bias: UnsafePointer<Float>) {
    Parallel.rows(rows, cols: cols) { r in vani_bias_silu(x + r.lowerBound * cols, r.count, cols, bias) }
}

/// GLU with the pointwise conv's bias fused in: out[r, c] = (in[r, c] + b[c]) ·
/// sigmoid(in[r, channels + c] + b[channels + c]); `bias` has 2·channels entries.
/// `input` and `output` must not overlap (rows are split over threads).
public func biasGLU(_ input: UnsafePointer<Float>, rows: Int, channels: Int, bias: UnsafePointer<Float>,
                    into output: UnsafeMutablePointer<Float>) {
    Parallel.rows(rows, cols: 3 * channels) { r in
        vani_bias_glu(input + r.lowerBound * 2 * channels, r.count, channels, bias, output + r.lowerBound * channels)
    }
}

/// x = 1 / (1 + e^-x) in place.
public func sigmoid(_ x: UnsafeMutablePointer<Float>, count: Int) {
    Parallel.chunks(count) { start, n in vani_sigmoid(x + start, n) }
}

/// x = tanh(x) in place.
public func tanh(_ x: UnsafeMutablePointer<Float>, count: Int) {
    for i in 0..<count { x[i] = tanhf(x[i]) }
}

/// x = x · sigmoid(x) (SiLU, Swish) in place.
public func silu(_ x: UnsafeMutablePointer<Float>, count: Int) {
    Parallel.chunks(count) { start, n in vani_silu(x + start, n) }
}

/// Gated linear unit over the last axis: out[r, c] = in[r, c] · sigmoid(in[r, channels + c]),
/// with `input` [rows, 2·channels] and `output` [rows, channels].
/// `input` and `output` must not overlap (rows are split over threads).
public func glu(_ input: UnsafePointer<Float>, rows: Int, channels: Int, into output: UnsafeMutablePointer<Float>) {
    Parallel.rows(rows, cols: 3 * channels) { r in
        vani_glu(input + r.lowerBound * 2 * channels, r.count, channels, output + r.lowerBound * channels)
    }
}

/// LayerNorm over the last axis: out = (x − mean) / √(var + eps) · gamma + beta, with the biased
/// variance as PyTorch computes it. `x` and `out` are [rows, cols] and may alias.
public func layerNorm(_ x: UnsafePointer<Float>, rows: Int, cols: Int,
                      gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, eps: Float,
                      into out: UnsafeMutablePointer<Float>) {
    Parallel.rows(rows, cols: cols) { r in
        vani_layer_norm(x + r.lowerBound * cols, r.count, cols, gamma, beta, eps, out + r.lowerBound * cols)
    }
}

/// Softmax over each row of a [rows, cols] buffer, in place (max-subtracted for stability).
public func softmaxRows(_ x: UnsafeMutablePointer<Float>, rows: Int, cols: Int) {
    Parallel.rows(rows, cols: cols) { r in vani_softmax_rows(x + r.lowerBound * cols, r.count, cols) }
}

/// Log-softmax over each row of a [rows, cols] buffer, in place.
public func logSoftmaxRows(_ x: UnsafeMutablePointer<Float>, rows: Int, cols: Int) {
    Parallel.rows(rows, cols: cols) { r in vani_log_softmax_rows(x + r.lowerBound * cols, r.count, cols) }
}

/// Index and value of the largest element (the first one on ties, as numpy and torch do).
public func argmax(_ x: UnsafePointer<Float>, count: Int) -> (index: Int, value: Float) {
    precondition(count > 0, "argmax of an empty buffer")
    var best = 0
    var value = x[0]
    for i in 1..<count where x[i] > value { best = i; value = x[i] }
    return (best, value)
}
