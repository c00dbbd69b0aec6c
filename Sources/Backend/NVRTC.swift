// NVRTC: CUDA C source → a cubin for one exact architecture, on any machine (no GPU needed;
// docs/GPU.md "Does NVRTC need a GPU? No"), with ptxas's register and spill report parsed, and
// an on-disk cache keyed by source hash, NVRTC version and architecture.

import CCUDA
import Foundation

/// The loaded NVRTC library. Immutable once opened; NVRTC's functions are thread-safe.
public final class NVRTC: @unchecked Sendable {
    /// The entry points (see CCUDA's `vani_nvrtc`).
    public let table: UnsafeMutablePointer<vani_nvrtc>

    private init(table: UnsafeMutablePointer<vani_nvrtc>) { self.table = table }

    deinit {
        vani_nvrtc_close(table)
        table.deallocate()
    }

    /// Opens NVRTC (13, else 12) along `search`, pre-loading its builtins.
    /// - Returns: the library, or `.missingNVRTC` / `.missingSymbol` with the reason.
    public static func open(_ search: CUDALibrarySearch = .standard()) -> Result<NVRTC, CUDAUnavailable> {
        let table = UnsafeMutablePointer<vani_nvrtc>.allocate(capacity: 1)
        var reason = [CChar](repeating: 0, count: 2048)
        let status = search.withCStrings { dirs, count in
            reason.withUnsafeMutableBufferPointer { vani_nvrtc_open(table, dirs, count, $0.baseAddress!, $0.count) }
        }
        guard status == Int32(VANI_CUDA_OK.rawValue) else {
            table.deallocate()
            let kind: CUDAUnavailable.Kind = status == Int32(VANI_CUDA_MISSING_SYMBOL.rawValue) ? .missingSymbol
                : status == Int32(VANI_CUDA_UNSUPPORTED.rawValue) ? .unsupported : .missingNVRTC
            return .failure(CUDAUnavailable(kind, decodeCString(reason)))
        }
        return .success(NVRTC(table: table))
    }

    /// The file the loader mapped.
    public var path: String { withUnsafeBytes(of: table.pointee.path) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) } }

    /// NVRTC's version, e.g. (13, 0).
    public var version: (major: Int, minor: Int) {
        var major: Int32 = 0, minor: Int32 = 0
        _ = table.pointee.nvrtcVersion(&major, &minor)
        return (Int(major), Int(minor))
    }

    /// The architectures it compiles for (75 = sm_75, …).
    public var supportedArchitectures: [Int] {
        var count: Int32 = 0
        guard table.pointee.nvrtcGetNumSupportedArchs(&count) == 0, count > 0 else { return [] }
        var archs = [Int32](repeating: 0, count: Int(count))
        guard table.pointee.nvrtcGetSupportedArchs(&archs) == 0 else { return [] }
        return archs.map(Int.init)
    }

    /// One compilation's result.
    public struct Compiled: Sendable {
        /// The ELF cubin.
        public var cubin: [UInt8]
        /// NVRTC's and ptxas's log (with `--ptxas-options=-v`: registers and spills per kernel).
        public var log: String
    }

    /// Why a compilation failed.
    public struct CompileError: Error, CustomStringConvertible, Sendable {
        /// NVRTC's result code and message, then its log.
        public let description: String
    }

    /// Compiles `source` with `options` (e.g. `--gpu-architecture=sm_90`).
    /// - Throws: `CompileError` with NVRTC's message and the program log.
    public func compile(_ source: String, name: String, options: [String]) throws(CompileError) -> Compiled {
        let t = table.pointee
        var program: nvrtcProgram?
        let created = t.nvrtcCreateProgram(&program, source, name, 0, nil, nil)
        guard created == 0, program != nil else { throw CompileError(description: "nvrtcCreateProgram: \(message(created))") }
        defer { _ = t.nvrtcDestroyProgram(&program) }
        let copies = options.map { strdup($0) }
        defer { copies.forEach { free($0) } }
        let pointers: [UnsafePointer<CChar>?] = copies.map { $0.map { UnsafePointer($0) } }
        let result = pointers.withUnsafeBufferPointer { t.nvrtcCompileProgram(program, Int32(pointers.count), $0.baseAddress) }
        var logSize = 0
        _ = t.nvrtcGetProgramLogSize(program, &logSize)
        var logBytes = [CChar](repeating: 0, count: max(1, logSize))
        _ = t.nvrtcGetProgramLog(program, &logBytes)
        let log = decodeCString(logBytes)
        guard result == 0 else { throw CompileError(description: "NVRTC failed (\(message(result))) with \(options.joined(separator: " ")):\n\(log)") }
        var size = 0
        guard t.nvrtcGetCUBINSize(program, &size) == 0, size > 0 else {
            throw CompileError(description: "NVRTC produced no cubin (was --gpu-architecture=sm_XX given?)\n\(log)")
        }
        var cubin = [UInt8](repeating: 0, count: size)
        let got = cubin.withUnsafeMutableBytes { t.nvrtcGetCUBIN(program, $0.baseAddress!.assumingMemoryBound(to: CChar.self)) }
        guard got == 0 else { throw CompileError(description: "nvrtcGetCUBIN: \(message(got))") }
        return Compiled(cubin: cubin, log: log)
    }

    private func message(_ code: Int32) -> String {
        guard let text = table.pointee.nvrtcGetErrorString(code) else { return "error \(code)" }
        return "error \(code), \(String(cString: text))"
    }
}

