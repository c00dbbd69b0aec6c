// The NVIDIA libraries at run time: where they are looked for, what was found, and exactly why
// CUDA is unusable when it is. Nothing here needs a GPU, a toolkit or an NVIDIA header: CCUDA
// declares the entry points and opens the libraries with dlopen (docs/GPU.md, "Loader").

import CCUDA
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The text of a NUL-terminated C buffer.
func decodeCString(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

// MARK: - Why CUDA is unusable

/// Why the CUDA device cannot be used, as one line for logs and for `--device cuda`'s exit.
public struct CUDAUnavailable: Error, Sendable, Equatable, CustomStringConvertible {
    /// The kind of failure (stable; tests and callers switch on it).
    public enum Kind: String, Sendable, Equatable {
        /// No `libcuda.so.1` in any searched place.
        case noDriver
        /// `libcuda.so.1` is the toolkit's stub (cuInit returned 34).
        case stubDriver
        /// A driver without a device (cuInit returned 100, or no device at the ordinal asked for).
        case noDevice
        /// cuInit failed for another reason.
        case initFailed
        /// A library lacks an entry point Vani needs.
        case missingSymbol
        /// NVRTC (libnvrtc.so.13 or .12) was not found.
        case missingNVRTC
        /// cuBLAS or cuBLASLt was not found.
        case missingCuBLAS
        /// The CUDA encoder cannot run on this build or platform.
        case unsupported
    }
    /// The kind of failure.
    public let kind: Kind
    /// One line: what failed, where it looked, and what to do.
    public let reason: String

    /// A failure of `kind` explained by `reason`.
    public init(_ kind: Kind, _ reason: String) { self.kind = kind; self.reason = reason }

    /// `reason`.
    public var description: String { reason }
}

// MARK: - Where the libraries are looked for

/// The ordered directories the loader tries for each library. An empty string stands for the
/// dynamic loader's own search (dlopen by SONAME: `LD_LIBRARY_PATH`, the run path, ld.so.cache).
public struct CUDALibrarySearch: Sendable, Equatable {
    /// The environment variable that replaces the whole search: a colon-separated list of
    /// directories, searched alone (an empty directory therefore means "no CUDA here").
    public static let overrideVariable = "VANI_CUDA_LIBRARY_PATH"

    /// Directories in the order tried ("" = the loader's own path).
    public let directories: [String]

    /// A search over exactly these directories.
    public init(directories: [String]) { self.directories = directories }

    /// The standard order: `VANI_CUDA_LIBRARY_PATH` alone when set; else the loader's path, then
    /// pip's `site-packages/nvidia/*/lib` folders (cu13 first) under `$VIRTUAL_ENV`,
    /// `$CONDA_PREFIX`, `~/.local`, `/usr/local`, `/usr` and `/opt/*`, then
    /// `/usr/local/cuda*/lib64` (newest first).
    /// - Parameter environment: the variables to read (the process's by default).
    public static func standard(environment: [String: String] = ProcessInfo.processInfo.environment) -> CUDALibrarySearch {
        if let override = environment[overrideVariable] {
            return CUDALibrarySearch(directories: override.split(separator: ":").map(String.init).filter { !$0.isEmpty })
        }
        var roots: [String] = []
        for key in ["VIRTUAL_ENV", "CONDA_PREFIX"] { if let root = environment[key], !root.isEmpty { roots.append(root) } }
        if let home = environment["HOME"], !home.isEmpty { roots.append(home + "/.local") }
        roots += ["/usr/local", "/usr"] + globbed("/opt/*")
        var directories = [""]
        for root in roots {
            for pattern in ["/lib/python3*/site-packages/nvidia/*/lib", "/lib/python3*/dist-packages/nvidia/*/lib",
                            "/lib/python3/dist-packages/nvidia/*/lib"] {
                // cu13 (one folder for every library in CUDA 13 wheels) before the per-library folders.
                let found = globbed(root + pattern).sorted { ($0.contains("/nvidia/cu13/") ? 0 : 1, $0) < ($1.contains("/nvidia/cu13/") ? 0 : 1, $1) }
                directories += found
            }
        }
        directories += globbed("/usr/local/cuda*/lib64").sorted(by: >)
        var seen = Set<String>()
        return CUDALibrarySearch(directories: directories.filter { seen.insert($0).inserted })
    }

    /// Paths matching a shell pattern (none when nothing matches).
    public static func globbed(_ pattern: String) -> [String] {
        #if canImport(Glibc)
        var found = glob_t()
        defer { globfree(&found) }
        guard glob(pattern, 0, nil, &found) == 0 else { return [] }
        return (0..<Int(found.gl_pathc)).compactMap { found.gl_pathv[$0].map { String(cString: $0) } }
        #else
        return []
        #endif
    }

    /// Calls `body` with the directories as C strings (valid only inside `body`).
    func withCStrings<R>(_ body: (UnsafePointer<UnsafePointer<CChar>?>, Int32) -> R) -> R {
        let copies = directories.map { strdup($0) }
        defer { copies.forEach { free($0) } }
        let pointers: [UnsafePointer<CChar>?] = copies.map { $0.map { UnsafePointer($0) } }
        return pointers.withUnsafeBufferPointer { body($0.baseAddress!, Int32(pointers.count)) }
    }
}

/// Runs one CCUDA open function and turns its status and reason into a `CUDAUnavailable`.
private func openLibrary(_ search: CUDALibrarySearch, missing: CUDAUnavailable.Kind,
                         _ open: (UnsafePointer<UnsafePointer<CChar>?>, Int32, UnsafeMutablePointer<CChar>, Int) -> Int32)
    -> CUDAUnavailable? {
    var reason = [CChar](repeating: 0, count: 2048)
    let status = search.withCStrings { dirs, count in
        reason.withUnsafeMutableBufferPointer { open(dirs, count, $0.baseAddress!, $0.count) }
    }
    guard status != Int32(VANI_CUDA_OK.rawValue) else { return nil }
    let text = decodeCString(reason)
    switch vani_cuda_status(rawValue: UInt32(status)) {
    case VANI_CUDA_MISSING_SYMBOL: return CUDAUnavailable(.missingSymbol, text)
    case VANI_CUDA_STUB_DRIVER: return CUDAUnavailable(.stubDriver, text)
    case VANI_CUDA_NO_DEVICE: return CUDAUnavailable(.noDevice, text)
    case VANI_CUDA_INIT_FAILED: return CUDAUnavailable(.initFailed, text)
    case VANI_CUDA_UNSUPPORTED: return CUDAUnavailable(.unsupported, text)
    default: return CUDAUnavailable(missing, text)
    }
}

// MARK: - The driver

/// One CUDA device as the driver reports it.
public struct CUDADeviceInfo: Sendable, Equatable, Codable {
    /// The ordinal (`cuda:N`).
    public var ordinal: Int
    /// The product name ("NVIDIA H200").
    public var name: String
    /// Total memory in bytes.
    public var totalMemory: Int
    /// Compute capability, e.g. (9, 0); the kernels are compiled for `sm_<major><minor>`.
    public var computeCapability: (major: Int, minor: Int) {
        (capabilityMajor, capabilityMinor)
    }
    /// Compute capability's major number.
    public var capabilityMajor: Int
    /// Compute capability's minor number.
    public var capabilityMinor: Int
    /// Streaming multiprocessors.
    public var multiprocessors: Int
    /// L2 cache in bytes.
    public var l2CacheBytes: Int

    /// Memberwise.
    public init(ordinal: Int, name: String, totalMemory: Int, capabilityMajor: Int, capabilityMinor: Int,
                multiprocessors: Int, l2CacheBytes: Int) {
        self.ordinal = ordinal; self.name = name; self.totalMemory = totalMemory
        self.capabilityMajor = capabilityMajor; self.capabilityMinor = capabilityMinor
        self.multiprocessors = multiprocessors; self.l2CacheBytes = l2CacheBytes
    }

    /// NVRTC's architecture option for this device: `sm_90` for 9.0 (a cubin, never PTX).
    public var architecture: String { "sm_\(capabilityMajor)\(capabilityMinor)" }
}

/// The loaded NVIDIA driver (`libcuda.so.1`), initialised. Immutable once opened; the C
/// function table is only read, so sharing it between threads is safe.
public final class CUDADriver: @unchecked Sendable {
    /// The entry points (see CCUDA's `vani_cuda_driver`).
    public let table: UnsafeMutablePointer<vani_cuda_driver>

    private init(table: UnsafeMutablePointer<vani_cuda_driver>) { self.table = table }

    deinit {
        vani_cuda_driver_close(table)
        table.deallocate()
    }

    /// Opens and initialises the driver found first along `search`.
    /// - Returns: the driver, or why there is none usable (`.noDriver`, `.stubDriver`,
    ///   `.noDevice`, `.initFailed`, `.missingSymbol`).
    public static func open(_ search: CUDALibrarySearch = .standard()) -> Result<CUDADriver, CUDAUnavailable> {
        let table = UnsafeMutablePointer<vani_cuda_driver>.allocate(capacity: 1)
        if let failure = openLibrary(search, missing: .noDriver, { vani_cuda_driver_open(table, $0, $1, $2, $3) }) {
            table.deallocate()
            return .failure(failure)
        }
        return .success(CUDADriver(table: table))
    }

    /// The file the loader mapped.
    public var path: String { withUnsafeBytes(of: table.pointee.path) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) } }

    /// The driver's CUDA version as (major, minor), e.g. (13, 0) for 13000.
    public var version: (major: Int, minor: Int) {
        var v: Int32 = 0
        _ = table.pointee.cuDriverGetVersion(&v)
        return (Int(v) / 1000, Int(v) % 1000 / 10)
    }

    /// The message of a driver error code ("error N" when the driver has none).
    public func message(_ code: Int32) -> String {
        var text: UnsafePointer<CChar>?
        guard table.pointee.cuGetErrorString(code, &text) == 0, let text else { return "error \(code)" }
        return "error \(code), \(String(cString: text))"
    }

    /// Every device the driver sees.
    public func devices() -> [CUDADeviceInfo] {
        var count: Int32 = 0
        guard table.pointee.cuDeviceGetCount(&count) == 0 else { return [] }
        return (0..<Int(count)).compactMap { ordinal in
            var device: CUdevice = 0
            guard table.pointee.cuDeviceGet(&device, Int32(ordinal)) == 0 else { return nil }
            var name = [CChar](repeating: 0, count: 256)
            _ = table.pointee.cuDeviceGetName(&name, Int32(name.count), device)
            var memory = 0
            _ = table.pointee.cuDeviceTotalMem(&memory, device)
            func attribute(_ id: Int32) -> Int {
                var value: Int32 = 0
                return table.pointee.cuDeviceGetAttribute(&value, id, device) == 0 ? Int(value) : 0
            }
            return CUDADeviceInfo(ordinal: ordinal, name: decodeCString(name), totalMemory: memory,
                                  capabilityMajor: attribute(Int32(VANI_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)),
                                  capabilityMinor: attribute(Int32(VANI_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)),
                                  multiprocessors: attribute(Int32(VANI_CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)),
                                  l2CacheBytes: attribute(Int32(VANI_CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE)))
        }
    }
}

