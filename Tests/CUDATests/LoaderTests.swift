// The CUDA loader without a GPU: the fallback paths (no driver, a stub driver, a driver without
// a device, a missing entry point, missing NVRTC, missing cuBLAS), versioned-symbol resolution
// and the search order, against look-alike libraries built here from Stub/stub_cuda.c
// (docs/GPU.md, "Checking the backend when a GPU is rare").

import Backend
import CCUDA
import Foundation
import Testing

/// The stub libraries, built once per test process into a temporary folder: one folder per
/// variant, each holding the file names the loader looks for.
enum Stubs {
    struct Built: Sendable {
        let root: URL
        func dir(_ variant: String) -> String { root.appendingPathComponent(variant).path }
    }

    static let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Stub/stub_cuda.c")

    /// Variant folder → (file name, cc flags).
    static let variants: [(String, String, [String])] = [
        ("driver-ok", "libcuda.so.1", ["-DSTUB_DRIVER", "-DINIT_RESULT=0", "-DSTUB_GETPROC"]),
        ("driver-ok-dlsym", "libcuda.so.1", ["-DSTUB_DRIVER", "-DINIT_RESULT=0"]),
        ("driver-nodevice", "libcuda.so.1", ["-DSTUB_DRIVER", "-DINIT_RESULT=100", "-DSTUB_GETPROC"]),
        ("driver-stub", "libcuda.so.1", ["-DSTUB_DRIVER", "-DINIT_RESULT=34"]),
        ("driver-nov2", "libcuda.so.1", ["-DSTUB_DRIVER", "-DINIT_RESULT=0", "-DSTUB_NO_V2"]),
        ("nvrtc", "libnvrtc.so.13", ["-DSTUB_NVRTC"]),
        ("cublas", "libcublasLt.so.13", ["-DSTUB_CUBLASLT"]),
        ("cublas", "libcublas.so.13", ["-DSTUB_CUBLAS"]),
        ("cublas-no-lt", "libcublas.so.13", ["-DSTUB_CUBLAS"]),
    ]

    /// Builds every variant with the system C compiler (no SONAME, so a stub never stands in
    /// for a library another test opens by name).
    static let built: Result<Built, StubError> = {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("vani-cuda-stubs-\(getpid())")
        for (variant, file, flags) in variants {
            let dir = root.appendingPathComponent(variant)
            try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["cc", "-shared", "-fPIC", "-O1", "-o", dir.appendingPathComponent(file).path, source.path]
                + flags + ["-ldl"]
            let errors = Pipe()
            process.standardError = errors
            do { try process.run() } catch { return .failure(StubError(description: "cannot run cc: \(error)")) }
            process.waitUntilExit()
            let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            guard process.terminationStatus == 0 else {
                return .failure(StubError(description: "cc failed for \(variant)/\(file): \(text)"))
            }
        }
        try? FileManager.default.createDirectory(at: root.appendingPathComponent("empty"), withIntermediateDirectories: true)
        return .success(Built(root: root))
    }()

    struct StubError: Error, CustomStringConvertible { let description: String }

    static func get() throws -> Built { try built.get() }
}

@Suite("CUDA loader against stub libraries")
struct LoaderTests {
    private func failure<T>(_ result: Result<T, CUDAUnavailable>) -> CUDAUnavailable? {
        if case .failure(let why) = result { return why }
        return nil
    }

    @Test("no driver: an empty folder gives .noDriver naming the file and the folder")
    func noDriver() throws {
        let stubs = try Stubs.get()
        let why = try #require(failure(CUDADriver.open(CUDALibrarySearch(directories: [stubs.dir("empty")]))))
        #expect(why.kind == .noDriver)
        #expect(why.reason.contains("libcuda.so.1"))
        #expect(why.reason.contains(stubs.dir("empty")))
        #expect(why.reason.hasPrefix("no NVIDIA driver"))
    }

    @Test("the toolkit's stub driver (cuInit 34) is reported as such")
    func stubDriver() throws {
        let stubs = try Stubs.get()
        let why = try #require(failure(CUDADriver.open(CUDALibrarySearch(directories: [stubs.dir("driver-stub")]))))
        #expect(why.kind == .stubDriver)
        #expect(why.reason.contains("stub library"))
        #expect(why.reason.contains("error 34"))
    }

    @Test("a driver without a device (cuInit 100) gives .noDevice")
    func noDevice() throws {
        let stubs = try Stubs.get()
        // An empty folder first: the search goes on to the next one.
        let search = CUDALibrarySearch(directories: [stubs.dir("empty"), stubs.dir("driver-nodevice")])
        let why = try #require(failure(CUDADriver.open(search)))
        #expect(why.kind == .noDevice)
        #expect(why.reason.contains("sees no CUDA device"))
        #expect(why.reason.contains("error 100"))
    }

