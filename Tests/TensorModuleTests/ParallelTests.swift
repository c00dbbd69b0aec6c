// The fork-join pool (Sources/CKernels/pool.c, TensorModule/Parallel.swift) and the ops that
// split their work over it. Splitting rows never changes how one output element is computed, so
// the element-wise results must equal the single-threaded ones bit for bit; split GEMMs are
// checked against a float64 reference (|Δ| ≤ 1e-4 + 1e-4·|e|: sums of ≤ 2000 products in [-1, 1)).

import Foundation
import Testing
import TensorModule
import VaniTestSupport

/// Runs `body` with `threads` threads on this test's thread only (other suites run at the same time).
private func withThreads<T>(_ threads: Int, _ body: () throws -> T) rethrows -> T {
    try Parallel.withThreads(threads) {
        #expect(Parallel.threads == threads)
        return try body()
    }
}

/// Deterministic pseudo-random values in [-1, 1).
private func values(_ count: Int, seed: UInt64) -> [Float] {
    var state = seed &* 6364136223846793005 &+ 1442695040888963407
    return (0..<count).map { _ in
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Float(Int64(bitPattern: state >> 11) % 2_000_000) / 1_000_000 - 1
    }
}

@Suite("Parallel pool and split ops", .serialized)
struct ParallelTests {
    @Test("forEach runs every index exactly once", arguments: [1, 2, 3, 17, 1000, 70_000])
    func everyIndexOnce(count: Int) {
        withThreads(2) {
            let hits = UnsafeMutablePointer<Int>.allocate(capacity: count)
            defer { hits.deallocate() }
            hits.initialize(repeating: 0, count: count)
            Parallel.forEach(count) { i in hits[i] += 1 }
            let wrong = (0..<count).filter { hits[$0] != 1 }
            #expect(wrong.isEmpty, "indices not run exactly once: \(wrong.prefix(10))")
        }
    }

    @Test("a step inside a task runs serially and completes")
    func nestedSteps() {
        withThreads(2) {
            let hits = UnsafeMutablePointer<Int>.allocate(capacity: 8 * 50)
            defer { hits.deallocate() }
            hits.initialize(repeating: 0, count: 8 * 50)
            Parallel.forEach(8) { outer in
                #expect(Parallel.inTask)
                // Changing this thread's setting inside a task must not wait for the step.
                Parallel.withThreads(1) { Parallel.forEach(50) { inner in hits[outer * 50 + inner] += 1 } }
            }
            #expect((0..<400).allSatisfy { hits[$0] == 1 })
            #expect(!Parallel.inTask)
        }
    }

    @Test("steps from several threads at once are all complete")
    func concurrentCallers() async {
        let results = await withTaskGroup(of: Bool.self) { group in
            for caller in 0..<4 {
                group.addTask {
                    Parallel.withThreads(2) {
                    for round in 0..<200 {
                        let count = 1 + (caller * 37 + round * 13) % 300
                        var sums = [Int](repeating: 0, count: count)
                        sums.withUnsafeMutableBufferPointer { s in
                            let base = s.baseAddress!
                            Parallel.forEach(count) { i in base[i] = i * i }
                        }
                        if sums != (0..<count).map({ $0 * $0 }) { return false }
                    }
                    return true
                    }
                }
            }
            var all: [Bool] = []
            for await ok in group { all.append(ok) }
            return all
        }
        #expect(results == [true, true, true, true])
    }

