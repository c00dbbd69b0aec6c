// The bf16 and int8 products (Sources/CKernels/qgemm.c, TensorModule/ReducedPrecision.swift)
// against a float64 reference of the fp32 product, on the AVX-512 path where the CPU has it and
// on the portable path forced on this thread.
//
// Tolerances, per output element, from the formats themselves (a bound, not a fit):
// - bf16: both factors are rounded to bf16 (relative error ≤ 2⁻⁹ each), so each product is off by
//   at most (2⁻⁸ + 2⁻¹⁸)·|a||w|; with fp32 sums: |Δ| ≤ 2⁻⁸·Σ|a||w| · 1.01 + 1e-6.
// - int8: a ≈ sₐ(q − z) with |Δa| ≤ sₐ (half a step, or one step where the rounded zero point
//   pushes the row's extreme past 0…255 and it is clamped), w ≈ s_w·v with |Δw| ≤ s_w/2, so each
//   product is off by at most |a|·s_w/2 + |w|·sₐ + sₐs_w/2, summed over K (int32 sums are
//   exact), plus 1e-5·Σ|a||w| for the fp32 epilogue.
// The portable path gives the same bits for int8 (exact integer sums, shared epilogue) and the
// same products in the same order for bf16.

import Foundation
import Testing
import TensorModule
import VaniTestSupport

/// Deterministic pseudo-random values in [-scale, scale), optionally shifted (after SiLU the
/// activations are mostly positive: `shift` tests the asymmetric quantization).
private func values(_ count: Int, seed: UInt64, scale: Float = 1, shift: Float = 0) -> [Float] {
    var state = seed &* 6364136223846793005 &+ 1442695040888963407
    return (0..<count).map { _ in
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return (Float(Int64(bitPattern: state >> 11) % 2_000_000) / 1_000_000 - 1) * scale + shift
    }
}

/// The weights of one test product in both reduced formats.
private struct Reduced {
    let m, n, k: Int
    let a, w: [Float]
    let bf16: [UInt16]       // [n, ldb]
    let ldb: Int
    let int8: [Int8]         // [n, ldq]
    let ldq: Int
    let scales: [Float]
    let sums: [Int32]

    init(m: Int, n: Int, k: Int, seed: UInt64, shift: Float = 0) {
        self.m = m; self.n = n; self.k = k
        let a = values(m * k, seed: seed, shift: shift)
        let w = values(n * k, seed: seed + 1, scale: 0.05)
        let ldb = (k + 1) & ~1, ldq = (k + 3) & ~3
        var b = [UInt16](repeating: 0, count: n * ldb)
        var q = [Int8](repeating: 0, count: n * ldq), s = [Float](repeating: 0, count: n), t = [Int32](repeating: 0, count: n)
        w.withUnsafeBufferPointer { wp in
            b.withUnsafeMutableBufferPointer { out in
                for r in 0..<n { ReducedPrecisionKernels.toBF16(wp.baseAddress! + r * k, count: k, into: out.baseAddress! + r * ldb) }
            }
            ReducedPrecisionKernels.quantizeInt8(wp.baseAddress!, rows: n, cols: k, ldw: k, into: &q, ldq: ldq,
                                                 scales: &s, sums: &t)
        }
        self.a = a; self.w = w; self.ldb = ldb; self.ldq = ldq
        bf16 = b; int8 = q; scales = s; sums = t
    }

    func runBF16(beta: Float = 0, c initial: [Float]? = nil) -> [Float] {
        var c = initial ?? [Float](repeating: 0, count: m * n)
        gemmBF16(m: m, n: n, k: k, a: a, lda: k, w: bf16, ldw: ldb, beta: beta, c: &c, ldc: n)
        return c
    }

    func runInt8(beta: Float = 0, c initial: [Float]? = nil) -> [Float] {
        var c = initial ?? [Float](repeating: 0, count: m * n)
        gemmInt8(m: m, n: n, k: k, a: a, lda: k, w: int8, ldw: ldq, scales: scales, sums: sums, beta: beta, c: &c, ldc: n)
        return c
    }

