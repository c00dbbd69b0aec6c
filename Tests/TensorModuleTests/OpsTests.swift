// Every TensorModule op against numpy references (Tools/reference/make_op_fixtures.py).
// Tolerances: the references are float64; float32 kernels with sums of ≤ 33 terms stay within
// 1e-5 absolute plus 1e-5 relative, and transcendental functions within 2e-6 relative.

import Foundation
import CKernels
import Testing
import TensorModule
import VaniTestSupport

private func load(_ name: String) throws -> (shape: [Int], values: [Float]) {
    try Fixtures.npy("ops/\(name).npy")
}

private func check(_ actual: [Float], _ name: String, atol: Float = 1e-5, rtol: Float = 1e-5,
                   sourceLocation: SourceLocation = #_sourceLocation) throws {
    let expected = try load("\(name).out")
    let result = compare(actual, expected.values, atol: atol, rtol: rtol)
    #expect(result.withinTolerance, "\(name): \(result) at \(multiIndex(result.worstIndex, shape: expected.shape))",
            sourceLocation: sourceLocation)
}

@Suite("TensorModule ops vs numpy")
struct OpsTests {
    @Test("sgemm folds every transpose combination", arguments: [(false, false), (false, true), (true, false), (true, true)])
    func sgemmTransposes(ta: Bool, tb: Bool) throws {
        let name = "sgemm_t\(ta ? 1 : 0)\(tb ? 1 : 0)"
        let a = try load("\(name).a"), b = try load("\(name).b")
        var c = try load("\(name).c0").values
        let (m, n, k) = (7, 5, 9)
        c.withUnsafeMutableBufferPointer { cp in
            sgemm(transA: ta, transB: tb, m: m, n: n, k: k, alpha: 1.5,
                  a: a.values, lda: ta ? m : k, b: b.values, ldb: tb ? k : n,
                  beta: 0.5, c: cp.baseAddress!, ldc: n)
        }
        try check(c, name)
    }

    @Test("a single row goes through sgemv with the same result", arguments: [(false, false), (false, true), (true, false), (true, true)])
    func singleRowSgemm(ta: Bool, tb: Bool) throws {
        // Row 0 of the fixture product: A' is 1×k, so for transA the column 0 of a k×m matrix.
        let name = "sgemm_t\(ta ? 1 : 0)\(tb ? 1 : 0)"
        let a = try load("\(name).a"), b = try load("\(name).b")
        let c0 = try load("\(name).c0").values
        let (m, n, k) = (7, 5, 9)
        var c = Array(c0[0..<n])
        c.withUnsafeMutableBufferPointer { cp in
            sgemm(transA: ta, transB: tb, m: 1, n: n, k: k, alpha: 1.5,
                  a: a.values, lda: ta ? m : k, b: b.values, ldb: tb ? k : n,
                  beta: 0.5, c: cp.baseAddress!, ldc: n)
        }
        let expected = Array(try load("\(name).out").values[0..<n])
        let result = compare(c, expected, atol: 1e-5, rtol: 1e-5)
        #expect(result.withinTolerance, "\(name) m=1: \(result)")
    }

    @Test func batchedSgemmPerHead() throws {
        let q = try load("batched.a"), k = try load("batched.b")
        var out = [Float](repeating: 0, count: 3 * 6 * 8)
        out.withUnsafeMutableBufferPointer { o in
            batchedSgemm(batch: 3, transB: true, m: 6, n: 8, k: 4, a: q.values, lda: 4, strideA: 24,
                         b: k.values, ldb: 4, strideB: 32, c: o.baseAddress!, ldc: 8, strideC: 48)
        }
        try check(out, "batched")
    }

    @Test func linearWithBias() throws {
        let x = try load("linear.x"), w = try load("linear.w"), b = try load("linear.b")
        var y = [Float](repeating: 0, count: 6 * 12)
        y.withUnsafeMutableBufferPointer { yp in
            linear(x.values, rows: 6, inFeatures: 10, weight: w.values, bias: b.values, outFeatures: 12, into: yp.baseAddress!)
        }
        try check(y, "linear")
        // accumulate adds the same product again
        var twice = y
        twice.withUnsafeMutableBufferPointer { yp in
            linear(x.values, rows: 6, inFeatures: 10, weight: w.values, bias: b.values, outFeatures: 12,
                   into: yp.baseAddress!, accumulate: true)
        }
        let expected = try load("linear.out").values.map { 2 * $0 }
        let result = compare(twice, expected, atol: 2e-5, rtol: 1e-5)
        #expect(result.withinTolerance, "linear accumulate: \(result)")
    }

