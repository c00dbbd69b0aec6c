// The CUDA backend's host side against the CPU engine, without a GPU: a host-memory mock of the
// driver and cuBLAS (Tests/CUDATests/Stub/mock_cuda.c: device memory is host memory, poisoned
// with NaN; each kernel launch runs a C version of that kernel; the GEMMs are naive column-major)
// plus the real NVRTC, which compiles the kernels to the cubin the mock checks is ELF. Equal
// encoder output and tokens prove the buffers, offsets, strides, GEMM transposes and op order of
// CUDABackend.encode; not the CUDA kernels' arithmetic, which needs Tools/gpu/check.sh.

import ASR
import Backend
import ConformerModel
import Foundation
import Testing
import VaniTestSupport

enum MockCUDA {
    static let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("CUDATests/Stub/mock_cuda.c")
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// NVRTC from the wheel `make cuda-nvrtc` installs (nil: not installed).
    static let nvrtcDirectory: String? = {
        let venv = packageRoot.appendingPathComponent(".build/cuda-venv").path
        return CUDALibrarySearch.globbed(venv + "/lib/python3*/site-packages/nvidia/cu13/lib")
            .first { FileManager.default.fileExists(atPath: $0 + "/libnvrtc.so.13") }
    }()

    /// The mock libraries' folder, built once.
    static let directory: Result<String, MockError> = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vani-cuda-mock-\(getpid())")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for (file, flag) in [("libcuda.so.1", "-DMOCK_DRIVER"), ("libcublas.so.13", "-DMOCK_CUBLAS"),
                             ("libcublasLt.so.13", "-DMOCK_CUBLASLT")] {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["cc", "-shared", "-fPIC", "-O2", flag, "-o", dir.appendingPathComponent(file).path,
                                 source.path, "-lm"]
            do { try process.run() } catch { return .failure(MockError(description: "cannot run cc: \(error)")) }
            process.waitUntilExit()
            guard process.terminationStatus == 0 else { return .failure(MockError(description: "cc failed for \(file)")) }
        }
        return .success(dir.path)
    }()

    struct MockError: Error, CustomStringConvertible { let description: String }
}

@Suite("CUDA backend on a host-memory mock driver")
struct CUDAMockTests {
    @Test("fp32: encoder output within 1e-4 of the CPU engine and identical CTC and RNN-T tokens on every clip",
          .enabled(if: MockCUDA.nvrtcDirectory != nil, "needs NVRTC: run `make cuda-nvrtc` (make test does)"),
          arguments: ["tiny-release", "tiny-variant"])
    func matchesCPU(modelName: String) throws {
        let url = try #require(ConvertedModels.urls[modelName])
        let mock = try MockCUDA.directory.get()
        let probe = CUDAProbe(search: CUDALibrarySearch(directories: [mock, try #require(MockCUDA.nvrtcDirectory)]))
        #expect(probe.unusable == nil, "\(probe.unusable?.reason ?? "")")
        let cpu = try Recognizer(modelURL: url, options: RecognizerOptions(threads: 2, device: .cpu))
        let gpu = try CUDABackend(model: cpu.model, ordinal: 0, precision: .fp32, probe: probe, kernelCache: nil)
        #expect(gpu.device == .cuda(0))
        #expect(gpu.kernels.architecture == "sm_90")
        let language = try cpu.language(cpu.info.languages.contains("hi") ? "hi" : cpu.info.languages[0])
        for clip in ["hi_1s", "ta_3s", "hi_4s"] {
            let samples = try AudioDecoderShim.samples(Fixtures.url("clips/\(clip).wav"))
            let features = cpu.features(samples)
            let reference = cpu.encode(features)
            let encoded = gpu.encode([features])[0]
            #expect(encoded.shape == reference.shape, "\(clip)")
            guard encoded.shape == reference.shape else { continue }
            var worst: Float = 0, at = 0
            for i in 0..<reference.count {
                let d = abs(encoded.pointer[i] - reference.pointer[i])
                if !(d <= worst) { worst = d; at = i }   // NaN counts as worst
            }
            #expect(worst <= 1e-4, "\(modelName) \(clip): max |Δ| \(worst) at \(at): \(encoded.pointer[at]) vs \(reference.pointer[at])")
            for kind in cpu.info.decoders {
                let decoder = try cpu.decoder(kind, for: language)
                #expect(cpu.decode(encoded, decoder: decoder).ids == cpu.decode(reference, decoder: decoder).ids, "\(modelName) \(clip) \(kind)")
            }
        }
    }
}
