// `vani-gpu-check --out DIR`: the GPU half of issue 15's check, run by Tools/gpu/check.sh on a
// GPU machine. A binary of its own, without the HTTP server and FFmpeg, so that its `make
// dist-gpu` bundle fits beside the checkout (docs/GPU.md). Writes DIR/gpu.json and DIR/gpu.md: what it found (`vani devices`), fp32 parity
// of the CUDA encoder against the CPU engine on the bundled samples (encoder max |Δ| ≤ 1e-4,
// CTC and RNN-T tokens identical), tf32/bf16 agreement, and encoder latency at 5/20/60 s for
// fp32/tf32/bf16, with load and upload times. Without a usable GPU it writes the report with the
// reason and exits 2 (that path runs on any machine).

import ArgumentParser
import Backend
import ConformerModel
import Decoding
import Foundation
import Frontend
import TensorModule

@main
struct VaniGPUCheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vani-gpu-check",
        abstract: "Check the CUDA encoder against the CPU and time it; write gpu.json and gpu.md to --out.",
        subcommands: [Devices.self, Check.self], defaultSubcommand: Check.self)

    /// `vani-gpu-check devices [--json]`: as `vani devices`.
    struct Devices: ParsableCommand {
        @Flag(name: .long, help: "Print one JSON object instead of text.")
        var json = false
        func run() throws {
            print(try DeviceReport().rendered(json: json))
        }
    }
}

extension Precision: ExpressibleByArgument {}

/// An error printed as one line.
struct CheckError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// Mono 16-bit PCM WAV samples in [-1, 1] (the bundled samples' format), checked against `rate`.
func readWAV(_ url: URL, rate: Int) throws -> [Float] {
    guard let data = FileManager.default.contents(atPath: url.path), data.count > 12,
          String(decoding: data[0..<4], as: UTF8.self) == "RIFF", String(decoding: data[8..<12], as: UTF8.self) == "WAVE" else {
        throw CheckError("\(url.path) is not a RIFF/WAVE file")
    }
    let bytes = [UInt8](data)
    func u32(_ i: Int) -> Int { Int(bytes[i]) | Int(bytes[i + 1]) << 8 | Int(bytes[i + 2]) << 16 | Int(bytes[i + 3]) << 24 }
    func u16(_ i: Int) -> Int { Int(bytes[i]) | Int(bytes[i + 1]) << 8 }
    var offset = 12
    var format: (channels: Int, rate: Int, bits: Int)?
    while offset + 8 <= bytes.count {
        let id = String(decoding: bytes[offset..<offset + 4], as: UTF8.self), size = u32(offset + 4)
        let body = offset + 8
        if id == "fmt " { format = (u16(body + 2), u32(body + 4), u16(body + 14)) }
        if id == "data", let f = format {
            guard f.channels == 1, f.bits == 16, f.rate == rate else {
                throw CheckError("\(url.lastPathComponent): \(f.channels) channel(s), \(f.bits) bits, \(f.rate) Hz; this check reads mono 16-bit at \(rate) Hz")
            }
            let end = min(bytes.count, body + size)
            return stride(from: body, to: end - 1, by: 2).map { Float(Int16(bitPattern: UInt16(u16($0)))) / 32768 }
        }
        offset = body + size + (size & 1)
    }
    throw CheckError("\(url.lastPathComponent) has no fmt/data chunk")
}