    @Test func layerNormBiasedVariance() throws {
        let x = try load("layernorm.x"), g = try load("layernorm.gamma"), b = try load("layernorm.beta")
        var y = [Float](repeating: 0, count: x.values.count)
        y.withUnsafeMutableBufferPointer { yp in
            layerNorm(x.values, rows: 5, cols: 33, gamma: g.values, beta: b.values, eps: 1e-5, into: yp.baseAddress!)
        }
        try check(y, "layernorm")
    }

    @Test func softmaxAndLogSoftmax() throws {
        var x = try load("softmax.x").values
        x.withUnsafeMutableBufferPointer { softmaxRows($0.baseAddress!, rows: 4, cols: 257) }
        try check(x, "softmax", atol: 1e-7, rtol: 1e-5)
        var y = try load("logsoftmax.x").values
        y.withUnsafeMutableBufferPointer { logSoftmaxRows($0.baseAddress!, rows: 4, cols: 257) }
        try check(y, "logsoftmax", atol: 1e-5, rtol: 1e-6)
    }

    @Test("activations", arguments: ["silu", "sigmoid", "relu", "tanh"])
    func activation(name: String) throws {
        var x = try load("\(name).x").values
        x.withUnsafeMutableBufferPointer { p in
            let n = p.count
            switch name {
            case "silu": silu(p.baseAddress!, count: n)
            case "sigmoid": sigmoid(p.baseAddress!, count: n)
            case "relu": relu(p.baseAddress!, count: n)
            default: TensorModule.tanh(p.baseAddress!, count: n)
            }
        }
        try check(x, name, atol: 1e-6, rtol: 2e-6)
    }

    @Test func gluOverChannels() throws {
        let x = try load("glu.x")
        var y = [Float](repeating: 0, count: 7 * 11)
        y.withUnsafeMutableBufferPointer { glu(x.values, rows: 7, channels: 11, into: $0.baseAddress!) }
        try check(y, "glu", atol: 1e-6, rtol: 2e-6)
    }

    @Test func fusedBiasActivations() throws {
        var x = try load("bias_silu.x").values
        let b = try load("bias_silu.b").values
        x.withUnsafeMutableBufferPointer { biasSilu($0.baseAddress!, rows: 5, cols: 24, bias: b) }
        try check(x, "bias_silu", atol: 1e-6, rtol: 2e-6)
        let g = try load("bias_glu.x").values, gb = try load("bias_glu.b").values
        var y = [Float](repeating: 0, count: 6 * 13)
        y.withUnsafeMutableBufferPointer { biasGLU(g, rows: 6, channels: 13, bias: gb, into: $0.baseAddress!) }
        try check(y, "bias_glu", atol: 1e-6, rtol: 2e-6)
    }

    @Test func biasAndResidual() throws {
        var x = try load("addbias.x").values
        let b = try load("addbias.b").values
        x.withUnsafeMutableBufferPointer { addBias(rows: 6, cols: 9, bias: b, into: $0.baseAddress!) }
        try check(x, "addbias")
        let r = try load("addscaled.x").values
        var y = try load("addscaled.y").values
        y.withUnsafeMutableBufferPointer { addScaled(r, alpha: 0.5, into: $0.baseAddress!, count: 50) }
        try check(y, "addscaled")
    }

    @Test func depthwiseConv1dSamePadding() throws {
        let x = try load("dwconv1d.x"), w = try load("dwconv1d.w"), b = try load("dwconv1d.b")
        let (T, C, K) = (13, 6, 9)
        var kernelMajor = [Float](repeating: 0, count: K * C)
        kernelMajor.withUnsafeMutableBufferPointer { transpose(w.values, rows: C, cols: K, into: $0.baseAddress!) }
        var y = [Float](repeating: 0, count: T * C)
        y.withUnsafeMutableBufferPointer { yp in
            depthwiseConv1d(x.values, frames: T, channels: C, weight: kernelMajor, kernel: K, bias: b.values,
                            padding: (K - 1) / 2, into: yp.baseAddress!)
        }
        try check(y, "dwconv1d")
    }