// MARK: - The kernels of one architecture

/// `CUDAKernels.source` compiled for one architecture, with ptxas's resource report.
public struct CUDAKernelBuild: Sendable {
    /// The architecture, e.g. "sm_90".
    public let architecture: String
    /// The ELF cubin holding every kernel.
    public let cubin: [UInt8]
    /// NVRTC's log ("" when the cubin came from the cache).
    public let log: String
    /// Registers per thread of each kernel (from the log; empty when cached).
    public let registers: [String: Int]
    /// Spill stores + loads in bytes of each kernel (from the log; empty when cached).
    public let spillBytes: [String: Int]
    /// Whether the cubin came from the disk cache.
    public let cached: Bool

    /// The options every kernel build uses: a cubin for exactly `architecture` (never PTX),
    /// C++17, device code by default, ptxas's verbose report (registers and spills).
    public static func options(architecture: String) -> [String] {
        ["--gpu-architecture=\(architecture)", "-default-device", "--std=c++17", "--ptxas-options=-v"]
    }

    /// The cache key: FNV-1a 64 of source and options (a cache key, not a security digest),
    /// NVRTC's version and the architecture.
    public static func cacheKey(source: String, architecture: String, nvrtcVersion: (major: Int, minor: Int)) -> String {
        var hash: UInt64 = 0xcbf29ce484222325
        for byte in (source + "\0" + options(architecture: architecture).joined(separator: " ")).utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x100000001b3
        }
        return String(format: "kernels-%016llx-nvrtc%d.%d-%@", hash, nvrtcVersion.major, nvrtcVersion.minor, architecture)
    }

    /// The cache folder: `$VANI_CUDA_CACHE`, else `$XDG_CACHE_HOME/vani/cuda`, else `~/.cache/vani/cuda`.
    public static func cacheDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        if let dir = environment["VANI_CUDA_CACHE"], !dir.isEmpty { return URL(fileURLWithPath: dir) }
        if let xdg = environment["XDG_CACHE_HOME"], !xdg.isEmpty { return URL(fileURLWithPath: xdg).appendingPathComponent("vani/cuda") }
        let home = environment["HOME"] ?? NSTemporaryDirectory()
        return URL(fileURLWithPath: home).appendingPathComponent(".cache/vani/cuda")
    }

    /// Compiles the kernels for `architecture` with `nvrtc`, or reads them from `cache` (nil: no
    /// cache). A fresh build is written to the cache; a cache that cannot be written is ignored.
    /// - Throws: NVRTC's `CompileError`.
    public static func build(_ nvrtc: NVRTC, architecture: String, source: String = CUDAKernels.source,
                             cache: URL? = nil) throws(NVRTC.CompileError) -> CUDAKernelBuild {
        let key = cacheKey(source: source, architecture: architecture, nvrtcVersion: nvrtc.version)
        let file = cache?.appendingPathComponent(key + ".cubin")
        if let file, let data = try? Data(contentsOf: file), !data.isEmpty {
            return CUDAKernelBuild(architecture: architecture, cubin: [UInt8](data), log: "", registers: [:],
                                   spillBytes: [:], cached: true)
        }
        let compiled = try nvrtc.compile(source, name: "vani_kernels.cu", options: options(architecture: architecture))
        let (registers, spills) = parseResourceReport(compiled.log)
        if let cache, let file {
            try? FileManager.default.createDirectory(at: cache, withIntermediateDirectories: true)
            // Written aside and renamed, so a concurrent reader never sees half a cubin.
            let temporary = cache.appendingPathComponent(key + ".\(getpid()).tmp")
            if (try? Data(compiled.cubin).write(to: temporary)) != nil {
                _ = rename(temporary.path, file.path)
            }
        }
        return CUDAKernelBuild(architecture: architecture, cubin: compiled.cubin, log: compiled.log,
                               registers: registers, spillBytes: spills, cached: false)
    }

    /// Registers and spill bytes per kernel from ptxas's `-v` report:
    /// `ptxas info : Function properties for NAME` / `N bytes stack frame, S bytes spill stores, L bytes spill loads`
    /// and `ptxas info : Used R registers, …` after `Compiling entry function 'NAME'`.
    public static func parseResourceReport(_ log: String) -> (registers: [String: Int], spillBytes: [String: Int]) {
        var registers: [String: Int] = [:], spills: [String: Int] = [:]
        var current: String?
        func number(before word: String, in line: Substring) -> Int? {
            guard let range = line.range(of: word) else { return nil }
            let head = line[..<range.lowerBound].trimmingCharacters(in: .whitespaces)
            return Int(head.split(separator: " ").last ?? "")
        }
        for line in log.split(separator: "\n") {
            if let r = line.range(of: "Compiling entry function '") ?? line.range(of: "Function properties for ") {
                let rest = line[r.upperBound...]
                current = String(rest.prefix { $0 != "'" && $0 != " " && $0 != "\n" })
            }
            guard let name = current else { continue }
            if let used = number(before: " registers", in: line), line.contains("Used ") { registers[name] = used }
            if let stores = number(before: " bytes spill stores", in: line) {
                let loads = number(before: " bytes spill loads", in: line) ?? 0
                spills[name, default: 0] += stores + loads
            }
        }
        return (registers, spills)
    }
}