    @Test("a driver lacking cuMemAlloc_v2 is refused, naming the entry point (the v1 ABI is never used)")
    func missingVersionedSymbol() throws {
        let stubs = try Stubs.get()
        let why = try #require(failure(CUDADriver.open(CUDALibrarySearch(directories: [stubs.dir("driver-nov2")]))))
        #expect(why.kind == .missingSymbol)
        #expect(why.reason.contains("cuMemAlloc_v2"))
    }

    @Test("versioned entry points resolve to _v2, through cuGetProcAddress_v2 and by exact name",
          arguments: ["driver-ok", "driver-ok-dlsym"])
    func versionedResolution(variant: String) throws {
        let stubs = try Stubs.get()
        let driver = try CUDADriver.open(CUDALibrarySearch(directories: [stubs.dir(variant)])).get()
        #expect(driver.path == stubs.dir(variant) + "/libcuda.so.1")
        var pointer: CUdeviceptr = 0
        // The stub's v1 cuMemAlloc answers 999; the _v2 one answers 0 with 0x1000.
        #expect(driver.table.pointee.cuMemAlloc(&pointer, 64) == 0)
        #expect(pointer == 0x1000)
        var ms: Float = 0
        #expect(driver.table.pointee.cuEventElapsedTime(&ms, nil, nil) == 0)
        #expect(ms == 1.5)
        #expect(driver.version.major == 13 && driver.version.minor == 0)
        let devices = driver.devices()
        #expect(devices == [CUDADeviceInfo(ordinal: 0, name: "Vani Stub GPU", totalMemory: 80 << 30, capabilityMajor: 9,
                                           capabilityMinor: 0, multiprocessors: 132, l2CacheBytes: 50 << 20)])
        #expect(devices.first?.architecture == "sm_90")
    }

    @Test("the probe: a driver with a device but no NVRTC is unusable for .missingNVRTC")
    func probeMissingNVRTC() throws {
        let stubs = try Stubs.get()
        let probe = CUDAProbe(search: CUDALibrarySearch(directories: [stubs.dir("driver-ok"), stubs.dir("cublas")]))
        #expect(probe.devices.count == 1)
        #expect(probe.unusable?.kind == .missingNVRTC)
        #expect(probe.unusable?.reason.contains("libnvrtc.so.13") == true)
        #expect(ComputeDevice.auto.resolved(probe: probe) == .cpu)
    }

    @Test("the probe: a driver and NVRTC without cuBLAS is unusable for .missingCuBLAS")
    func probeMissingCuBLAS() throws {
        let stubs = try Stubs.get()
        let probe = CUDAProbe(search: CUDALibrarySearch(directories: [stubs.dir("driver-ok"), stubs.dir("nvrtc")]))
        #expect(probe.unusable?.kind == .missingCuBLAS)
        #expect(probe.unusable?.reason.hasPrefix("missing cuBLAS") == true)
        #expect(ComputeDevice.auto.resolved(probe: probe) == .cpu)
        // cuBLAS without its cuBLASLt is missing cuBLAS too.
        let lonely = CUDAProbe(search: CUDALibrarySearch(directories: [stubs.dir("driver-ok"), stubs.dir("nvrtc"),
                                                                         stubs.dir("cublas-no-lt")]))
        #expect(lonely.unusable?.kind == .missingCuBLAS)
        #expect(lonely.unusable?.reason.contains("libcublasLt") == true)
    }

    @Test("the probe: everything present is usable; cuda:N beyond the devices is refused")
    func probeUsable() throws {
        let stubs = try Stubs.get()
        let probe = CUDAProbe(search: CUDALibrarySearch(directories: [stubs.dir("driver-ok"), stubs.dir("nvrtc"), stubs.dir("cublas")]))
        #expect(probe.unusable == nil)
        #expect(try probe.device(0).get().name == "Vani Stub GPU")
        let missing = try #require(failure(probe.device(3)))
        #expect(missing.kind == .noDevice)
        #expect(missing.reason.contains("cuda:3"))
        let cublas = try #require(try? probe.cublas?.get())
        #expect(cublas.version == "13.1.0 (cuBLASLt 130100)")
        let nvrtc = try #require(try? probe.nvrtc?.get())
        #expect(nvrtc.version.major == 13 && nvrtc.version.minor == 0)
        #expect(nvrtc.supportedArchitectures == [80, 90])
        // A failed compilation surfaces NVRTC's message and log.
        do {
            _ = try nvrtc.compile("x", name: "x.cu", options: [])
            Issue.record("the stub's compile failure was not reported")
        } catch {
            #expect(error.description.contains("NVRTC_ERROR_COMPILATION"))
            #expect(error.description.contains("stub: no ptx"))
        }
        // Until the CUDA encoder is verified on a GPU, `auto` stays on the CPU even with a usable GPU.
        #expect(ComputeDevice.auto.resolved(probe: probe) == (CUDABackend.isVerified ? .cuda(0) : .cpu))
    }

    @Test("a driver failure is a fallback, and the probe is quick (no timing asserted, only that it ran)")
    func probeNoDriver() throws {
        let stubs = try Stubs.get()
        let probe = CUDAProbe(search: CUDALibrarySearch(directories: [stubs.dir("empty")]))
        #expect(probe.unusable?.kind == .noDriver)
        #expect(probe.driver == nil && probe.nvrtc == nil && probe.cublas == nil)
        #expect(probe.seconds >= 0)
        #expect(ComputeDevice.auto.resolved(probe: probe) == .cpu)
        #expect(ComputeDevice.cuda(0).resolved(probe: probe) == .cuda(0))
        #expect(ComputeDevice.cpu.resolved(probe: probe) == .cpu)
    }
}