    @Test("conv2d 3×3 stride 2", arguments: [("conv2d_c1", 1, 4, 1), ("conv2d_c3", 3, 5, 1), ("conv2d_dw", 4, 4, 4)])
    func conv2dStride2(name: String, cin: Int, cout: Int, groups: Int) throws {
        let x = try load("\(name).x"), w = try load("\(name).w"), b = try load("\(name).b")
        let shape = Conv2dShape(channelsIn: cin, height: 11, width: 10, channelsOut: cout, groups: groups)
        #expect(shape.outHeight == 6 && shape.outWidth == 5)
        var y = [Float](repeating: 0, count: cout * shape.outHeight * shape.outWidth)
        var scratch = [Float](repeating: .nan, count: max(shape.scratchCount, 1))
        y.withUnsafeMutableBufferPointer { yp in
            scratch.withUnsafeMutableBufferPointer { sp in
                conv2d(x.values, shape: shape, weight: w.values, bias: b.values, into: yp.baseAddress!, scratch: sp.baseAddress!)
            }
        }
        try check(y, name)
    }

    @Test func transposeAndArgmax() throws {
        let x = try load("transpose.x")
        var t = [Float](repeating: 0, count: x.values.count)
        t.withUnsafeMutableBufferPointer { transpose(x.values, rows: 7, cols: 12, into: $0.baseAddress!) }
        try check(t, "transpose", atol: 0, rtol: 0)
        let a = try load("argmax.x").values
        let expected = try load("argmax.out").values.map { Int($0) }
        let got = (0..<40).map { r in a.withUnsafeBufferPointer { argmax($0.baseAddress! + r * 257, count: 257).index } }
        #expect(got == expected)
    }

    @Test func kernelExpIsWithinTwoUlpOfDoubleExp() {
        var worst: Double = 0
        var at: Float = 0
        for i in 0..<20_001 {
            let x = Float(i - 10_000) * 0.0087   // [-87, 87]
            let got = Double(vani_exp(x))
            let rel = abs(got - Foundation.exp(Double(x))) / Foundation.exp(Double(x))
            if rel > worst { worst = rel; at = x }
        }
        #expect(worst < 2.5e-7, "vani_exp worst relative error \(worst) at x = \(at)")
    }

    @Test func scratchArenaPlansAndResets() {
        let arena = ScratchArena(capacity: ScratchArena.footprint(10) + ScratchArena.footprint(100))
        let a = arena.allocate(10)
        let b = arena.allocate(100)
        #expect(b - a == 16)
        #expect(Int(bitPattern: UnsafeRawPointer(b)) % 64 == 0)
        arena.reset()
        #expect(arena.allocate(10) == a)
    }

    @Test func npyRoundTrip() throws {
        let values: [Float] = (0..<12).map { Float($0) * 0.5 - 2 }
        let parsed = try NPY.parse(NPY.encode(values, shape: [3, 4]))
        #expect(parsed.shape == [3, 4])
        #expect(parsed.values == values)
    }

    @Test func npyReadsFortranOrderAsCOrder() throws {
        // numpy.save(np.asfortranarray([[1, 2, 3], [4, 5, 6]], dtype='<f4'))
        var header = "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }"
        header += String(repeating: " ", count: 64 - (10 + header.utf8.count + 1) % 64) + "\n"
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count), 0] + Array(header.utf8))
        for v: Float in [1, 4, 2, 5, 3, 6] { withUnsafeBytes(of: v.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
        let parsed = try NPY.parse(data)
        #expect(parsed.shape == [2, 3])
        #expect(parsed.values == [1, 2, 3, 4, 5, 6])
    }

    @Test func blasThreadsAreSetDeliberately() {
        // The process setting is left as it is (other suites run at the same time): setting the
        // value it has must leave OpenBLAS single-threaded and the pool at that value.
        let threads = Parallel.threads
        BLAS.setThreads(threads)
        #expect(BLAS.threads == threads)
        #expect(BLAS.openBLASThreads == 1)
        #expect(Parallel.withThreads(3) { Parallel.threads } == 3)
        #expect(Parallel.threads == threads)
        #expect(!BLAS.coreName.isEmpty)
    }
}
