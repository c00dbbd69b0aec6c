// `vani transcribe AUDIO... [--model FILE] [--language hi] [--decoder ctc|rnnt] [--format text|json|jsonl|srt|vtt]
//  [--segmentation vad|windows|off]`
// Long files show a progress bar on stderr when it is a terminal; jsonl, srt and vtt print each
// segment as soon as it is transcribed.

import ArgumentParser
import ASR
import Backend
import Foundation

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json, jsonl, srt, vtt
}

extension Segmentation: ExpressibleByArgument {}

extension DecoderKind: ExpressibleByArgument {}
extension ComputeDevice: ExpressibleByArgument {
    /// `cpu`, `cuda`, `cuda:N` or `auto`.
    public init?(argument: String) { self.init(parsing: argument) }
}

/// The help line of `--device` (transcribe, bench, serve).
let deviceHelp = ArgumentHelp(
    "Where the forward work runs: \(ComputeDevice.spellings) (auto: the GPU when one is usable, else the CPU; `vani devices` says what is usable).")
extension Precision: ExpressibleByArgument {}

/// The help line of `--precision` (transcribe, bench, serve).
let precisionHelp = ArgumentHelp(
    "Precision of the encoder's weight products: fp32 (exact), bf16 or int8 on the CPU; fp32, tf32 or bf16 on CUDA (default: as the file stores them, fp32 for a converted release).")

/// The language and decoder of a transcription (`transcribe` and `stream`).
struct SpeechOptions: ParsableArguments {
    @Option(name: .shortAndLong, help: "Language code (hi, ta, bn, …).")
    var language: String = "hi"

    @Option(name: .shortAndLong, help: "Decoder: ctc or rnnt.")
    var decoder: DecoderKind = .ctc
}

/// Options shared by the commands that load a model.
struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: "Weights file (default: $VANI_MODEL, else the bundled Weights/default.safetensors).")
    var model: String?

    @Option(name: [.customLong("threads"), .customLong("blas-threads")],
            help: "Threads per forward pass on Vani's pool (0 = every core; --blas-threads is the old name).")
    var threads: Int = 0

    @Option(name: .long, help: deviceHelp)
    var device: ComputeDevice = .auto

    @Option(name: .long, help: precisionHelp)
    var precision: Precision?

    @Option(name: .long, help: "Longest audio accepted, in seconds (audio over 30 s is cut at pauses; see --segmentation).")
    var maxSeconds: Double = 3600

    func load() throws -> Recognizer {
        let url = model.map { URL(fileURLWithPath: $0) } ?? Recognizer.defaultModelURL()
        do {
            let recognizer = try Recognizer(modelURL: url, options: RecognizerOptions(
                maxAudioSeconds: maxSeconds, threads: threads, device: device, precision: precision))
            if let note = recognizer.precisionNote { FileHandle.standardError.write(Data("vani: \(note)\n".utf8)) }
            // `auto` on a machine without a driver is the ordinary CPU case and says nothing; a
            // driver that cannot be used is news.
            if let note = recognizer.deviceNote, CUDAProbe.shared.unusable?.kind != .noDriver {
                FileHandle.standardError.write(Data("vani: \(note)\n".utf8))
            }
            return recognizer
        } catch {
            throw CLIError(error.description)
        }
    }
}

/// An error printed as one line, without ArgumentParser's usage text.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