/// The check itself (the default subcommand).
struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check the CUDA encoder against the CPU and time it; write gpu.json and gpu.md to --out.")

    @Option(name: .long, help: "Folder for gpu.json and gpu.md (created).")
    var out: String

    @Option(name: .long, help: "Weights file.")
    var model = "Weights/default.safetensors"

    @Option(name: .long, help: "Folder with the samples and samples.json (language of each file).")
    var samples = "Samples"

    @Option(name: .long, parsing: .upToNextOption, help: "Seconds of synthetic audio to time.")
    var seconds: [Double] = [5, 20, 60]

    @Option(name: .long, help: "Timed runs per length and precision (after 3 warm-ups); the median is reported.")
    var runs = 20

    @Option(name: .long, parsing: .upToNextOption, help: "GPU precisions to check (fp32 is the parity gate).")
    var precisions: [Precision] = [.fp32, .tf32, .bf16]

    @Option(name: .long, help: "Largest encoder max |Δ| against the CPU that fp32 parity allows.")
    var tolerance: Float = 1e-4

    /// What gpu.json holds.
    struct Report: Codable {
        var devices: DeviceReport
        var model: String
        var verdict: String
        var reason: String?
        var parity: [ParityRow] = []
        var latency: [LatencyRow] = []
        var loads: [LoadRow] = []
    }
    struct ParityRow: Codable {
        var clip: String
        var precision: String
        var encoderMaxAbsDiff: Float
        var ctcTokensEqual: Bool
        var rnntTokensEqual: Bool?
        var passed: Bool?
    }
    struct LatencyRow: Codable {
        var seconds: Double
        var precision: String
        var encoderMs: Double
        var cpuEncoderMs: Double?
    }
    struct LoadRow: Codable {
        var precision: String
        var loadMs: Double
        var uploadMs: Double
        var weightBytes: Int
        var kernelsCached: Bool
        var architecture: String
    }

    func run() throws {
        let outURL = URL(fileURLWithPath: out)
        try FileManager.default.createDirectory(at: outURL, withIntermediateDirectories: true)
        let modelURL = URL(fileURLWithPath: model)
        var report = Report(devices: DeviceReport(), model: modelURL.path, verdict: "unusable")
        if let reason = report.devices.cuda.reason {
            report.reason = reason
            try write(report, to: outURL)
            FileHandle.standardError.write(Data("vani-gpu-check: CUDA is unusable here: \(reason) (report in \(outURL.path))\n".utf8))
            throw ExitCode(2)
        }
        let network: ConformerASRModel
        do { network = try ConformerASRModel(contentsOf: modelURL, precision: .fp32) } catch {
            throw CheckError("cannot load \(modelURL.path): \(error)")
        }
        let cpu = CPUBackend(model: network)
        var gpus: [(Precision, CUDABackend)] = []
        for precision in precisions {
            let start = DispatchTime.now().uptimeNanoseconds
            let gpu = try CUDABackend(model: network, ordinal: 0, precision: precision)
            let ms = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
            gpus.append((precision, gpu))
            report.loads.append(LoadRow(precision: precision.rawValue, loadMs: ms, uploadMs: gpu.uploadSeconds * 1000,
                                        weightBytes: gpu.weightBytes, kernelsCached: gpu.kernels.cached,
                                        architecture: gpu.kernels.architecture))
        }
        let frontend = LogMelFrontend(config: network.config.frontend)
        let languages = Language.all(in: network)
        let rate = network.config.frontend.sampleRate
        // Parity on the samples.
        let listURL = URL(fileURLWithPath: samples).appendingPathComponent("samples.json")
        let list = (try? JSONDecoder().decode([String: [String: String]].self, from: Data(contentsOf: listURL))) ?? [:]
        var failed = list.isEmpty
        if list.isEmpty { report.reason = "no samples in \(listURL.path)" }
        for (file, entry) in list.sorted(by: { $0.key < $1.key }) {
            guard let code = entry["language"], let language = languages[code],
                  let ctcDecoder = language.decoder(.ctc, in: network) else { continue }
            let features = frontend.features(try readWAV(URL(fileURLWithPath: samples).appendingPathComponent(file), rate: rate))
            let reference = cpu.encode([features])[0]
            let ctcRef = ctcDecoder.decode(reference.pointer, frames: reference.shape[0]).ids
            let rnntDecoder = language.decoder(.rnnt, in: network)
            let rnntRef = rnntDecoder.map { $0.decode(reference.pointer, frames: reference.shape[0]).ids }
            for (precision, gpu) in gpus {
                let encoded = gpu.encode([features])[0]
                let diff = Self.maxAbsDiff(reference, encoded)
                let frames = encoded.shape[0]
                let ctc = ctcDecoder.decode(encoded.pointer, frames: frames).ids
                let rnnt = rnntDecoder.map { $0.decode(encoded.pointer, frames: frames).ids }
                var row = ParityRow(clip: file, precision: precision.rawValue, encoderMaxAbsDiff: diff,
                                    ctcTokensEqual: ctc == ctcRef, rnntTokensEqual: rnnt.map { $0 == rnntRef })
                if precision == .fp32 {
                    row.passed = diff <= tolerance && row.ctcTokensEqual && (row.rnntTokensEqual ?? true)
                    if row.passed == false { failed = true }
                }
                report.parity.append(row)
            }
        }
        // Latency on synthetic audio (a 220 Hz tone with noise: the encoder's work does not
        // depend on the content).
        for length in seconds {
            var generator = SystemRandomNumberGenerator()
            let samples = (0..<Int(length * Double(rate))).map { i in
                0.3 * sinf(Float(i) * 2 * .pi * 220 / Float(rate)) + Float.random(in: -0.01...0.01, using: &generator)
            }
            let features = frontend.features(samples)
            let cpuMs = length <= 20 ? Self.median(runs: 3, warmups: 1) { _ in _ = cpu.encode([features]) } : nil
            for (precision, gpu) in gpus {
                let ms = Self.median(runs: runs, warmups: 3) { _ in _ = gpu.encode([features]) }
                report.latency.append(LatencyRow(seconds: length, precision: precision.rawValue, encoderMs: ms, cpuEncoderMs: cpuMs))
            }
        }
        report.verdict = failed ? "fp32 parity FAILED" : "fp32 parity passed"
        try write(report, to: outURL)
        print(Self.markdown(report))
        if failed { throw ExitCode(1) }
    }

    static func maxAbsDiff(_ a: Tensor, _ b: Tensor) -> Float {
        guard a.shape == b.shape else { return .infinity }
        var worst: Float = 0
        for i in 0..<a.count {
            let d = abs(a.pointer[i] - b.pointer[i])
            if d.isNaN { return .nan }
            worst = max(worst, d)
        }
        return worst
    }

    /// Median wall time in ms of `body` over `runs` runs after `warmups` (each call syncs).
    static func median(runs: Int, warmups: Int, _ body: (Int) -> Void) -> Double {
        for i in 0..<warmups { body(i) }
        var times: [Double] = []
        for i in 0..<max(1, runs) {
            let start = DispatchTime.now().uptimeNanoseconds
            body(i)
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
        }
        times.sort()
        return times[times.count / 2]
    }

    func write(_ report: Report, to folder: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(report).write(to: folder.appendingPathComponent("gpu.json"))
        try Data(Self.markdown(report).utf8).write(to: folder.appendingPathComponent("gpu.md"))
    }

    /// The Markdown tables Benchmarks/GPU.md takes.
    static func markdown(_ r: Report) -> String {
        var lines: [String] = []
        let gpu = r.devices.cuda.devices.first.map { "\($0.name) (\($0.architecture), \(String(format: "%.0f", Double($0.totalMemory) / 1_073_741_824)) GiB)" } ?? "no GPU"
        lines.append("## GPU check: \(gpu), driver \(r.devices.cuda.driver.version ?? "none"), model \(URL(fileURLWithPath: r.model).lastPathComponent)")
        lines.append("")
        lines.append("Verdict: **\(r.verdict)**\(r.reason.map { " — \($0)" } ?? "")")
        if !r.loads.isEmpty {
            lines += ["", "| precision | load ms | upload ms | weights MiB | kernels | arch |", "|---|---:|---:|---:|---|---|"]
            for l in r.loads {
                lines.append(String(format: "| %@ | %.1f | %.1f | %.1f | %@ | %@ |", l.precision, l.loadMs, l.uploadMs,
                                    Double(l.weightBytes) / 1_048_576, l.kernelsCached ? "cached" : "compiled", l.architecture))
            }
        }
        if !r.parity.isEmpty {
            lines += ["", "| clip | precision | encoder max abs Δ vs CPU | CTC tokens equal | RNN-T tokens equal | gate |", "|---|---|---:|---|---|---|"]
            for p in r.parity {
                lines.append("| \(p.clip) | \(p.precision) | \(String(format: "%.2e", p.encoderMaxAbsDiff)) | \(p.ctcTokensEqual) | \(p.rnntTokensEqual.map { "\($0)" } ?? "n/a") | \(p.passed.map { $0 ? "pass" : "FAIL" } ?? "recorded") |")
            }
        }
        if !r.latency.isEmpty {
            lines += ["", "| audio s | precision | GPU encoder ms (median) | CPU encoder ms |", "|---:|---|---:|---:|"]
            for l in r.latency {
                lines.append(String(format: "| %.0f | %@ | %.3f | %@ |", l.seconds, l.precision, l.encoderMs,
                                    l.cpuEncoderMs.map { String(format: "%.1f", $0) } ?? "—"))
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
