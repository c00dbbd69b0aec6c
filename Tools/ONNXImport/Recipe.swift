// How each output tensor is made from its ONNX sources, and how `--verify` checks it
// independently of the code that made it.

import Foundation

/// The BatchNormalization parameters folded into a depthwise conv.
public struct BatchNormSources: Sendable {
    public var scale: SourceTensor
    public var bias: SourceTensor
    public var mean: SourceTensor
    public var variance: SourceTensor
    public var epsilon: Float
    /// The BatchNormalization node (for messages).
    public var node: String
}

/// How an output tensor is produced.
public enum Recipe: Sendable {
    /// The source's elements unchanged (shape may drop leading 1s): bitwise.
    case copy(SourceTensor)
    /// A `[rows, cols]` source (an ONNX MatMul weight, `[in, out]`) stored as `[cols, rows]`.
    case transpose(SourceTensor, rows: Int, cols: Int)
    /// An ONNX LSTM `W` or `R` (`[1, 4H, X]`, gates i, o, f, c) as PyTorch `[4H, X]` (i, f, g, o).
    case lstmWeight(SourceTensor, hidden: Int)
    /// Half of an ONNX LSTM `B` (`[1, 8H]` = Wb ‖ Rb): part 0 → `bias_ih`, 1 → `bias_hh`, gates
    /// reordered; nil source (no B input) → zeros.
    case lstmBias(SourceTensor?, hidden: Int, part: Int)
    /// Depthwise conv weight `[C, 1, k]` with eval BatchNorm folded in: w·γ/√(var+eps).
    case foldedWeight(SourceTensor, BatchNormSources)
    /// Depthwise conv bias with BatchNorm folded in: (b−mean)·γ/√(var+eps)+β (nil conv bias → 0).
    case foldedBias(SourceTensor?, BatchNormSources, channels: Int)

    /// Files the recipe reads (for messages).
    public var sourceLabel: String {
        switch self {
        case .copy(let s), .transpose(let s, _, _), .lstmWeight(let s, _), .foldedWeight(let s, _): return s.label
        case .lstmBias(let s, _, _): return s?.label ?? "(zeros)"
        case .foldedBias(let s, let bn, _): return (s?.label ?? "(zeros)") + " + " + bn.node
        }
    }

    /// What kind of transformation, for the summary.
    public var kind: String {
        switch self {
        case .copy: return "copy"
        case .transpose: return "transpose"
        case .lstmWeight, .lstmBias: return "lstm-reorder"
        case .foldedWeight, .foldedBias: return "bn-fold"
        }
    }

    /// ONNX (i, o, f, c) block for each PyTorch (i, f, g, o) block.
    static let gateFromONNX = [0, 2, 3, 1]

    /// Produces the elements.
    public func produce() throws(ONNXImportError) -> [Float] {
        switch self {
        case .copy(let s):
            return try s.floats()
        case let .transpose(s, rows, cols):
            let src = try s.floats()
            var out = [Float](repeating: 0, count: rows * cols)
            src.withUnsafeBufferPointer { a in
                out.withUnsafeMutableBufferPointer { o in
                    // Blocked so both sides stay in cache for the 4096×1024 weights.
                    let bs = 64
                    for r0 in stride(from: 0, to: rows, by: bs) {
                        for c0 in stride(from: 0, to: cols, by: bs) {
                            for r in r0 ..< min(r0 + bs, rows) {
                                for c in c0 ..< min(c0 + bs, cols) { o[c * rows + r] = a[r * cols + c] }
                            }
                        }
                    }
                }
            }
            return out
        case let .lstmWeight(s, hidden):
            let src = try s.floats()
            let block = src.count / 4
            var out: [Float] = []
            out.reserveCapacity(src.count)
            _ = hidden
            for g in Self.gateFromONNX { out += src[g * block ..< (g + 1) * block] }
            return out
        case let .lstmBias(s, hidden, part):
            guard let s else { return [Float](repeating: 0, count: 4 * hidden) }
            let src = try s.floats()
            var out: [Float] = []
            for g in Self.gateFromONNX {
                let start = part * 4 * hidden + g * hidden
                out += src[start ..< start + hidden]
            }
            return out
        case let .foldedWeight(s, bn):
            let w = try s.floats()
            let factor = try Self.bnFactors(bn)
            let k = w.count / factor.count
            return w.indices.map { Float(Double(w[$0]) * factor[$0 / k]) }
        case let .foldedBias(s, bn, channels):
            let b = try s?.floats() ?? [Float](repeating: 0, count: channels)
            let factor = try Self.bnFactors(bn)
            let mean = try bn.mean.floats(), beta = try bn.bias.floats()
            return (0..<channels).map { Float((Double(b[$0]) - Double(mean[$0])) * factor[$0] + Double(beta[$0])) }
        }
    }