// MARK: - cuBLAS

/// The loaded cuBLAS and cuBLASLt. Immutable once opened.
public final class CuBLASLibrary: @unchecked Sendable {
    /// The entry points (see CCUDA's `vani_cublas`).
    public let table: UnsafeMutablePointer<vani_cublas>

    private init(table: UnsafeMutablePointer<vani_cublas>) { self.table = table }

    deinit {
        vani_cublas_close(table)
        table.deallocate()
    }

    /// Opens cuBLASLt then cuBLAS (13, else 12) along `search`.
    /// - Returns: the libraries, or `.missingCuBLAS` / `.missingSymbol` with the reason.
    public static func open(_ search: CUDALibrarySearch = .standard()) -> Result<CuBLASLibrary, CUDAUnavailable> {
        let table = UnsafeMutablePointer<vani_cublas>.allocate(capacity: 1)
        if let failure = openLibrary(search, missing: .missingCuBLAS, { vani_cublas_open(table, $0, $1, $2, $3) }) {
            table.deallocate()
            return .failure(failure)
        }
        return .success(CuBLASLibrary(table: table))
    }

    /// The files the loader mapped (cuBLAS, cuBLASLt).
    public var paths: (cublas: String, cublasLt: String) {
        (withUnsafeBytes(of: table.pointee.path) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) },
         withUnsafeBytes(of: table.pointee.lt_path) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) })
    }

    /// cuBLAS's version "major.minor.patch" (cublasGetProperty) and cuBLASLt's number.
    public var version: String {
        var parts: [Int32] = [0, 0, 0]
        for i in 0..<3 { _ = table.pointee.cublasGetProperty(Int32(i), &parts[i]) }
        return "\(parts[0]).\(parts[1]).\(parts[2]) (cuBLASLt \(table.pointee.cublasLtGetVersion()))"
    }
}