    /// float64 A · Wᵀ and, per element, the bound of the header for each format.
    func reference() -> (exact: [Double], bf16Bound: [Double], int8Bound: [Double]) {
        var exact = [Double](repeating: 0, count: m * n)
        var bBound = exact, qBound = exact
        for i in 0..<m {
            let row = a[(i * k)..<((i + 1) * k)]
            let lo = min(0, row.min()!), hi = max(0, row.max()!)
            let sa = Double(hi > lo ? (hi - lo) / 255 : 1)
            for j in 0..<n {
                var s = 0.0, mag = 0.0, q = 0.0
                let sw = Double(scales[j])
                for kk in 0..<k {
                    let x = Double(a[i * k + kk]), y = Double(w[j * k + kk])
                    s += x * y; mag += abs(x * y)
                    q += abs(x) * sw / 2 + abs(y) * sa + sa * sw / 2
                }
                exact[i * n + j] = s
                bBound[i * n + j] = 0x1p-8 * mag * 1.01 + 1e-6
                qBound[i * n + j] = q + 1e-5 * mag + 1e-6
            }
        }
        return (exact, bBound, qBound)
    }
}

/// The worst element of `actual` against `exact` relative to its `bound`: (index, ratio, actual, exact).
private func worst(_ actual: [Float], _ exact: [Double], _ bound: [Double]) -> (Int, Double, Float, Double) {
    var best = (0, -1.0, Float(0), 0.0)
    for i in actual.indices {
        let r = abs(Double(actual[i]) - exact[i]) / bound[i]
        if r > best.1 { best = (i, r, actual[i], exact[i]) }
    }
    return best
}

/// Relative RMS error ‖actual − exact‖ / ‖exact‖.
private func relativeRMS(_ actual: [Float], _ exact: [Double]) -> Double {
    var e = 0.0, r = 0.0
    for i in actual.indices { e += pow(Double(actual[i]) - exact[i], 2); r += exact[i] * exact[i] }
    return (e / max(r, 1e-30)).squareRoot()
}

@Suite("bf16 and int8 products", .serialized)
struct ReducedPrecisionTests {
    // Shapes: ragged M (not a multiple of the 32-row panel), N (not of the 8-row tile), odd K
    // (padding of the pair / quad), K past one pass (bf16 2048, int8 4096), a single row.
    static let shapes: [(Int, Int, Int)] = [(37, 21, 30), (1, 8, 7), (64, 48, 129), (33, 17, 2050), (9, 10, 4101)]

    @Test("bf16 within its bound of float64, AVX-512 and portable paths", arguments: 0..<5)
    func bf16(shape: Int) {
        let (m, n, k) = Self.shapes[shape]
        let r = Reduced(m: m, n: n, k: k, seed: UInt64(10 + shape))
        let ref = r.reference()
        let native = r.runBF16()
        let portable = ReducedPrecisionKernels.withPortablePath { r.runBF16() }
        for (name, c) in [("native", native), ("portable", portable)] {
            let (i, ratio, got, want) = worst(c, ref.exact, ref.bf16Bound)
            print("bf16 \(name) [\(m)×\(k)]·[\(n)×\(k)]ᵀ: worst at \(i / n),\(i % n): \(got) vs \(want), \(String(format: "%.3f", ratio)) of the bound; relative RMS \(relativeRMS(c, ref.exact))")
            #expect(ratio <= 1, "bf16 \(name): element \(i / n),\(i % n) is \(got), float64 \(want), \(ratio)× the bound")
        }
        let diff = zip(native, portable).map { abs($0 - $1) }.max() ?? 0
        let scale = native.map(abs).max() ?? 1
        print("bf16 native vs portable: max |Δ| \(diff)")
        // Same products in the same order; only the instruction's flushing of denormals may differ.
        #expect(diff <= 1e-6 * max(scale, 1), "bf16 portable path differs from the native one by \(diff)")
    }

