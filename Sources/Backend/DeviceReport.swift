// What this machine offers to `--device`: the CPU's features and precisions, and the CUDA
// driver, devices and libraries, or exactly why CUDA is unusable (`vani devices`,
// `vani-gpu-check`).

import ConformerModel
import Foundation

/// The device report (Codable: `vani devices --json`, and gpu.json of the GPU check).
public struct DeviceReport: Codable, Sendable {
    /// The host CPU.
    public struct CPU: Codable, Sendable {
        public var model: String
        public var cores: Int
        /// The flags among `DeviceReport.interestingFlags` this CPU has.
        public var features: [String]
        /// Precisions offered, "(portable path)" where the CPU lacks their instructions.
        public var precisions: [String]
    }
    /// One library: where it was found and its version, or why it was not.
    public struct Library: Codable, Sendable {
        public var path: String?
        public var version: String?
        public var error: String?
    }
    /// What the CUDA probe found.
    public struct CUDA: Codable, Sendable {
        public var usable: Bool
        public var reason: String?
        public var reasonKind: String?
        public var probeMs: Double
        public var searched: [String]
        public var driver: Library
        public var devices: [CUDADeviceInfo]
        public var nvrtc: Library?
        public var nvrtcArchitectures: [Int]?
        public var cublas: Library?
        public var precisions: [String]
    }
    public var cpu: CPU
    public var cuda: CUDA

    /// The CPU flags that matter to Vani's kernels, in this order when present.
    public static let interestingFlags = ["sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl",
                                          "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8"]

    /// Probes the CPU (/proc/cpuinfo) and CUDA along `search`.
    public init(search: CUDALibrarySearch = .standard()) {
        cpu = Self.cpuReport()
        cuda = Self.cudaReport(search: search)
    }

    static func cpuReport() -> CPU {
        let text = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        var model = "unknown", flags = Set<String>()
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2 else { continue }
            if parts[0] == "model name", model == "unknown" { model = parts[1] }
            if parts[0] == "flags", flags.isEmpty { flags = Set(parts[1].split(separator: " ").map(String.init)) }
        }
        return CPU(model: model, cores: ProcessInfo.processInfo.activeProcessorCount,
                   features: interestingFlags.filter(flags.contains),
                   precisions: ComputeDevice.cpu.precisions.map { $0.rawValue + ($0.isNative ? "" : " (portable path)") })
    }

    static func cudaReport(search: CUDALibrarySearch) -> CUDA {
        let probe = CUDAProbe(search: search)
        var driver = Library()
        if let opened = probe.driver {
            let v = opened.version
            driver = Library(path: opened.path, version: "CUDA \(v.major).\(v.minor)", error: nil)
        } else {
            driver.error = probe.unusable?.reason
        }
        func library<T>(_ result: Result<T, CUDAUnavailable>?, _ describe: (T) -> Library) -> Library? {
            switch result {
            case .none: return nil
            case .success(let value): return describe(value)
            case .failure(let why): return Library(path: nil, version: nil, error: why.reason)
            }
        }
        let nvrtcArchs: [Int]? = if case .success(let n) = probe.nvrtc { n.supportedArchitectures } else { nil }
        return CUDA(
            usable: probe.unusable == nil, reason: probe.unusable?.reason, reasonKind: probe.unusable?.kind.rawValue,
            probeMs: probe.seconds * 1000, searched: search.directories.map { $0.isEmpty ? "(loader path)" : $0 },
            driver: driver, devices: probe.devices,
            nvrtc: library(probe.nvrtc) { n in
                let v = n.version
                return Library(path: n.path, version: "\(v.major).\(v.minor)", error: nil)
            },
            nvrtcArchitectures: nvrtcArchs,
            cublas: library(probe.cublas) { c in
                Library(path: "\(c.paths.cublas) + \(c.paths.cublasLt)", version: c.version, error: nil)
            },
            precisions: ComputeDevice.cuda(0).precisions.map(\.rawValue))
    }

    /// The report as lines of text (`vani devices`).
    public var text: String {
        var lines: [String] = []
        lines.append("cpu: \(cpu.model), \(cpu.cores) core(s)")
        lines.append("  features: \(cpu.features.isEmpty ? "(none of interest)" : cpu.features.joined(separator: " "))")
        lines.append("  precisions: \(cpu.precisions.joined(separator: ", "))")
        lines.append("cuda: \(cuda.usable ? "usable" : "unusable: \(cuda.reason ?? "")") (probe \(String(format: "%.2f", cuda.probeMs)) ms)")
        if let path = cuda.driver.path { lines.append("  driver: \(path), \(cuda.driver.version ?? "")") }
        for d in cuda.devices {
            lines.append("  cuda:\(d.ordinal): \(d.name), \(String(format: "%.1f", Double(d.totalMemory) / 1_073_741_824)) GiB, compute capability \(d.capabilityMajor).\(d.capabilityMinor) (\(d.architecture)), \(d.multiprocessors) SMs, L2 \(d.l2CacheBytes / 1024) KiB")
        }
        for (name, lib) in [("nvrtc", cuda.nvrtc), ("cublas", cuda.cublas)] {
            guard let lib else { continue }
            if let path = lib.path { lines.append("  \(name): \(path), version \(lib.version ?? "?")") }
            else { lines.append("  \(name): \(lib.error ?? "missing")") }
        }
        if cuda.usable {
            lines.append("  precisions: \(cuda.precisions.joined(separator: ", "))\(CUDABackend.isVerified ? "" : "; " + CUDABackend.notImplementedReason)")
        }
        lines.append("  searched: \(cuda.searched.joined(separator: ", "))")
        return lines.joined(separator: "\n")
    }
}

extension DeviceReport {
    /// The report as `vani devices` prints it: one JSON object (sorted keys), or text.
    public func rendered(json: Bool) throws -> String {
        guard json else { return text }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }
}
