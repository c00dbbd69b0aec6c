// bf16 and int8 on the two fixture models: the encoder output against fp32 (quantized at load),
// files written by `vani-convert --dtype` (the same bits as quantizing at load), the portable
// path forced on this thread, and the precision passed through `RecognizerOptions`.
//
// Tolerance: relative RMS error of the encoder output ‖y − y_fp32‖ / ‖y_fp32‖ ≤ 0.01 for bf16 and
// ≤ 0.03 for int8. Measured on these random-weight fixtures (printed by the test, AVX-512 here):
// bf16 0.0018–0.0033 (max |Δ| 0.012), int8 0.0060–0.0080 (max |Δ| 0.037); a broken kernel (wrong
// scale, wrong row, missing zero-point correction) gives errors of order 1. The fixtures' random weights are
// harder to quantize than trained ones (docs/MODEL.md § Precision); transcripts are compared on
// the trained demo model instead (Tools/training/RESULTS.md).

import ASR
import ConformerModel
import Foundation
import ONNXImport
import TensorModule
import Testing
import VaniTestSupport
import WeightFormat

/// Relative RMS error and the worst element of `actual` against `reference`.
private func relativeError(_ actual: Tensor, _ reference: Tensor) -> (rms: Double, maxAbs: Float, index: Int) {
    var e = 0.0, r = 0.0, worst: Float = 0, at = 0
    for i in 0..<reference.count {
        let d = actual.pointer[i] - reference.pointer[i]
        e += Double(d * d); r += Double(reference.pointer[i] * reference.pointer[i])
        if abs(d) > worst { worst = abs(d); at = i }
    }
    return ((e / max(r, 1e-30)).squareRoot(), worst, at)
}

/// Fixture models converted with `--dtype bf16` and `--dtype int8`, once per test process.
private enum NarrowedModels {
    static let urls: [String: URL] = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vani-precision-tests-\(getpid())")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var urls: [String: URL] = [:]
        for v in ConvertedModels.variants {
            for dtype in [Precision.bf16, .int8] {
                let out = dir.appendingPathComponent("\(v)-\(dtype.rawValue).safetensors")
                do {
                    _ = try Converter.convert(folder: Fixtures.url("models/\(v)"), output: out, verify: true, dtype: dtype)
                    urls["\(v)/\(dtype.rawValue)"] = out
                } catch {
                    Issue.record("converting \(v) to \(dtype.rawValue) failed: \(error)")
                }
            }
        }
        return urls
    }()
}

@Suite("Reduced precision on the fixture models", .serialized)
struct PrecisionTests {
    static let tolerance: [Precision: Double] = [.bf16: 0.01, .int8: 0.03]
    static let clips = ["hi_short", "ta_3s", "hi_22s"]

    @Test("encoder output within tolerance of fp32, per precision", arguments: ConvertedModels.variants)
    func encoderAgainstFP32(variant: String) throws {
        let url = try #require(ConvertedModels.urls[variant])
        let fp32 = try ConvertedModels.recognizer(variant)
        for precision in [Precision.bf16, .int8] {
            let reduced = try Recognizer(modelURL: url, options: RecognizerOptions(precision: precision))
            #expect(reduced.precision == precision)
            for clip in Self.clips {
                let features = try timeMajorFeatures(clip)
                let reference = fp32.encode(features)                             // (T', d)
                let encoded = reduced.encode(features)                            // (T', d)
                #expect(encoded.shape == reference.shape)
                let (rms, worst, at) = relativeError(encoded, reference)
                print("\(variant)/\(clip) \(precision.rawValue): relative RMS \(String(format: "%.5f", rms)), max |Δ| \(worst) at [t, c] \(multiIndex(at, shape: reference.shape)) (fp32 \(reference.pointer[at]))")
                #expect(rms <= Self.tolerance[precision]!, "\(variant)/\(clip) \(precision.rawValue): relative RMS \(rms)")
            }
        }
    }