// MARK: - The probe: what `auto` and `vani devices` see

/// What the CUDA probe found: the driver, its devices and the libraries, or why CUDA is
/// unusable. Made once per process for the standard search (`CUDAProbe.shared`).
public struct CUDAProbe: Sendable {
    /// The driver, when one initialised.
    public let driver: CUDADriver?
    /// Its devices (empty without a driver).
    public let devices: [CUDADeviceInfo]
    /// NVRTC, or why it is missing (nil when the driver failed first).
    public let nvrtc: Result<NVRTC, CUDAUnavailable>?
    /// cuBLAS(Lt), or why it is missing (nil when the driver failed first).
    public let cublas: Result<CuBLASLibrary, CUDAUnavailable>?
    /// The first reason CUDA is unusable; nil when a driver, a device, NVRTC and cuBLAS are all there.
    public let unusable: CUDAUnavailable?
    /// Seconds the probe took (`vani bench` reports it; `auto`'s fallback cost).
    public let seconds: Double

    /// Probes along `search`: the driver first, and the libraries only when it has a device,
    /// so a machine without CUDA pays one failed dlopen per searched directory.
    public init(search: CUDALibrarySearch) {
        let start = DispatchTime.now().uptimeNanoseconds
        switch CUDADriver.open(search) {
        case .failure(let why):
            driver = nil; devices = []; nvrtc = nil; cublas = nil; unusable = why
        case .success(let opened):
            driver = opened
            devices = opened.devices()
            let nvrtc = NVRTC.open(search)
            let cublas = CuBLASLibrary.open(search)
            self.nvrtc = nvrtc; self.cublas = cublas
            if devices.isEmpty {
                unusable = CUDAUnavailable(.noDevice, "the NVIDIA driver (\(opened.path)) reports no CUDA device")
            } else if case .failure(let why) = nvrtc {
                unusable = why
            } else if case .failure(let why) = cublas {
                unusable = why
            } else {
                unusable = nil
            }
        }
        seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    /// The probe of the standard search, made on first use.
    public static let shared = CUDAProbe(search: .standard())

    /// The device at `ordinal`, or why it cannot be used.
    public func device(_ ordinal: Int) -> Result<CUDADeviceInfo, CUDAUnavailable> {
        if let unusable { return .failure(unusable) }
        guard let device = devices.first(where: { $0.ordinal == ordinal }) else {
            return .failure(CUDAUnavailable(.noDevice, "no CUDA device cuda:\(ordinal): the driver sees \(devices.count) (cuda:0…cuda:\(devices.count - 1))"))
        }
        return .success(device)
    }
}
