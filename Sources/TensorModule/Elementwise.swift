// Element-wise and row-wise operations on raw float buffers: bias broadcasting, activations,
// normalisation, softmax, GLU, argmax. All write into caller-provided memory.

import Foundation

/// y[r, c] += bias[c] for every row (bias broadcast over rows).
public func addBias(rows: Int, cols: Int, bias: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>) {
    for r in 0..<rows {
        let row = y + r * cols
        for c in 0..<cols { row[c] += bias[c] }
    }
}

/// out = a + b over `count` elements (`out` may alias either input).
public func add(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, count: Int) {
    for i in 0..<count { out[i] = a[i] + b[i] }
}

/// x = max(x, 0) in place.
public func relu(_ x: UnsafeMutablePointer<Float>, count: Int) {
    for i in 0..<count { x[i] = max(x[i], 0) }
}

/// x = 1 / (1 + e^-x) in place.
public func sigmoid(_ x: UnsafeMutablePointer<Float>, count: Int) {
    map8(x, count: count) { v in 1 / (1 + exp8(-v)) }
}

/// x = tanh(x) in place.
public func tanh(_ x: UnsafeMutablePointer<Float>, count: Int) {
    for i in 0..<count { x[i] = tanhf(x[i]) }
}

/// x = x · sigmoid(x) (SiLU, Swish) in place.
public func silu(_ x: UnsafeMutablePointer<Float>, count: Int) {
    map8(x, count: count) { v in v / (1 + exp8(-v)) }
}

/// Gated linear unit over the last axis: out[r, c] = in[r, c] · sigmoid(in[r, channels + c]),
/// with `input` [rows, 2·channels] and `output` [rows, channels].
public func glu(_ input: UnsafePointer<Float>, rows: Int, channels: Int, into output: UnsafeMutablePointer<Float>) {
    for r in 0..<rows {
        let a = input + r * 2 * channels
        let o = output + r * channels
        o.update(from: a + channels, count: channels)
        map8(o, count: channels) { g in 1 / (1 + exp8(-g)) }
        for c in 0..<channels { o[c] *= a[c] }
    }
}

/// LayerNorm over the last axis: out = (x − mean) / √(var + eps) · gamma + beta, with the biased
/// variance as PyTorch computes it. `x` and `out` are [rows, cols] and may alias.
public func layerNorm(_ x: UnsafePointer<Float>, rows: Int, cols: Int,
                      gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, eps: Float,
                      into out: UnsafeMutablePointer<Float>) {
    let n = Float(cols)
    for r in 0..<rows {
        let row = x + r * cols
        let mean = sum8(row, count: cols) / n
        var sq: Float = 0
        for c in 0..<cols { let d = row[c] - mean; sq += d * d }
        let inv = 1 / (sq / n + eps).squareRoot()
        let o = out + r * cols
        for c in 0..<cols { o[c] = (row[c] - mean) * inv * gamma[c] + beta[c] }
    }
}

/// Softmax over each row of a [rows, cols] buffer, in place (max-subtracted for stability).
public func softmaxRows(_ x: UnsafeMutablePointer<Float>, rows: Int, cols: Int) {
    for r in 0..<rows {
        let row = x + r * cols
        var m = -Float.infinity
        for c in 0..<cols { m = max(m, row[c]) }
        map8(row, count: cols) { v in exp8(v - m) }
        let inv = 1 / sum8(row, count: cols)
        for c in 0..<cols { row[c] *= inv }
    }
}

/// Log-softmax over each row of a [rows, cols] buffer, in place.
public func logSoftmaxRows(_ x: UnsafeMutablePointer<Float>, rows: Int, cols: Int) {
    for r in 0..<rows {
        let row = x + r * cols
        var m = -Float.infinity
        for c in 0..<cols { m = max(m, row[c]) }
        var sum: Float = 0
        for c in 0..<cols { sum += expf(row[c] - m) }
        let lse = m + logf(sum)
        for c in 0..<cols { row[c] -= lse }
    }
}

/// Index and value of the largest element (the first one on ties, as numpy and torch do).
public func argmax(_ x: UnsafePointer<Float>, count: Int) -> (index: Int, value: Float) {
    precondition(count > 0, "argmax of an empty buffer")
    var best = 0
    var value = x[0]
    for i in 1..<count where x[i] > value { best = i; value = x[i] }
    return (best, value)
}