    /// γ/√(var+eps) per channel, in double.
    static func bnFactors(_ bn: BatchNormSources) throws(ONNXImportError) -> [Double] {
        let gamma = try bn.scale.floats(), variance = try bn.variance.floats()
        return zip(gamma, variance).map { Double($0) / (Double($1) + Double(bn.epsilon)).squareRoot() }
    }

    /// Compares stored elements with the sources, by index arithmetic written apart from
    /// `produce`: bitwise for copies, transposes and gate reorders; folded BatchNorm within
    /// 1e-6 relative (single rounding of a double computation). Returns the first mismatch.
    public func check(_ stored: UnsafeBufferPointer<Float>) throws(ONNXImportError) -> String? {
        func same(_ i: Int, _ expected: Float) -> String? {
            stored[i].bitPattern == expected.bitPattern ? nil
                : "element \(i) is \(stored[i]) but the source has \(expected)"
        }
        switch self {
        case .copy(let s):
            let src = try s.floats()
            guard src.count == stored.count else { return "\(stored.count) elements, source has \(src.count)" }
            for i in 0..<src.count { if let m = same(i, src[i]) { return m } }
        case let .transpose(s, rows, cols):
            let src = try s.floats()
            guard src.count == stored.count else { return "\(stored.count) elements, source has \(src.count)" }
            for r in 0..<rows { for c in 0..<cols { if let m = same(c * rows + r, src[r * cols + c]) { return "transposed " + m } } }
        case let .lstmWeight(s, hidden):
            let src = try s.floats()
            guard src.count == stored.count else { return "\(stored.count) elements, source has \(src.count)" }
            let cols = src.count / (4 * hidden)
            // PyTorch row r of gate block p (i,f,g,o) is ONNX row r of block [i,o,f,c].firstIndex(p).
            let onnxOrder = ["i", "o", "f", "c"], torchOrder = ["i", "f", "c", "o"]
            for (p, gate) in torchOrder.enumerated() {
                let q = onnxOrder.firstIndex(of: gate)!
                for r in 0..<hidden { for c in 0..<cols {
                    if let m = same((p * hidden + r) * cols + c, src[(q * hidden + r) * cols + c]) { return "gate \(gate): " + m }
                } }
            }
        case let .lstmBias(s, hidden, part):
            let src = try s?.floats() ?? [Float](repeating: 0, count: 8 * hidden)
            let onnxOrder = ["i", "o", "f", "c"], torchOrder = ["i", "f", "c", "o"]
            for (p, gate) in torchOrder.enumerated() {
                let q = onnxOrder.firstIndex(of: gate)!
                for r in 0..<hidden { if let m = same(p * hidden + r, src[part * 4 * hidden + q * hidden + r]) { return "gate \(gate): " + m } }
            }
        case let .foldedWeight(s, bn):
            let w = try s.floats(), g = try bn.scale.floats(), v = try bn.variance.floats()
            let k = w.count / g.count
            for i in 0..<w.count {
                let c = i / k
                let e = Double(w[i]) * Double(g[c]) / (Double(v[c]) + Double(bn.epsilon)).squareRoot()
                if abs(Double(stored[i]) - e) > 1e-6 * max(1, abs(e)) { return "element \(i) is \(stored[i]), expected \(e)" }
            }
        case let .foldedBias(s, bn, channels):
            let b = try s?.floats() ?? [Float](repeating: 0, count: channels)
            let g = try bn.scale.floats(), v = try bn.variance.floats(), mu = try bn.mean.floats(), beta = try bn.bias.floats()
            for c in 0..<channels {
                let e = (Double(b[c]) - Double(mu[c])) * Double(g[c]) / (Double(v[c]) + Double(bn.epsilon)).squareRoot() + Double(beta[c])
                if abs(Double(stored[c]) - e) > 1e-6 * max(1, abs(e)) { return "element \(c) is \(stored[c]), expected \(e)" }
            }
        }
        return nil
    }
}

/// One tensor of the output file.
public struct PlannedTensor: Sendable {
    /// Engine name (Weights/FORMAT.md).
    public var name: String
    /// PyTorch-layout shape.
    public var shape: [Int]
    public var recipe: Recipe
    public var count: Int { shape.reduce(1, *) }
}
