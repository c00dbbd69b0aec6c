// vani-convert: the released IndicConformer ONNX files → one Vani weights file (safetensors).
// The logic lives in ONNXImport (conversion) and HubDownload (the Hugging Face hub); this file
// parses arguments and reports progress on stderr.

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
import HubDownload
import ONNXImport
import WeightFormat

extension Precision: ExpressibleByArgument {
    /// fp32, bf16 or int8: tf32 is a GPU compute mode over fp32 storage, not a file's dtype.
    public init?(argument: String) {
        guard argument != Precision.tf32.rawValue else { return nil }
        self.init(rawValue: argument)
    }
    public static var allValueStrings: [String] { allCases.filter { $0 != .tf32 }.map(\.rawValue) }
}

@main
struct VaniConvert: AsyncParsableCommand {
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

        With --from-hub OWNER/NAME the files are first downloaded from the Hugging Face hub into \
        its standard cache (HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub), \
        resuming partial files and reusing what is there; the output is then verified unless \
        --no-verify is given. The token comes from --token-file, else HF_TOKEN, else the file \
        `huggingface-cli login` writes ($HF_HOME/token). HF_ENDPOINT and HF_HUB_OFFLINE=1 are honoured.
        """,
        version: converterVersion)

    @Argument(help: "The model folder (repository root or its assets/ folder), or with --dtype an fp32 .safetensors file; omit with --from-hub.")
    var onnxDir: String?

    @Option(name: .customLong("from-hub"), help: ArgumentHelp("Download this hub repository first.", valueName: "owner/name"))
    var fromHub: String?

    @Option(help: "Branch, tag or commit of the hub repository.")
    var revision = "main"

    @Option(help: ArgumentHelp("A file holding the hub access token (else HF_TOKEN, else the login file).", valueName: "file"))
    var tokenFile: String?

    @Option(help: ArgumentHelp("The Hugging Face cache folder (default: HF_HUB_CACHE, $HF_HOME/hub, ~/.cache/huggingface/hub).",
                               valueName: "dir"))
    var cacheDir: String?

    @Option(help: "Files downloaded at once.")
    var jobs = 4

    @Option(help: "How the encoder's weight matrices are stored: fp32, bf16 or int8 (per output channel with fp32 scales).")
    var dtype: Precision = .fp32

    @Option(name: .shortAndLong, help: "The weights file to write.")
    var output: String

    @Option(help: "Model name stored in the config (default: from the folder name, or the hub repository).")
    var name: String?

    @Option(help: "Comma-separated languages the model was trained on (default: all in vocab.json); the engine then offers only these.")
    var trainedLanguages: String?

    @Flag(inversion: .prefixedNo,
          help: "Reload the output and compare every tensor with its source (default: on with --from-hub, off otherwise).")
    var verify: Bool?

    @Flag(name: .shortAndLong, help: "Print only errors.")
    var quiet = false

    func validate() throws {
        if (onnxDir == nil) == (fromHub == nil) {
            throw ValidationError("give either ONNX_DIR or --from-hub OWNER/NAME (one of the two)")
        }
        if jobs < 1 { throw ValidationError("--jobs must be at least 1") }
    }

    func run() async throws {
        if let onnxDir, onnxDir.hasSuffix(".safetensors") {
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
        let folder: URL
        var modelName = name
        if let repository = fromHub {
            do {
                folder = try await download(repository, progress: progress)
            } catch {
                progress.endLine()
                FileHandle.standardError.write(Data("error: \(error.description)\n".utf8))
                throw ExitCode(1)
            }
            modelName = modelName ?? repository
        } else {
            folder = URL(fileURLWithPath: onnxDir!)
        }
        let result: ConversionResult
        do {
            result = try Converter.convert(folder: folder,
                                           output: URL(fileURLWithPath: output),
                                           name: modelName,
                                           trainedLanguages: trainedLanguages.map {
                                               $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                                                   .filter { !$0.isEmpty }
                                           },
                                           verify: verify ?? (fromHub != nil), dtype: dtype) { progress.handle($0) }
        } catch {
            progress.endLine()
            FileHandle.standardError.write(Data("error: \(error.description)\n".utf8))
            throw ExitCode(1)
        }
        progress.endLine()
        if !quiet { Summary.print(result, seconds: Date().timeIntervalSince(started)) }
    }

    /// Brings the files the converter reads into the hub cache; returns the snapshot folder.
    func download(_ repository: String, progress: Progress) async throws(HubError) -> URL {
        var environment = HubEnvironment()
        if let cacheDir { environment.cacheDirectory = URL(fileURLWithPath: cacheDir) }
        let token = try HubToken.find(tokenFile: tokenFile, environment: environment)
        let client = HubClient(environment: environment, token: token,
                               options: HubDownloadOptions(maxConcurrentDownloads: jobs))
        if !quiet {
            let source = environment.offline ? "the cache (HF_HUB_OFFLINE)" : environment.endpoint
            progress.say("\(repository) at \(revision) from \(source)\(token.map { ", \($0)" } ?? ", no token")\n")
        }
        let snapshot = try await client.snapshot(repository: repository, revision: revision,
                                                 wanted: ModelFiles.wanted) { progress.handle($0) }
        progress.finishDownload(snapshot)
        return snapshot.folder
    }
}

/// The repository files the converter reads: `config.json` and everything under `assets/`
/// (graphs, external data, vocab.json, language_masks.json) except the TorchScript preprocessor
/// (`*.ts`), which it cannot use. README, Python wrapper and the like stay on the hub.
enum ModelFiles {
    @Sendable static func wanted(_ path: String) -> Bool {
        path == "config.json" || (path.hasPrefix("assets/") && !path.hasSuffix(".ts"))
    }
}

/// Progress on stderr. On a terminal: one bar redrawn in place (bytes, rate, time left) for the
/// download and for each converter step. Otherwise: plain lines, one per 10 %. Download events
/// come from several tasks at once, hence the lock.
final class Progress: @unchecked Sendable {
    let quiet: Bool
    let tty = isatty(STDERR_FILENO) != 0
    private let lock = NSLock()
    // Converter
    private var lastDecile = -1
    private var onLine = false
    private var started = Date()
    private var stepStarted = Date()
    private var stepName = ""
    // Download
    private var downloadTotal: Int64 = 0
    private var downloadCached: Int64 = 0
    private var received: [String: Int64] = [:]
    private var downloadStarted = Date()
    private var lastDraw = Date.distantPast
    private var lastDrawnBytes: Int64 = -1

    init(quiet: Bool) { self.quiet = quiet }

    func say(_ text: String) { FileHandle.standardError.write(Data(text.utf8)) }

    func endLine() {
        lock.lock(); defer { lock.unlock() }
        endLineLocked()
    }

    private func endLineLocked() { if onLine { say("\n"); onLine = false } }

    /// Redraws the bar line (terminal only).
    private func draw(_ text: String) {
        say("\r\u{1B}[K" + text)
        onLine = true
    }

    /// `[#####.....]  42%  1.0 GiB / 2.4 GiB  35.2 MiB/s  1:10 left`
    static func bar(done: Int64, total: Int64, since: Date, unit: (Int64) -> String = { formatBytes(Int($0)) },
                    rateUnit: String = "/s") -> String {
        let fraction = total > 0 ? min(1, Double(done) / Double(total)) : 1
        let width = 30
        let filled = Int(fraction * Double(width))
        let seconds = max(Date().timeIntervalSince(since), 1e-3)
        let rate = Double(done) / seconds
        var text = "[\(String(repeating: "#", count: filled))\(String(repeating: ".", count: width - filled))] "
            + String(format: "%3d%%", Int(fraction * 100)) + "  \(unit(done)) / \(unit(total))"
        if seconds >= 0.5 && rate > 0 {
            text += "  \(unit(Int64(rate)))\(rateUnit)"
            if done < total { text += "  \(formatDuration(Double(total - done) / rate)) left" }
        }
        return text
    }

    // MARK: Download

    func handle(_ event: DownloadEvent) {
        lock.lock(); defer { lock.unlock() }
        switch event {
        case _ where quiet:
            return
        case let .listed(commit, files, bytes, cachedFiles, cachedBytes):
            downloadTotal = bytes
            downloadCached = cachedBytes
            downloadStarted = Date()
            let left = files - cachedFiles
            say("commit \(commit.prefix(12)): \(files) files, \(formatBytes(Int(bytes)))"
                + (cachedFiles > 0 ? ", \(cachedFiles) already in the cache" : "")
                + (left > 0 ? "; downloading \(left)" : "; nothing to download") + "\n")
        case let .started(path, _, offset):
            received[path] = offset
            if offset > 0 && !tty { say("  resuming \(path) at byte \(offset)\n") }
        case let .received(path, bytes):
            received[path, default: 0] += Int64(bytes)
            report()
        case let .retrying(path, attempt, reason):
            endLineLocked()
            say("  \(path): \(reason); retrying (try \(attempt))\n")
        case let .finished(path, size):
            received[path] = size
            report()
        }
    }

    private func report() {
        let done = downloadCached + received.values.reduce(0, +)
        if tty {
            let now = Date()
            guard done != lastDrawnBytes, now.timeIntervalSince(lastDraw) >= 0.1 || done >= downloadTotal else { return }
            lastDraw = now
            lastDrawnBytes = done
            draw("download " + Self.bar(done: done, total: downloadTotal, since: downloadStarted))
        } else if downloadTotal > 0 {
            let decile = Int(Double(done) / Double(downloadTotal) * 10)
            if decile > lastDecile {
                lastDecile = decile
                say("  download \(decile * 10)%  \(formatBytes(Int(done))) / \(formatBytes(Int(downloadTotal)))\n")
            }
        }
    }

    /// Closes the download's bar with one summary line.
    func finishDownload(_ snapshot: SnapshotResult) {
        lock.lock(); defer { lock.unlock() }
        endLineLocked()
        lastDecile = -1
        guard !quiet else { return }
        let seconds = Date().timeIntervalSince(downloadStarted)
        if snapshot.offline {
            say("using the cached snapshot \(snapshot.folder.path) (\(snapshot.files.count) files)\n")
        } else if snapshot.downloadedFiles > 0 {
            say("downloaded \(snapshot.downloadedFiles) files, \(formatBytes(Int(snapshot.downloadedBytes))) in "
                + "\(formatDuration(seconds)) into \(snapshot.folder.path)\n")
        } else {
            say("all \(snapshot.files.count) files were in the cache: \(snapshot.folder.path)\n")
        }
    }

    // MARK: Converter

    func handle(_ event: ConversionEvent) {
        lock.lock(); defer { lock.unlock() }
        switch event {
        case .warning(let w):
            endLineLocked(); say("warning: \(w)\n")
        case _ where quiet:
            return
        case .reading(let file):
            if tty { draw("reading \(file)") }
        case let .planned(tensors, bytes):
            endLineLocked()
            started = Date()
            lastDecile = -1
            say("writing \(tensors) tensors, \(formatBytes(bytes))\n")
        case let .hashing(bytes, totalBytes):
            step("hashing")
            if tty { draw("hashing sources " + Self.bar(done: Int64(bytes), total: Int64(totalBytes), since: stepStarted)) }
        case let .wrote(_, index, of, bytes, totalBytes):
            let fraction = totalBytes > 0 ? Double(bytes) / Double(totalBytes) : 1
            let large = totalBytes >= 64 << 20
            if tty && large {
                draw("writing " + Self.bar(done: Int64(bytes), total: Int64(totalBytes), since: started) + "  \(index)/\(of) tensors")
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
            step("verifying")
            if tty {
                draw("verifying " + Self.bar(done: Int64(index), total: Int64(of), since: stepStarted,
                                             unit: { "\($0)" }, rateUnit: " tensors/s"))
            }
            if index == of { endLineLocked(); say("verified \(of) tensors against their sources\n") }
        }
    }

    /// Starts the clock of a converter step the first time one of its events arrives.
    private func step(_ name: String) {
        if stepName != name { stepName = name; stepStarted = Date() }
    }
}

/// `m:ss` or `h:mm:ss`.
func formatDuration(_ seconds: Double) -> String {
    guard seconds.isFinite else { return "?" }
    let s = Int(seconds.rounded())
    return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
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