@Suite("CUDA library search order")
struct SearchOrderTests {
    @Test("VANI_CUDA_LIBRARY_PATH replaces the whole search")
    func override() {
        let search = CUDALibrarySearch.standard(environment: [CUDALibrarySearch.overrideVariable: "/a:/b::/c",
                                                              "VIRTUAL_ENV": "/nowhere"])
        #expect(search.directories == ["/a", "/b", "/c"])
        #expect(CUDALibrarySearch.standard(environment: [CUDALibrarySearch.overrideVariable: ""]).directories.isEmpty)
    }

    @Test("the loader's path, then pip's nvidia folders (cu13 first), before /usr/local/cuda")
    func pipFolders() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("vani-venv-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        defer { try? FileManager.default.removeItem(at: root) }
        for sub in ["nvidia/cublas/lib", "nvidia/cu13/lib", "nvidia/cuda_nvrtc/lib"] {
            try FileManager.default.createDirectory(at: root.appendingPathComponent("lib/python3.12/site-packages/" + sub),
                                                    withIntermediateDirectories: true)
        }
        let search = CUDALibrarySearch.standard(environment: ["VIRTUAL_ENV": root.path])
        let site = root.path + "/lib/python3.12/site-packages/nvidia/"
        #expect(search.directories.first == "")
        let pip = search.directories.filter { $0.hasPrefix(root.path) }
        #expect(pip == [site + "cu13/lib", site + "cublas/lib", site + "cuda_nvrtc/lib"])
        let firstPip = try #require(search.directories.firstIndex(of: site + "cu13/lib"))
        if let cuda = search.directories.firstIndex(where: { $0.hasPrefix("/usr/local/cuda") }) {
            #expect(firstPip < cuda)
        }
        #expect(Set(search.directories).count == search.directories.count)
    }
}

@Suite("--device values")
struct ComputeDeviceTests {
    @Test("spellings parse, print back and round-trip through JSON")
    func parsing() throws {
        #expect(ComputeDevice(parsing: "cpu") == .cpu)
        #expect(ComputeDevice(parsing: "auto") == .auto)
        #expect(ComputeDevice(parsing: "cuda") == .cuda(0))
        #expect(ComputeDevice(parsing: "cuda:3") == .cuda(3))
        for bad in ["gpu", "cuda:", "cuda:-1", "cuda:x", "CPU", "cuda:1:2"] { #expect(ComputeDevice(parsing: bad) == nil, "\(bad)") }
        for device in [ComputeDevice.cpu, .auto, .cuda(2)] {
            #expect(ComputeDevice(parsing: device.rawValue) == device)
            let data = try JSONEncoder().encode([device])
            #expect(try JSONDecoder().decode([ComputeDevice].self, from: data) == [device])
        }
        #expect(throws: DecodingError.self) { try JSONDecoder().decode([ComputeDevice].self, from: Data(#"["tpu"]"#.utf8)) }
    }

    @Test("each device offers its precisions: tf32 only on CUDA, int8 only on the CPU")
    func precisions() {
        #expect(ComputeDevice.cpu.precisions == [.fp32, .bf16, .int8])
        #expect(ComputeDevice.cuda(0).precisions == [.fp32, .tf32, .bf16])
        #expect(!ComputeDevice.cpu.precisions.contains(.tf32))
        #expect(!ComputeDevice.cuda(1).precisions.contains(.int8))
    }
}
