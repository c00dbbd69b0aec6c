// `vani transcribe AUDIO... [--model FILE] [--language hi] [--decoder ctc|rnnt] [--format text|json|srt|vtt]`

import ArgumentParser
import ASR
import Backend
import Foundation

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json, srt, vtt
}

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

    @Option(name: .long, help: "Longest audio accepted, in seconds (audio over 30 s runs in overlapping 20 s windows).")
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

    @Option(name: .shortAndLong, help: "Language code (hi, ta, bn, …).")
    var language: String = "hi"

    @Option(name: .shortAndLong, help: "Decoder: ctc or rnnt.")
    var decoder: DecoderKind = .ctc

    @Option(name: .shortAndLong, help: "Output: text, json (one object per line), srt or vtt.")
    var format: OutputFormat = .text

    func run() throws {
        let recognizer = try modelOptions.load()
        // The language is resolved once, before any file is read.
        let language: Language
        do { language = try recognizer.language(self.language) } catch { throw CLIError(error.description) }
        var failures = 0
        for file in files {
            let transcript: Transcript
            do {
                guard let data = FileManager.default.contents(atPath: file) else {
                    throw CLIError("cannot read \(file): check the path")
                }
                transcript = try recognizer.transcribe(audio: data, language: language, decoder: decoder)
            } catch {
                failures += 1
                FileHandle.standardError.write(Data("vani: \(file): \(error)\n".utf8))
                continue
            }
            print(render(transcript, file: file, many: files.count > 1), terminator: "")
        }
        if failures > 0 { throw ExitCode(1) }
    }

    private func render(_ t: Transcript, file: String, many: Bool) -> String {
        switch format {
        case .text:
            return (many ? "\(file): " : "") + t.text + "\n"
        case .json:
            return t.jsonLine(file: file) + "\n"
        case .srt:
            return (many ? "# \(file)\n" : "") + SubtitleFormatter().srt(t)
        case .vtt:
            return SubtitleFormatter().vtt(t)
        }
    }
}
