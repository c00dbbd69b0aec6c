// `vani devices`: what this machine offers to `--device`: the CPU's features and precisions, and
// the CUDA driver, devices and libraries, or exactly why CUDA is unusable.

import ArgumentParser
import Backend
import ConformerModel
import Foundation

struct DevicesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devices",
        abstract: "List the CPU's features and the CUDA devices and libraries found, or why CUDA is unusable.")

    @Flag(name: .long, help: "Print one JSON object instead of text.")
    var json = false

    /// The report (Codable for `--json`; Tools/gpu/check.sh stores it).
    struct Report: Codable {
        struct CPU: Codable {
            var model: String
            var cores: Int
            var features: [String]
            var precisions: [String]
        }
        struct Library: Codable {
            var path: String?
            var version: String?
            var error: String?
        }
        struct CUDA: Codable {
            var usable: Bool
            var reason: String?
            var reasonKind: String?
            var probeMs: Double
            var searched: [String]
            var driver: Library
            var devices: [CUDADeviceInfo]
            var nvrtc: Library?
            var nvrtcArchitectures: [Int]?
            var cublas: Library?
            var precisions: [String]
        }
        var cpu: CPU
        var cuda: CUDA
    }

    /// The CPU flags that matter to Vani's kernels, in this order when present.
    static let interestingFlags = ["sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl",
                                   "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8"]

    static func cpuReport() -> Report.CPU {
        let text = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        var model = "unknown", flags = Set<String>()
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2 else { continue }
            if parts[0] == "model name", model == "unknown" { model = parts[1] }
            if parts[0] == "flags", flags.isEmpty { flags = Set(parts[1].split(separator: " ").map(String.init)) }
        }
        return Report.CPU(model: model, cores: ProcessInfo.processInfo.activeProcessorCount,
                          features: interestingFlags.filter(flags.contains),
                          precisions: ComputeDevice.cpu.precisions.map {
                              $0.rawValue + ($0.isNative ? "" : " (portable path)") })
    }

    static func cudaReport(search: CUDALibrarySearch = .standard()) -> Report.CUDA {
        let probe = CUDAProbe(search: search)
        var driver = Report.Library()
        if let opened = probe.driver {
            let v = opened.version
            driver = Report.Library(path: opened.path, version: "CUDA \(v.major).\(v.minor)", error: nil)
        } else {
            driver.error = probe.unusable?.reason
        }
        func library<T>(_ result: Result<T, CUDAUnavailable>?, _ describe: (T) -> Report.Library) -> Report.Library? {
            switch result {
            case .none: return nil
            case .success(let value): return describe(value)
            case .failure(let why): return Report.Library(path: nil, version: nil, error: why.reason)
            }
        }
        let nvrtcArchs: [Int]? = if case .success(let n) = probe.nvrtc { n.supportedArchitectures } else { nil }
        return Report.CUDA(
            usable: probe.unusable == nil, reason: probe.unusable?.reason, reasonKind: probe.unusable?.kind.rawValue,
            probeMs: probe.seconds * 1000, searched: search.directories.map { $0.isEmpty ? "(loader path)" : $0 },
            driver: driver, devices: probe.devices,
            nvrtc: library(probe.nvrtc) { n in
                let v = n.version
                return Report.Library(path: n.path, version: "\(v.major).\(v.minor)", error: nil)
            },
            nvrtcArchitectures: nvrtcArchs,
            cublas: library(probe.cublas) { c in
                Report.Library(path: "\(c.paths.cublas) + \(c.paths.cublasLt)", version: c.version, error: nil)
            },
            precisions: ComputeDevice.cuda(0).precisions.map(\.rawValue))
    }

    func run() throws {
        let report = Report(cpu: Self.cpuReport(), cuda: Self.cudaReport())
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
            return
        }
        let cpu = report.cpu
        print("cpu: \(cpu.model), \(cpu.cores) core(s)")
        print("  features: \(cpu.features.isEmpty ? "(none of interest)" : cpu.features.joined(separator: " "))")
        print("  precisions: \(cpu.precisions.joined(separator: ", "))")
        let cuda = report.cuda
        print("cuda: \(cuda.usable ? "usable" : "unusable: \(cuda.reason ?? "")") (probe \(String(format: "%.2f", cuda.probeMs)) ms)")
        if let path = cuda.driver.path { print("  driver: \(path), \(cuda.driver.version ?? "")") }
        for d in cuda.devices {
            print("  cuda:\(d.ordinal): \(d.name), \(String(format: "%.1f", Double(d.totalMemory) / 1_073_741_824)) GiB, compute capability \(d.capabilityMajor).\(d.capabilityMinor) (\(d.architecture)), \(d.multiprocessors) SMs, L2 \(d.l2CacheBytes / 1024) KiB")
        }
        for (name, lib) in [("nvrtc", cuda.nvrtc), ("cublas", cuda.cublas)] {
            guard let lib else { continue }
            if let path = lib.path { print("  \(name): \(path), version \(lib.version ?? "?")") }
            else { print("  \(name): \(lib.error ?? "missing")") }
        }
        if cuda.usable { print("  precisions: \(cuda.precisions.joined(separator: ", "))\(CUDABackend.isVerified ? "" : "; " + CUDABackend.notImplementedReason)") }
        print("  searched: \(cuda.searched.joined(separator: ", "))")
    }
}