    @Test("split sgemm equals one call and float64",
          arguments: [(70, 300, 200), (600, 40, 400), (251, 1024, 64), (33, 130, 2000)])
    func splitSgemm(shape: (Int, Int, Int)) {
        let (m, n, k) = shape
        #expect(2 * m * n * k >= Parallel.minimumGEMMWork, "shape too small to be split")
        for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
            let a = values(m * k, seed: 1), b = values(k * n, seed: 2), c0 = values(m * n, seed: 3)
            let (lda, ldb) = (ta ? m : k, tb ? k : n)
            func run(_ threads: Int) -> [Float] {
                var c = c0
                withThreads(threads) {
                    c.withUnsafeMutableBufferPointer { cp in
                        sgemm(transA: ta, transB: tb, m: m, n: n, k: k, alpha: 0.75, a: a, lda: lda,
                              b: b, ldb: ldb, beta: 0.5, c: cp.baseAddress!, ldc: n)
                    }
                }
                return c
            }
            let serial = run(1), parallel = run(2)
            var reference = [Float](repeating: 0, count: m * n)
            for i in 0..<m {
                for j in 0..<n {
                    var s = 0.0
                    for p in 0..<k {
                        s += Double(ta ? a[p * lda + i] : a[i * lda + p]) * Double(tb ? b[j * ldb + p] : b[p * ldb + j])
                    }
                    reference[i * n + j] = Float(0.75 * s + 0.5 * Double(c0[i * n + j]))
                }
            }
            let result = compare(parallel, reference, atol: 1e-4, rtol: 1e-4)
            #expect(result.withinTolerance, "m=\(m) n=\(n) k=\(k) transA=\(ta) transB=\(tb): \(result)")
            // The split may differ from one call in the last bits: OpenBLAS takes its small-matrix
            // kernel (another summation order) for the smaller parts. Both must be as accurate.
            let whole = compare(serial, reference, atol: 1e-4, rtol: 1e-4)
            #expect(whole.withinTolerance, "one call, transA=\(ta) transB=\(tb): \(whole)")
        }
    }

    @Test("row-split element-wise ops equal their single-threaded results bit for bit")
    func elementwiseSplits() {
        let (rows, cols) = (301, 512)
        let x = values(rows * 2 * cols, seed: 7), bias = values(2 * cols, seed: 8)
        let gamma = values(cols, seed: 9), beta = values(cols, seed: 10)
        let kernel = values(9 * cols, seed: 11)
        func run(_ threads: Int) -> [String: [Float]] {
            withThreads(threads) {
                var out: [String: [Float]] = [:]
                var buffer = Array(x[0..<(rows * cols)])
                var result = [Float](repeating: 0, count: rows * cols)
                buffer.withUnsafeMutableBufferPointer { b in
                    result.withUnsafeMutableBufferPointer { r in
                        layerNorm(b.baseAddress!, rows: rows, cols: cols, gamma: gamma, beta: beta, eps: 1e-5, into: r.baseAddress!)
                        out["layerNorm"] = Array(r)
                        biasGLU(x, rows: rows, channels: cols, bias: bias, into: r.baseAddress!)
                        out["biasGLU"] = Array(r)
                        glu(x, rows: rows, channels: cols, into: r.baseAddress!)
                        out["glu"] = Array(r)
                        depthwiseConv1d(b.baseAddress!, frames: rows, channels: cols, weight: kernel, kernel: 9,
                                        bias: bias, padding: 4, into: r.baseAddress!)
                        out["depthwiseConv1d"] = Array(r)
                        biasSilu(b.baseAddress!, rows: rows, cols: cols, bias: bias)
                        out["biasSilu"] = Array(b)
                        silu(b.baseAddress!, count: rows * cols)
                        out["silu"] = Array(b)
                        sigmoid(b.baseAddress!, count: rows * cols - 5)
                        out["sigmoid"] = Array(b)
                        addScaled(r.baseAddress!, alpha: 0.5, into: b.baseAddress!, count: rows * cols - 3)
                        out["addScaled"] = Array(b)
                        scale(b.baseAddress!, by: 1.5, count: rows * cols)
                        out["scale"] = Array(b)
                        addBias(rows: rows, cols: cols, bias: bias, into: b.baseAddress!)
                        out["addBias"] = Array(b)
                        softmaxRows(b.baseAddress!, rows: rows, cols: cols)
                        out["softmaxRows"] = Array(b)
                        logSoftmaxRows(r.baseAddress!, rows: rows, cols: cols)
                        out["logSoftmaxRows"] = Array(r)
                    }
                }
                return out
            }
        }
        let serial = run(1), parallel = run(2)
        #expect(serial.keys.count == 12)
        for (name, expected) in serial.sorted(by: { $0.key < $1.key }) {
            let result = compare(parallel[name] ?? [], expected, atol: 0)
            #expect(result.withinTolerance, "\(name): \(result)")
        }
    }

    @Test("the in-place-weights kernel (X · Wᵀ) equals float64 and OpenBLAS on odd shapes and strides",
          arguments: [(2, 9, 17), (31, 33, 100), (33, 8, 1), (64, 100, 1500), (300, 40, 2050), (512, 24, 64),
                      (96, 200, 1024), (33, 130, 1025), (64, 64, 2048)])
    func inPlaceWeightsKernel(shape: (Int, Int, Int)) {
        // Where the CPU lacks AVX-512F this compares OpenBLAS with itself (the fallback path).
        let (m, n, k) = shape
        // Padded leading dimensions: the kernel must honour lda/ldb/ldc; NaN past k in A and B
        // makes any read beyond k show in the result.
        let (lda, ldb, ldc) = (k + 3, k + 5, n + 7)
        func padded(_ rows: Int, _ ld: Int, seed: UInt64) -> [Float] {
            var x = values(rows * ld, seed: seed)
            for r in 0..<rows { for p in k..<ld { x[r * ld + p] = .nan } }
            return x
        }
        let a = padded(m, lda, seed: 21), b = padded(n, ldb, seed: 22)
        for (alpha, beta) in [(Float(1), Float(0)), (0.75, 0.5)] {
            // With beta 0, C starts as NaN: the result must not read it. Two sentinel rows follow C.
            let c0 = (beta == 0 ? [Float](repeating: .nan, count: m * ldc) : values(m * ldc, seed: 23))
                + values(2 * ldc, seed: 24)
            func run(threads: Int, openBLASOnly: Bool) -> [Float] {
                var c = c0
                withThreads(threads) {
                    let product = {
                        c.withUnsafeMutableBufferPointer { cp in
                            sgemm(transA: false, transB: true, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                                  b: b, ldb: ldb, beta: beta, c: cp.baseAddress!, ldc: ldc)
                        }
                    }
                    if openBLASOnly { BLAS.withOpenBLASOnly(product) } else { product() }
                }
                return (0..<m).flatMap { i in c[(i * ldc)..<(i * ldc + n)] }
            }
            var reference = [Float](repeating: 0, count: m * n)
            for i in 0..<m {
                for j in 0..<n {
                    var sum = 0.0
                    for p in 0..<k { sum += Double(a[i * lda + p]) * Double(b[j * ldb + p]) }
                    reference[i * n + j] = Float(Double(alpha) * sum + (beta == 0 ? 0 : Double(beta) * Double(c0[i * ldc + j])))
                }
            }
            let openBLAS = run(threads: 1, openBLASOnly: true)
            for threads in [1, 2, 3] {
                let kernel = run(threads: threads, openBLASOnly: false)
                let result = compare(kernel, reference, atol: 1e-4, rtol: 1e-4)
                #expect(result.withinTolerance, "m=\(m) n=\(n) k=\(k) alpha=\(alpha) beta=\(beta) threads=\(threads): \(result)")
                let vsBLAS = compare(kernel, openBLAS, atol: 1e-4, rtol: 1e-4)
                #expect(vsBLAS.withinTolerance, "vs OpenBLAS, threads=\(threads): \(vsBLAS)")
                if threads > 1 {
                    // One output element is one FMA chain over K whatever the split: bit-identical.
                    #expect(kernel == run(threads: 1, openBLASOnly: false), "\(threads) threads differ from 1")
                }
                // Nothing written past the n columns of each row of C.
                var c = c0
                withThreads(threads) {
                    c.withUnsafeMutableBufferPointer { cp in
                        sgemm(transA: false, transB: true, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                              b: b, ldb: ldb, beta: beta, c: cp.baseAddress!, ldc: ldc)
                    }
                }
                let padding = (0..<m).flatMap { i in (n..<ldc).map { i * ldc + $0 } } + Array((m * ldc)..<c0.count)
                #expect(padding.allSatisfy { c[$0].bitPattern == c0[$0].bitPattern }, "C was written outside its m × n")
            }
        }
    }
}