    @Test("a file stored bf16 / int8 gives the same bits as quantizing the fp32 file at load", arguments: ConvertedModels.variants)
    func storedEqualsLoadTime(variant: String) throws {
        let fp32URL = try #require(ConvertedModels.urls[variant])
        let fp32Size = try #require(try FileManager.default.attributesOfItem(atPath: fp32URL.path)[.size] as? Int)
        let features = try timeMajorFeatures("ta_3s")
        for precision in [Precision.bf16, .int8] {
            let url = try #require(NarrowedModels.urls["\(variant)/\(precision.rawValue)"])
            let size = try #require(try FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int)
            #expect(size < fp32Size, "\(precision.rawValue) file \(size) bytes, fp32 \(fp32Size)")
            let stored = try Recognizer(modelURL: url)                           // the file's own precision
            #expect(stored.precision == precision)
            #expect(stored.model.storedPrecision == precision)
            let atLoad = try Recognizer(modelURL: fp32URL, options: RecognizerOptions(precision: precision))
            let a = stored.encode(features), b = atLoad.encode(features)         // (T', d) each
            #expect(a.values == b.values, "\(variant) \(precision.rawValue): stored file and load-time quantization differ")
            // fp32 from a narrowed file: widened at load, close to the narrowed run.
            let widened = try Recognizer(modelURL: url, options: RecognizerOptions(precision: .fp32))
            #expect(widened.precision == .fp32)
            let (rms, _, _) = relativeError(widened.encode(features), a)
            #expect(rms <= Self.tolerance[precision]!, "\(variant): fp32 from the \(precision.rawValue) file, relative RMS \(rms)")
        }
    }

    @Test("the portable path gives the encoder the same numbers", arguments: ConvertedModels.variants)
    func portablePath(variant: String) throws {
        let url = try #require(ConvertedModels.urls[variant])
        let features = try timeMajorFeatures("hi_short")
        for precision in [Precision.bf16, .int8] {
            let recognizer = try Recognizer(modelURL: url, options: RecognizerOptions(precision: precision))
            let native = recognizer.encode(features)                                                    // (T', d)
            let portable = ReducedPrecisionKernels.withPortablePath { recognizer.encode(features) }     // (T', d)
            let (rms, worst, _) = relativeError(portable, native)
            print("\(variant) \(precision.rawValue) portable vs native: relative RMS \(rms), max |Δ| \(worst)")
            if precision == .int8 {
                #expect(portable.values == native.values, "int8 portable path differs: max |Δ| \(worst)")
            } else {
                #expect(rms <= 1e-6, "bf16 portable path differs: relative RMS \(rms)")
            }
        }
    }

    @Test("fp32 stays the default and stays exact")
    func fp32Default() throws {
        let url = try #require(ConvertedModels.urls["tiny-release"])
        let plain = try ConvertedModels.recognizer("tiny-release")
        #expect(plain.precision == .fp32)
        let explicit = try Recognizer(modelURL: url, options: RecognizerOptions(precision: .fp32))
        let features = try timeMajorFeatures("hi_short")
        #expect(plain.encode(features).values == explicit.encode(features).values)
        #expect(ComputeDevice.cpu.precisions == [.fp32, .bf16, .int8])
        #expect(Precision.fp32.portablePathNote == nil)
    }

    @Test("which matrices are reduced")
    func reducedNames() {
        #expect(Precision.isReduced(tensor: "encoder.layers.3.feed_forward1.linear1.weight"))
        #expect(Precision.isReduced(tensor: "encoder.layers.0.self_attn.linear_pos.weight"))
        #expect(Precision.isReduced(tensor: "encoder.layers.0.conv.pointwise_conv2.weight"))
        #expect(Precision.isReduced(tensor: "encoder.pre_encode.out.weight"))
        #expect(!Precision.isReduced(tensor: "encoder.layers.0.feed_forward1.linear1.bias"))
        #expect(!Precision.isReduced(tensor: "encoder.layers.0.conv.depthwise_conv.weight"))
        #expect(!Precision.isReduced(tensor: "encoder.pre_encode.conv.0.weight"))
        #expect(!Precision.isReduced(tensor: "ctc_decoder.decoder_layers.0.weight"))
        #expect(Precision.scaleName(of: "encoder.pre_encode.out.weight") == "encoder.pre_encode.out.weight_scale")
    }
}
