// Silero VAD on Vani's tensor code against the reference implementation: the silero-vad wheel's
// ONNX model under ONNX Runtime, run chunk by chunk as the wheel's OnnxWrapper runs it
// (Tools/vad/make_vad_reference.py wrote Tests/Fixtures/vad/*.probs.npy).
//
// Tolerance: 1e-4 absolute on each probability. Both sides compute in float32 but sum the
// STFT and convolution products in different orders, and the LSTM carries the rounding from
// chunk to chunk; measured worst differences are printed by each test.

import Audio
import Foundation
import Testing
import VaniTestSupport
@testable import VoiceActivity

@Suite("Silero VAD")
struct SileroVADTests {
    static let tolerance: Float = 1e-4
    static let model: SileroVAD = {
        do { return try SileroVAD(contentsOf: Fixtures.root.appendingPathComponent("Weights/silero_vad.safetensors")) }
        catch { fatalError("Weights/silero_vad.safetensors must load (Tools/vad/convert_silero.py): \(error)") }
    }()

    static func samples(_ url: URL) throws -> [Float] {
        try AudioDecoder.load(try Data(contentsOf: url), sampleRate: SileroVAD.sampleRate)
    }

    static let clips: [(name: String, audio: String)] = [
        ("hi-sample", "Samples/hi-sample.wav"), ("ta-sample", "Samples/ta-sample.wav"),
        ("bn-sample", "Samples/bn-sample.wav"), ("mixed", "Tests/Fixtures/vad/mixed.wav"),
    ]

    @Test("speech probabilities equal the reference's", arguments: clips.map(\.name))
    func probabilitiesMatchReference(name: String) throws {
        let audio = Self.clips.first { $0.name == name }!.audio
        let samples = try Self.samples(Fixtures.root.appendingPathComponent(audio))
        let expected = try Fixtures.npy("vad/\(name).probs.npy").values
        let actual = Self.model.probabilities(samples)
        #expect(actual.count == expected.count)
        let result = compare(actual, expected, atol: Self.tolerance)
        print("VAD \(name): \(result)")
        #expect(result.withinTolerance, "\(name): \(result)")
    }

    @Test("streaming in pieces of any chunk count gives the whole-audio probabilities")
    func streamingEqualsWhole() throws {
        let samples = try Self.samples(Fixtures.url("vad/mixed.wav"))
        let whole = Self.model.probabilities(samples)
        var state = VoiceActivityState()
        var pieces: [Float] = []
        var start = 0, size = 1
        samples.withUnsafeBufferPointer { buffer in
            while start + SileroVAD.chunkSamples <= buffer.count {
                let n = min(size, (buffer.count - start) / SileroVAD.chunkSamples)
                pieces += Self.model.process(buffer.baseAddress! + start, chunks: n, state: &state)
                start += n * SileroVAD.chunkSamples
                size = size % 7 + 1
            }
        }
        #expect(pieces.count == samples.count / SileroVAD.chunkSamples)
        // Blocks of other sizes sum the products in another order: 1e-5, not bit equality.
        let result = compare(pieces, Array(whole.prefix(pieces.count)), atol: 1e-5)
        #expect(result.withinTolerance, "\(result)")
    }

    @Test("silence and low noise are not speech; the samples are")
    func separatesSpeechFromSilence() throws {
        let samples = try Self.samples(Fixtures.url("vad/mixed.wav"))
        let p = Self.model.probabilities(samples)
        // mixed.wav: 0.7 s silence, Hindi, 1.2 s noise, Tamil, 0.5 s silence (32 ms chunks).
        #expect(p[0..<20].allSatisfy { $0 < 0.1 }, "\(p[0..<20])")
        #expect(p.suffix(12).allSatisfy { $0 < 0.1 }, "\(p.suffix(12))")
        #expect(p.filter { $0 > 0.5 }.count > 200)
    }

    @Test("a file without the voice-activity metadata is refused with a reason")
    func refusesOtherWeights() {
        #expect(throws: VoiceActivityError.self) {
            _ = try SileroVAD(contentsOf: Fixtures.root.appendingPathComponent("Weights/default.safetensors"))
        }
        #expect(throws: VoiceActivityError.modelNotFound(path: "/nonexistent.safetensors")) {
            _ = try SileroVAD(contentsOf: URL(fileURLWithPath: "/nonexistent.safetensors"))
        }
    }
}
