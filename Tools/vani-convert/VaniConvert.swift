// vani-convert: the released IndicConformer ONNX files → one Vani weights file (safetensors).
// The logic lives in ONNXImport; this file parses arguments and reports progress on stderr.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import ArgumentParser
import ConformerModel
import Foundation
import ONNXImport
import WeightFormat

extension Precision: ExpressibleByArgument {}

@main
struct VaniConvert: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vani-convert",
        abstract: "Convert the released IndicConformer ONNX files into one Vani weights file.",
        discussion: """
        ONNX_DIR is the downloaded repository folder (with config.json and assets/) or its \
        assets/ folder; Hugging Face cache symlinks are followed. The output is a safetensors \
        file (see Weights/FORMAT.md) that Python's `safetensors` also opens. With --dtype bf16 or \
        int8 the encoder's weight matrices are stored narrower (about 1/2 or 1/4 of the size; int8 \
        scales beside each matrix as `<name>_scale`); ONNX_DIR may then also be an fp32 .safetensors \
        file written by vani-convert, which is rewritten.
        """,
        version: converterVersion)

    @Argument(help: "The model folder (repository root or its assets/ folder), or with --dtype an fp32 .safetensors file.")
    var onnxDir: String

    @Option(help: "How the encoder's weight matrices are stored: fp32, bf16 or int8 (per output channel with fp32 scales).")
    var dtype: Precision = .fp32

    @Option(name: .shortAndLong, help: "The weights file to write.")
    var output: String

    @Option(help: "Model name stored in the config (default: from the folder name).")
    var name: String?

    @Option(help: "Comma-separated languages the model was trained on (default: all in vocab.json); the engine then offers only these.")
    var trainedLanguages: String?

    @Flag(help: "Reload the output and compare every tensor with its source.")
    var verify = false

    @Flag(name: .shortAndLong, help: "Print only errors.")
    var quiet = false

    func run() throws {
        if onnxDir.hasSuffix(".safetensors") {
            guard dtype != .fp32 else { throw ValidationError("a .safetensors input needs --dtype bf16 or int8") }
            do {
                let size = try Narrowing.rewrite(URL(fileURLWithPath: onnxDir), to: URL(fileURLWithPath: output), dtype: dtype)
                if !quiet { Swift.print("wrote \(output): \(size) bytes, encoder matrices stored \(dtype.rawValue)") }
            } catch {
                FileHandle.standardError.write(Data("error: \(error.description)\n".utf8))
                throw ExitCode(1)
            }
            return
        }
        let started = Date()
        let progress = Progress(quiet: quiet)
        let result: ConversionResult
        do {
            result = try Converter.convert(folder: URL(fileURLWithPath: onnxDir),
                                           output: URL(fileURLWithPath: output),
                                           name: name,
                                           trainedLanguages: trainedLanguages.map {
                                               $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                                                   .filter { !$0.isEmpty }
                                           },
                                           verify: verify, dtype: dtype) { progress.handle($0) }
        } catch {
            progress.endLine()
            FileHandle.standardError.write(Data("error: \(error.description)\n".utf8))
            throw ExitCode(1)
        }
        progress.endLine()
        if !quiet { Summary.print(result, seconds: Date().timeIntervalSince(started)) }
    }
}

/// Progress lines on stderr: a bar redrawn in place on a terminal when the output is large,
/// otherwise a line per 10 %.
final class Progress {
    let quiet: Bool
    let tty = isatty(STDERR_FILENO) != 0
    var total = 0
    var lastDecile = -1
    var onLine = false
    var started = Date()

    init(quiet: Bool) { self.quiet = quiet }

    func say(_ text: String) { FileHandle.standardError.write(Data(text.utf8)) }

    func endLine() { if onLine { say("\n"); onLine = false } }

    func handle(_ event: ConversionEvent) {
        switch event {
        case .warning(let w):
            endLine(); say("warning: \(w)\n")
        case _ where quiet:
            return
        case .reading(let file):
            if tty { say("\r\u{1B}[Kreading \(file)"); onLine = true }
        case let .planned(tensors, bytes):
            endLine()
            total = bytes
            started = Date()
            say("writing \(tensors) tensors, \(formatBytes(bytes))\n")
        case let .hashing(bytes, totalBytes):
            if tty { say("\r\u{1B}[Khashing sources \(formatBytes(bytes)) / \(formatBytes(totalBytes))"); onLine = true }
        case let .wrote(_, index, of, bytes, totalBytes):
            let fraction = totalBytes > 0 ? Double(bytes) / Double(totalBytes) : 1
            let large = totalBytes >= 64 << 20
            if tty && large {
                let width = 30
                let filled = Int(fraction * Double(width))
                let rate = Double(bytes) / max(Date().timeIntervalSince(started), 1e-3)
                say("\r\u{1B}[K[\(String(repeating: "#", count: filled))\(String(repeating: ".", count: width - filled))] "
                    + "\(Int(fraction * 100))%  \(index)/\(of) tensors  \(formatBytes(bytes)) / \(formatBytes(totalBytes))  \(formatBytes(Int(rate)))/s")
                onLine = true
            } else if large {
                let decile = Int(fraction * 10)
                if decile != lastDecile {
                    lastDecile = decile
                    say("  \(decile * 10)%  \(index)/\(of) tensors  \(formatBytes(bytes))\n")
                }
            } else if index == of {
                say("  wrote \(of) tensors, \(formatBytes(bytes))\n")
            }
        case let .verified(_, index, of):
            if tty { say("\r\u{1B}[Kverifying \(index)/\(of)"); onLine = true }
            if index == of { endLine(); say("verified \(of) tensors against their sources\n") }
        }
    }
}

