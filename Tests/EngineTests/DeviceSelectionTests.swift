// `--device` at the Recognizer (docs/GPU.md, "Choosing the device"): auto falls back to the CPU
// with a note and the probe's time, a named CUDA device without a usable GPU is refused with
// the probe's reason, and a precision the resolved device does not offer is a clear error.

import ASR
import Backend
import Testing
import VaniTestSupport

@Suite("Device selection")
struct DeviceSelectionTests {
    @Test("auto on a machine where the CUDA encoder is not chosen runs the CPU, bit-identical to --device cpu")
    func autoFallsBack() throws {
        let url = try #require(ConvertedModels.urls["tiny-variant"])
        let auto = try Recognizer(modelURL: url, options: RecognizerOptions(threads: 2, device: .auto))
        let cpu = try Recognizer(modelURL: url, options: RecognizerOptions(threads: 2, device: .cpu))
        // Until CUDABackend.isVerified, auto never picks the GPU, GPU machine or not.
        #expect(auto.backend.device == (CUDABackend.isVerified && CUDAProbe.shared.unusable == nil ? .cuda(0) : .cpu))
        #expect(auto.deviceProbeSeconds != nil)
        #expect(cpu.deviceProbeSeconds == nil && cpu.deviceNote == nil)
        if auto.backend.device == .cpu {
            let note = try #require(auto.deviceNote)
            #expect(note.hasPrefix("device auto: running on the CPU ("))
            let samples = try AudioDecoderShim.samples(Fixtures.url("clips/hi_1s.wav"))
            let features = cpu.features(samples)
            let a = auto.encode(features), b = cpu.encode(features)
            #expect(a.shape == b.shape)
            #expect((0..<a.count).allSatisfy { a.pointer[$0].bitPattern == b.pointer[$0].bitPattern })
        }
    }

    @Test("--device cuda without a usable GPU is refused with the probe's reason")
    func cudaWithoutGPU() throws {
        let url = try #require(ConvertedModels.urls["tiny-variant"])
        guard let why = CUDAProbe.shared.unusable else { return }   // a usable GPU: nothing to refuse
        #expect(throws: RecognizerError.deviceUnavailable(.cuda(0), reason: why.reason)) {
            try Recognizer(modelURL: url, options: RecognizerOptions(device: .cuda(0)))
        }
        let message = RecognizerError.deviceUnavailable(.cuda(0), reason: why.reason).description
        #expect(message.hasPrefix("device cuda:0 is unusable: ") && message.hasSuffix("use --device cpu or auto"))
    }

    @Test("a precision the device does not offer is refused: tf32 on the CPU, int8 on CUDA")
    func precisionPerDevice() throws {
        let url = try #require(ConvertedModels.urls["tiny-variant"])
        #expect(throws: RecognizerError.precisionUnavailable(.tf32, device: .cpu, available: [.fp32, .bf16, .int8])) {
            try Recognizer(modelURL: url, options: RecognizerOptions(device: .cpu, precision: .tf32))
        }
        if CUDAProbe.shared.unusable == nil {
            #expect(throws: RecognizerError.precisionUnavailable(.int8, device: .cuda(0), available: [.fp32, .tf32, .bf16])) {
                try Recognizer(modelURL: url, options: RecognizerOptions(device: .cuda(0), precision: .int8))
            }
        }
    }
}
