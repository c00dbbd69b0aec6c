// The seams new backends plug into: the weight product (`LinearWeights` and its epilogues), the
// language and decoder values resolved at the door, the backend chosen by `RecognizerOptions`,
// the per-recognizer thread setting, and scratch sizes measured from the carving code.

import ASR
import Backend
import ConformerModel
import Decoding
import Foundation
import TensorModule
import Testing
import VaniTestSupport
import WeightFormat

/// Seeded values in [-1, 1).
private func seeded(_ count: Int, seed: UInt64) -> [Float] {
    var state = seed
    return (0..<count).map { _ in
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Float(state >> 40) / Float(1 << 23) - 1
    }
}

@Suite("Seams: weight products, languages, backends")
struct SeamTests {
    static let (rows, inF, outF) = (5, 24, 6)
    static let x = seeded(rows * inF, seed: 1)
    static let w = FloatWeights(shape: [outF, inF], values: seeded(outF * inF, seed: 2))
    static let b = FloatWeights(shape: [outF], values: seeded(outF, seed: 3))
    static let weights = LinearWeights(weight: w, bias: b, out: outF, in: inF)

    /// y = x · Wᵀ (+ b) the way the encoder computed it before the seam: `linear` directly.
    static func reference(bias: Bool) -> [Float] {
        var y = [Float](repeating: 0, count: rows * outF)
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
            linear(xp.baseAddress!, rows: rows, inFeatures: inF, weight: w.pointer, bias: bias ? b.pointer : nil,
                   outFeatures: outF, into: yp.baseAddress!)
        } }
        return y
    }

    static func apply(_ epilogue: (UnsafeMutablePointer<Float>) -> LinearWeights.Epilogue, width: Int,
                      accumulateInto initial: [Float]? = nil) -> [Float] {
        var y = initial ?? [Float](repeating: 0, count: rows * width)
        var product = [Float](repeating: 0, count: rows * outF)
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in product.withUnsafeMutableBufferPointer { pp in
            weights.apply(xp.baseAddress!, rows: rows, into: yp.baseAddress!, epilogue: epilogue(pp.baseAddress!),
                          accumulate: initial != nil)
        } } }
        return y
    }

    @Test func epiloguesEqualTheOpsTheyFuse() {
        let plain = Self.reference(bias: false), biased = Self.reference(bias: true)
        #expect(Self.apply({ _ in .none }, width: Self.outF) == plain, "none: x · Wᵀ")
        #expect(Self.apply({ _ in .bias }, width: Self.outF) == biased, "bias: x · Wᵀ + b")
        // bias + SiLU: the product, then vani_bias_silu over it, bit for bit.
        var silu = plain
        silu.withUnsafeMutableBufferPointer { biasSilu($0.baseAddress!, rows: Self.rows, cols: Self.outF, bias: Self.b.pointer) }
        #expect(Self.apply({ _ in .biasSiLU }, width: Self.outF) == silu)
        // bias + GLU: the product, then vani_bias_glu into half the width.
        var glu = [Float](repeating: 0, count: Self.rows * Self.outF / 2)
        plain.withUnsafeBufferPointer { p in glu.withUnsafeMutableBufferPointer {
            biasGLU(p.baseAddress!, rows: Self.rows, channels: Self.outF / 2, bias: Self.b.pointer, into: $0.baseAddress!)
        } }
        #expect(Self.apply({ .biasGLU(product: $0) }, width: Self.outF / 2) == glu)
        // Accumulating: y += x · Wᵀ + b.
        let start = seeded(Self.rows * Self.outF, seed: 4)
        let sum = Self.apply({ _ in .bias }, width: Self.outF, accumulateInto: start)
        for i in sum.indices { #expect(abs(sum[i] - (start[i] + biased[i])) <= 1e-6 * max(1, abs(sum[i])), "element \(i)") }
    }

    @Test func outputColumnsEqualTheFullProductsColumns() {
        let full = Self.reference(bias: true)
        let (columns, ldy) = (2..<5, 7)
        var y = [Float](repeating: .nan, count: Self.rows * ldy)
        Self.x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer {
            Self.weights.apply(xp.baseAddress!, rows: Self.rows, outputs: columns, into: $0.baseAddress! + 1, ldy: ldy)
        } }
        var worst: Float = 0
        for r in 0..<Self.rows {
            #expect(y[r * ldy].isNaN, "column before the range untouched")
            for (j, c) in columns.enumerated() {
                worst = max(worst, abs(y[r * ldy + 1 + j] - full[r * Self.outF + c]))
            }
        }
        // A different n may change the kernel's blocking, not the sum over k: stated 1e-6.
        #expect(worst <= 1e-6, "worst |Δ| \(worst)")
    }

    @Test func channelMajorProductIsTheDenseConvolution() {
        // A 3×3 stride-2 convolution 2 → 3 channels over an 5×6 plane, through im2col + the seam,
        // equals conv2d (im2col + sgemm) bit for bit.
        let shape = Conv2dShape(channelsIn: 2, height: 5, width: 6, channelsOut: 3)
        let input = seeded(2 * 5 * 6, seed: 5)
        let kernel = FloatWeights(shape: [3, 2, 3, 3], values: seeded(54, seed: 6))
        let bias = FloatWeights(shape: [3], values: seeded(3, seed: 7))
        let conv = LinearWeights(weight: kernel, bias: bias, out: 3, in: 18)
        let plane = shape.outHeight * shape.outWidth
        var viaConv2d = [Float](repeating: 0, count: 3 * plane), viaSeam = viaConv2d
        var col = [Float](repeating: 0, count: shape.scratchCount)
        input.withUnsafeBufferPointer { ip in col.withUnsafeMutableBufferPointer { cp in
            viaConv2d.withUnsafeMutableBufferPointer {
                conv2d(ip.baseAddress!, shape: shape, weight: kernel.pointer, bias: bias.pointer, into: $0.baseAddress!,
                       scratch: cp.baseAddress!)
            }
            im2col(ip.baseAddress!, shape: shape, into: cp.baseAddress!)
            viaSeam.withUnsafeMutableBufferPointer { conv.applyChannelMajor(cp.baseAddress!, columns: plane, into: $0.baseAddress!) }
        } }
        #expect(viaSeam == viaConv2d)
    }

    @Test func scratchCapacityIsMeasuredFromTheCarvingCode() {
        let needed = ScratchArena.capacity { arena in
            _ = arena.allocate(10)
            _ = arena.allocateZeroed(100)
        }
        #expect(needed == ScratchArena.footprint(10) + ScratchArena.footprint(100))
        let arena = ScratchArena(capacity: needed)
        _ = arena.allocate(10)
        _ = arena.allocateZeroed(100)
        #expect(arena.allocated == arena.capacity, "the measured plan fits exactly")
    }

    // MARK: - Languages, decoders, backends

    @Test func languagesResolveOnceIntoValues() throws {
        let recognizer = try ConvertedModels.recognizer("tiny-release")
        let hindi = try recognizer.language("hi")
        let entry = try #require(recognizer.config.languages["hi"])
        #expect(hindi.code == "hi")
        #expect(hindi.ctcBlock == entry.blockStart..<(entry.blockStart + entry.blockSize))
        #expect(hindi.vocabulary.pieces == entry.vocabulary)
        #expect(hindi.postNet?.outFeatures == entry.blockSize + 1)
        #expect(throws: RecognizerError.unknownLanguage("xx", available: recognizer.info.languages)) {
            try recognizer.language("xx")
        }
        #expect(try recognizer.decoder(.ctc, for: hindi).kind == .ctc)
        #expect(try recognizer.decoder(.rnnt, for: hindi).kind == .rnnt)
        // A language without a joint post-net has no RNN-T decoder: refused at the door.
        let ctcOnly = Language(code: "hi", vocabulary: hindi.vocabulary, ctcBlock: hindi.ctcBlock, postNet: nil)
        #expect(throws: RecognizerError.decoderUnavailable(.rnnt)) { try recognizer.decoder(.rnnt, for: ctcOnly) }
    }

    @Test func theBackendIsChosenByOptionsAndBatchesEqualSingles() throws {
        let url = try #require(ConvertedModels.urls["tiny-variant"])
        let recognizer = try Recognizer(modelURL: url, options: RecognizerOptions(threads: 2, device: .cpu))
        #expect(recognizer.backend.device == .cpu)
        let samples = try ["hi_1s", "ta_3s"].map { try AudioDecoderShim.samples(Fixtures.url("clips/\($0).wav")) }
        let features = samples.map(recognizer.features)
        let decoder = try recognizer.decoder(.rnnt, for: recognizer.language("hi"))
        let batch = recognizer.backend.recognize(features, decoder: decoder)
        let singles = features.map { recognizer.backend.recognize([$0], decoder: decoder)[0] }
        #expect(batch == singles)
        // The stages give what the backend gives.
        #expect(recognizer.decode(recognizer.encode(features[1]), decoder: decoder) == singles[1])
    }

    @Test func threadsBelongToTheRecognizerNotTheProcess() throws {
        let url = try #require(ConvertedModels.urls["tiny-release"])
        let before = BLAS.threads
        let one = try Recognizer(modelURL: url, options: RecognizerOptions(threads: 1))
        let two = try Recognizer(modelURL: url, options: RecognizerOptions(threads: 2))
        #expect(BLAS.threads == before, "loading a model leaves the process's thread setting alone")
        let samples = try AudioDecoderShim.samples(Fixtures.url("clips/bn_6s.wav"))
        for decoder in DecoderKind.allCases {
            let a = try one.transcribe(samples: samples, language: "bn", decoder: decoder)
            let b = try two.transcribe(samples: samples, language: "bn", decoder: decoder)
            #expect(a == b, "\(decoder): same transcript on 1 and 2 threads")
        }
        #expect(BLAS.threads == before)
    }
}