struct TranscribeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transcribe",
        abstract: "Transcribe audio files (WAV, FLAC, OGG/Vorbis, Opus, MP3, WebM, M4A/AAC, AMR/3GP, CAF, WMA; any rate, any channels).")

    @Argument(help: "Audio files.")
    var files: [String]

    @OptionGroup var modelOptions: ModelOptions

    @OptionGroup var speech: SpeechOptions

    @Option(name: .shortAndLong, help: "Output: text, json (one object per file), jsonl (one object per segment, printed as each finishes), srt or vtt (cues printed as each segment finishes).")
    var format: OutputFormat = .text

    @Option(name: .long, help: "How audio is cut: vad (at pauses; the default above 30 s), windows (fixed 20 s windows), off (one pass, at most about 400 s).")
    var segmentation: Segmentation?

    func run() throws {
        let recognizer = try modelOptions.load()
        // The language is resolved once, before any file is read.
        let language: Language
        do { language = try recognizer.language(speech.language) } catch { throw CLIError(error.description) }
        var failures = 0
        for file in files {
            let transcript: Transcript
            do {
                guard let data = FileManager.default.contents(atPath: file) else {
                    throw CLIError("cannot read \(file): check the path")
                }
                let output = SegmentOutput(format: format, file: file, many: files.count > 1,
                                           progress: isatty(STDERR_FILENO) != 0)
                transcript = try recognizer.transcribe(audio: data, language: language, decoder: speech.decoder,
                                                       segmentation: segmentation, onSegment: output.segmentFinished)
                output.finish()
            } catch {
                failures += 1
                FileHandle.standardError.write(Data("vani: \(file): \(error)\n".utf8))
                continue
            }
            if format == .text || format == .json {
                print(render(transcript, file: file, many: files.count > 1), terminator: "")
            }
        }
        if failures > 0 { throw ExitCode(1) }
    }

    private func render(_ t: Transcript, file: String, many: Bool) -> String {
        switch format {
        case .text:
            return (many ? "\(file): " : "") + t.text + "\n"
        case .json, .jsonl:
            return t.jsonLine(file: file) + "\n"
        case .srt:
            return (many ? "# \(file)\n" : "") + SubtitleFormatter().srt(t)
        case .vtt:
            return SubtitleFormatter().vtt(t)
        }
    }
}

/// What `vani transcribe` does as each segment of a file finishes: a progress bar on stderr
/// (only when stderr is a terminal and the file has more than one segment), and the segment
/// itself on stdout for the streaming formats (jsonl, srt, vtt).
final class SegmentOutput: @unchecked Sendable {
    let format: OutputFormat
    let file: String
    let many: Bool
    let progress: Bool
    private let lock = NSLock()
    private var cues = 0
    private var drewBar = false

    init(format: OutputFormat, file: String, many: Bool, progress: Bool) {
        self.format = format; self.file = file; self.many = many; self.progress = progress
    }

    /// Called in segment order by the recognizer.
    @Sendable func segmentFinished(_ update: SegmentUpdate) {
        lock.lock(); defer { lock.unlock() }
        if progress && update.count > 1 { clearBar() }
        switch format {
        case .jsonl:
            standardOutput(jsonLine(update) + "\n")
        case .srt, .vtt:
            if update.index == 0 {
                if format == .vtt { standardOutput("WEBVTT\n\n") } else if many { standardOutput("# \(file)\n") }
            }
            let transcript = Transcript(text: update.text, language: "", decoder: .ctc, duration: update.end,
                                        confidence: 0, tokens: update.tokens)
            for cue in SubtitleFormatter().cues(for: transcript) {
                cues += 1
                let separator: Character = format == .srt ? "," : "."
                let times = "\(SubtitleFormatter.timestamp(cue.start, separator: separator)) --> \(SubtitleFormatter.timestamp(cue.end, separator: separator))"
                standardOutput(format == .srt ? "\(cues)\n\(times)\n\(cue.text)\n\n" : "\(times)\n\(cue.text)\n\n")
            }
        case .text, .json:
            break
        }
        if progress && update.count > 1 { drawBar(done: update.index + 1, of: update.count, seconds: update.end) }
    }

    /// Clears the bar once the file is done.
    func finish() {
        lock.lock(); defer { lock.unlock() }
        clearBar()
    }

    private func drawBar(done: Int, of count: Int, seconds: Double) {
        let width = 30, filled = width * done / count
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let time = SubtitleFormatter.timestamp(seconds, separator: ".").prefix(8)
        FileHandle.standardError.write(Data("\r[\(bar)] \(done)/\(count) segments  \(time)  \(file)".utf8))
        drewBar = true
    }

    private func clearBar() {
        guard drewBar else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[2K".utf8))
        drewBar = false
    }

    private func jsonLine(_ update: SegmentUpdate) -> String {
        struct Line: Encodable {
            let file: String, segment: Int, segments: Int, start: Double, end: Double, text: String
        }
        func millis(_ seconds: Double) -> Double { (seconds * 1000).rounded() / 1000 }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let line = Line(file: file, segment: update.index, segments: update.count, start: millis(update.start),
                        end: millis(update.end), text: update.text)
        return (try? encoder.encode(line)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}

/// Writes to stdout at once (unbuffered), so streamed lines appear as segments finish.
func standardOutput(_ text: String) {
    FileHandle.standardOutput.write(Data(text.utf8))
}