func formatBytes(_ n: Int) -> String {
    let units = ["B", "KiB", "MiB", "GiB"]
    var v = Double(n)
    var u = 0
    while v >= 1024 && u < units.count - 1 { v /= 1024; u += 1 }
    return u == 0 ? "\(n) B" : String(format: "%.1f %@", v, units[u])
}

enum Summary {
    static func print(_ r: ConversionResult, seconds: Double) {
        let c = r.plan.config
        var lines: [String] = []
        // Tensors by component.
        var groups: [(String, Int, Int)] = []
        for t in r.plan.tensors {
            let parts = t.name.split(separator: ".")
            var key = String(parts[0])
            if key == "encoder", parts.count > 1 { key += "." + (parts[1] == "layers" ? "layers" : String(parts[1])) }
            if key == "joint", parts.count > 1 { key += "." + String(parts[1]) }
            if let i = groups.firstIndex(where: { $0.0 == key }) {
                groups[i].1 += 1; groups[i].2 += t.count
            } else {
                groups.append((key, 1, t.count))
            }
        }
        func row(_ a: String, _ b: String, _ c: String, _ d: String) -> String {
            func pad(_ s: String, _ w: Int, left: Bool) -> String {
                let fill = String(repeating: " ", count: max(0, w - s.count))
                return left ? s + fill : fill + s
            }
            return pad(a, 22, left: true) + pad(b, 8, left: false) + pad(c, 14, left: false) + pad(d, 12, left: false)
        }
        lines.append(row("component", "tensors", "parameters", "bytes"))
        for (k, n, p) in groups { lines.append(row(k, "\(n)", "\(p)", formatBytes(p * 4))) }
        let params = r.plan.tensors.reduce(0) { $0 + $1.count }
        lines.append(row("total (file)", "\(r.plan.tensors.count)", "\(params)", formatBytes(r.fileSize)))
        let kinds = Dictionary(grouping: r.plan.tensors, by: { $0.recipe.kind }).mapValues(\.count)
        lines.append("")
        lines.append("recipes:   " + kinds.keys.sorted().map { "\($0) \(kinds[$0]!)" }.joined(separator: ", "))
        let e = c.encoder
        lines.append("encoder:   d_model \(e.dModel), \(e.layers) layers, \(e.heads) heads, ff \(e.ffDim), kernel \(e.convKernel), "
            + "\(e.subsampling.rawValue) ×\(e.subsamplingFactor) (\(e.subsamplingChannels) ch), xscaling \(e.xscaling), "
            + "LN eps \(e.layerNormEps), pos table \(e.posEmbRows) rows, feat_in \(e.featIn)")
        lines.append("ctc:       \(c.ctc.numClasses) classes, blank \(c.ctc.blankId)")
        if let t = c.rnnt {
            lines.append("rnnt:      vocab \(t.vocabSize), LSTM \(t.predLayers)×\(t.predHidden), joint \(t.jointHidden) \(t.jointActivation.rawValue), "
                + "max symbols \(t.maxSymbols), SOS \(t.sosId), blank \(t.blankLocal)")
        } else {
            lines.append("rnnt:      none")
        }
        lines.append("languages: \(c.languages.count) (\(c.languages.keys.sorted().joined(separator: " ")))")
        lines.append("frames:    \(c.frameDuration) s")
        lines.append("output:    \(r.output.path) (\(formatBytes(r.fileSize)))")
        lines.append("source:    \(r.sourceDigest) (\(r.plan.sourceFiles.count) files)")
        if r.verifiedTensors > 0 { lines.append("verified:  \(r.verifiedTensors) tensors") }
        lines.append(String(format: "time:      %.2f s", seconds))
        FileHandle.standardError.write(Data((lines.joined(separator: "\n") + "\n").utf8))
    }
}
