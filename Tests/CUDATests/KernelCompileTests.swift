// The NVRTC compile gate (docs/GPU.md, "NVRTC compile gate"): every kernel of
// CUDAKernels.source compiled to a cubin for sm_80 and sm_90 (and sm_89) with no error, no
// warning and no register spill, by NVIDIA's NVRTC from the `nvidia-cuda-nvrtc` wheel that
// `make cuda-nvrtc` installs into .build/cuda-venv. No GPU is needed. Without the wheel the
// gate is skipped and says so loudly; `make test` installs it, so CI runs it.

import Backend
import Foundation
import Testing

enum NVRTCGate {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// `$VANI_NVRTC_DIR`, else the wheel's folder under .build/cuda-venv (nil: neither has libnvrtc).
    static let directory: String? = {
        var candidates: [String] = []
        if let dir = ProcessInfo.processInfo.environment["VANI_NVRTC_DIR"], !dir.isEmpty { candidates.append(dir) }
        let venv = packageRoot.appendingPathComponent(".build/cuda-venv").path
        candidates += CUDALibrarySearch.globbed(venv + "/lib/python3*/site-packages/nvidia/cu13/lib")
        candidates += CUDALibrarySearch.globbed(venv + "/lib/python3*/site-packages/nvidia/cuda_nvrtc/lib")
        let found = candidates.first { FileManager.default.fileExists(atPath: $0 + "/libnvrtc.so.13") || FileManager.default.fileExists(atPath: $0 + "/libnvrtc.so.12") }
        if found == nil {
            FileHandle.standardError.write(Data("""
                ⚠️  NVRTC COMPILE GATE SKIPPED: no libnvrtc in $VANI_NVRTC_DIR or .build/cuda-venv \
                (run `make cuda-nvrtc`, or `make test`, which installs it).\n
                """.utf8))
        }
        return found
    }()

    static let nvrtc: NVRTC? = directory.flatMap { try? NVRTC.open(CUDALibrarySearch(directories: [$0])).get() }
}

@Suite("NVRTC compile gate")
struct KernelCompileTests {
    @Test("every kernel compiles to a cubin with no error, warning or spill",
          .enabled(if: NVRTCGate.directory != nil, "needs NVRTC: run `make cuda-nvrtc` (make test does)"),
          arguments: ["sm_80", "sm_89", "sm_90"])
    func compiles(architecture: String) throws {
        let nvrtc = try #require(NVRTCGate.nvrtc, "libnvrtc in \(NVRTCGate.directory ?? "") did not load")
        let build = try CUDAKernelBuild.build(nvrtc, architecture: architecture, cache: nil)
        #expect(!build.cached)
        // An ELF image ("\u{7f}ELF"), not PTX text.
        #expect(Array(build.cubin.prefix(4)) == [0x7f, 0x45, 0x4c, 0x46])
        #expect(!build.log.lowercased().contains("warning"), "NVRTC warned:\n\(build.log)")
        #expect(!build.log.lowercased().contains("error"), "NVRTC reported an error:\n\(build.log)")
        for name in CUDAKernels.names {
            #expect(build.registers[name] != nil, "\(name) not in ptxas's report for \(architecture)")
            #expect(build.spillBytes[name] == 0, "\(name) spills \(build.spillBytes[name] ?? -1) bytes on \(architecture)")
            // The kernels are launched with up to 256 threads a block: 65,536 registers per SM
            // allow 255 per thread, but more than 128 would halve occupancy unnoticed.
            #expect((build.registers[name] ?? 999) <= 128, "\(name) uses \(build.registers[name] ?? -1) registers")
        }
        let counts = CUDAKernels.names.map { "\($0)=\(build.registers[$0] ?? -1)" }.joined(separator: " ")
        print("NVRTC \(nvrtc.version.major).\(nvrtc.version.minor) \(architecture): \(build.cubin.count) bytes; registers \(counts)")
    }

    @Test("every name in CUDAKernels.names is an extern \"C\" __global__ of the source, and no other")
    func namesMatchSource() {
        let declared = CUDAKernels.source.split(separator: "\n").compactMap { line -> String? in
            guard let r = line.range(of: "extern \"C\" __global__ void ") else { return nil }
            return String(line[r.upperBound...].prefix { $0 != "(" })
        }
        #expect(declared.sorted() == CUDAKernels.names.sorted())
    }

    @Test("the cubin cache: a second build reads the same bytes back; another architecture is another key",
          .enabled(if: NVRTCGate.directory != nil, "needs NVRTC: run `make cuda-nvrtc` (make test does)"))
    func cache() throws {
        let nvrtc = try #require(NVRTCGate.nvrtc)
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("vani-cubin-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        defer { try? FileManager.default.removeItem(at: cache) }
        let first = try CUDAKernelBuild.build(nvrtc, architecture: "sm_90", cache: cache)
        let second = try CUDAKernelBuild.build(nvrtc, architecture: "sm_90", cache: cache)
        #expect(!first.cached && second.cached)
        #expect(first.cubin == second.cubin)
        let files = try FileManager.default.contentsOfDirectory(atPath: cache.path)
        #expect(files == [CUDAKernelBuild.cacheKey(source: CUDAKernels.source, architecture: "sm_90", nvrtcVersion: nvrtc.version) + ".cubin"])
    }

    @Test("a kernel that does not compile fails the build with NVRTC's log",
          .enabled(if: NVRTCGate.directory != nil, "needs NVRTC: run `make cuda-nvrtc` (make test does)"))
    func compileErrorSurfaces() throws {
        let nvrtc = try #require(NVRTCGate.nvrtc)
        do {
            _ = try CUDAKernelBuild.build(nvrtc, architecture: "sm_90", source: "extern \"C\" __global__ void k() { undefined_thing(); }")
            Issue.record("a kernel calling an undefined function compiled")
        } catch {
            #expect(error.description.contains("undefined_thing"))
        }
    }
}

@Suite("ptxas report parsing")
struct ResourceReportTests {
    @Test("registers and spills per kernel, from NVRTC 13's -v lines")
    func parse() {
        let log = """
            ptxas info    : 0 bytes gmem
            ptxas info    : Compiling entry function 'vani_a' for 'sm_90'
            ptxas info    : Function properties for vani_a
            ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
            ptxas info    : Used 20 registers, used 0 barriers
            ptxas info    : Compiling entry function 'vani_b' for 'sm_90'
            ptxas info    : Function properties for vani_b
            ptxas         .     8 bytes stack frame, 8 bytes spill stores, 4 bytes spill loads
            ptxas info    : Used 255 registers, used 1 barriers, 376 bytes cmem[0]
            """
        let (registers, spills) = CUDAKernelBuild.parseResourceReport(log)
        #expect(registers == ["vani_a": 20, "vani_b": 255])
        #expect(spills == ["vani_a": 0, "vani_b": 12])
    }

    @Test("the cache key changes with the source, the architecture and NVRTC's version")
    func cacheKey() {
        let base = CUDAKernelBuild.cacheKey(source: "a", architecture: "sm_90", nvrtcVersion: (13, 0))
        #expect(base.hasPrefix("kernels-") && base.hasSuffix("-nvrtc13.0-sm_90"))
        #expect(base != CUDAKernelBuild.cacheKey(source: "b", architecture: "sm_90", nvrtcVersion: (13, 0)))
        #expect(base != CUDAKernelBuild.cacheKey(source: "a", architecture: "sm_80", nvrtcVersion: (13, 0)))
        #expect(base != CUDAKernelBuild.cacheKey(source: "a", architecture: "sm_90", nvrtcVersion: (13, 1)))
    }
}