    @Test("int8 within its bound of float64; portable path bit for bit", arguments: 0..<5)
    func int8(shape: Int) {
        let (m, n, k) = Self.shapes[shape]
        for shift: Float in [0, 0.7] {
            let r = Reduced(m: m, n: n, k: k, seed: UInt64(20 + shape), shift: shift)
            let ref = r.reference()
            let native = r.runInt8()
            let portable = ReducedPrecisionKernels.withPortablePath { r.runInt8() }
            let (i, ratio, got, want) = worst(native, ref.exact, ref.int8Bound)
            print("int8 (shift \(shift)) [\(m)×\(k)]·[\(n)×\(k)]ᵀ: worst at \(i / n),\(i % n): \(got) vs \(want), \(String(format: "%.3f", ratio)) of the bound; relative RMS \(relativeRMS(native, ref.exact))")
            #expect(ratio <= 1, "int8: element \(i / n),\(i % n) is \(got), float64 \(want), \(ratio)× the bound")
            let differing = zip(native, portable).filter { $0.bitPattern != $1.bitPattern }.count
            #expect(differing == 0, "int8 portable path differs from the native one in \(differing) elements")
        }
    }

    @Test("beta accumulates, and the thread count changes no bit")
    func betaAndThreads() {
        let r = Reduced(m: 70, n: 300, k: 256, seed: 99)
        let start = values(70 * 300, seed: 5)
        let zeroB = r.runBF16(), zeroQ = r.runInt8()
        let addedB = r.runBF16(beta: 1, c: start), addedQ = r.runInt8(beta: 1, c: start)
        for i in start.indices {
            #expect(abs(addedB[i] - (zeroB[i] + start[i])) <= 1e-6 * (1 + abs(start[i])))
            #expect(abs(addedQ[i] - (zeroQ[i] + start[i])) <= 1e-6 * (1 + abs(start[i])))
        }
        // 2·70·300·256 ≈ 10.8 MFLOP is above Parallel.minimumGEMMWork: split over the pool.
        let one = Parallel.withThreads(1) { (r.runBF16(), r.runInt8()) }
        let two = Parallel.withThreads(2) { (r.runBF16(), r.runInt8()) }
        #expect(one.0 == two.0, "bf16 product changes with the thread count")
        #expect(one.1 == two.1, "int8 product changes with the thread count")
    }

    @Test("weight quantization: scales, range, sums and padding")
    func quantization() {
        let (n, k) = (5, 13)
        let w = values(n * k, seed: 3)
        let ldq = 16
        var q = [Int8](repeating: 99, count: n * ldq), s = [Float](repeating: 0, count: n), t = [Int32](repeating: 0, count: n)
        ReducedPrecisionKernels.quantizeInt8(w, rows: n, cols: k, ldw: k, into: &q, ldq: ldq, scales: &s, sums: &t)
        for r in 0..<n {
            let row = w[(r * k)..<((r + 1) * k)]
            #expect(s[r] == row.map(abs).max()! / 127)
            #expect(t[r] == (0..<k).reduce(Int32(0)) { $0 + Int32(q[r * ldq + $1]) })
            #expect((k..<ldq).allSatisfy { q[r * ldq + $0] == 0 }, "row \(r) is not zero-padded")
            for j in 0..<k {
                #expect(abs(Float(q[r * ldq + j]) * s[r] - w[r * k + j]) <= s[r] * 0.5001)
                #expect(abs(Int(q[r * ldq + j])) <= 127)
            }
        }
        // bf16: round to nearest even.
        let x: [Float] = [1, 1 + 0x1p-8, 1 + 0x1p-7 + 0x1p-8, -3.1415927, 0]
        var bits = [UInt16](repeating: 0, count: x.count)
        ReducedPrecisionKernels.toBF16(x, count: x.count, into: &bits)
        #expect(bits == [0x3F80, 0x3F80, 0x3F82, 0xC049, 0])
    }
}
