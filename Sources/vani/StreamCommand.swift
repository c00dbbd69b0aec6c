// `vani stream [FILE|-] [--rate 16000 --format s16le|f32le] [--language hi]`: live transcription
// of a WAV (or any audio file) or raw PCM, from a file or stdin, fed at real-time pace to the
// same `LiveTranscriber` the realtime WebSocket uses; prints partial lines (stable text so far)
// and final lines (the offline transcript of each utterance).

import ArgumentParser
import ASR
import Audio
import Foundation

enum PCMFormat: String, ExpressibleByArgument, CaseIterable {
    case s16le, f32le
}

struct StreamCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stream",
        abstract: "Live transcription of audio from a file or stdin, with partial and final lines.")

    @Argument(help: "Audio file, or - for stdin (default).")
    var input: String = "-"

    @OptionGroup var modelOptions: ModelOptions

    @OptionGroup var speech: SpeechOptions

    @Option(name: .long, help: "Raw PCM input at this sample rate (without it the input is an audio file such as WAV).")
    var rate: Int?

    @Option(name: .long, help: "Raw PCM sample format: s16le or f32le (with --rate).")
    var format: PCMFormat = .s16le

    @Flag(name: .long, help: "Feed a file as fast as it can be read instead of at real-time pace.")
    var fast = false

    @Option(name: .long, help: "Silence (ms) that ends an utterance.")
    var silenceMs: Int = 500

    func run() throws {
        let recognizer = try modelOptions.load()
        let live: LiveTranscriber
        do {
            var settings = LiveSettings()
            settings.silenceDuration = Double(silenceMs) / 1000
            live = try LiveTranscriber(recognizer: recognizer, language: recognizer.language(speech.language), decoder: speech.decoder,
                                       settings: settings)
        } catch { throw CLIError(error.description) }
        let handle: FileHandle
        if input == "-" { handle = .standardInput } else {
            guard let file = FileHandle(forReadingAtPath: input) else { throw CLIError("cannot read \(input): check the path") }
            handle = file
        }
        let printer = LinePrinter()
        let step = 1600                                    // 0.1 s at 16 kHz
        let started = Date()
        var fed = 0
        func feed(_ samples: [Float]) {
            var i = 0
            while i < samples.count {
                let piece = Array(samples[i..<min(samples.count, i + step)])
                i += piece.count
                fed += piece.count
                if !fast {
                    let due = Double(fed) / 16000 - Date().timeIntervalSince(started)
                    if due > 0 { Thread.sleep(forTimeInterval: due) }
                }
                printer.show(live.append(piece), streamTime: Double(fed) / 16000)
            }
        }
        if let rate {
            // Raw PCM: read as it comes (a live producer paces itself), resampled per read.
            let bytesPerSample = format == .s16le ? 2 : 4
            var carry = Data()
            while true {
                let data = handle.readData(ofLength: rate / 10 * bytesPerSample)
                if data.isEmpty { break }
                carry += data
                let usable = carry.count / bytesPerSample * bytesPerSample
                var samples = [Float](repeating: 0, count: usable / bytesPerSample)
                carry.prefix(usable).withUnsafeBytes { raw in
                    for k in samples.indices {
                        samples[k] = format == .s16le
                            ? Float(Int16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * k, as: Int16.self))) / 32768
                            : Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * k, as: UInt32.self)))
                    }
                }
                carry = Data(carry.dropFirst(usable))
                let resampled: [Float]
                do { resampled = try Resampler.resample(samples, from: rate, to: 16000) } catch {
                    throw CLIError(error.description)
                }
                feed(resampled)
            }
        } else {
            let data = handle.readDataToEndOfFile()
            let samples: [Float]
            do { samples = try AudioDecoder.load16kMono(data) } catch { throw CLIError("\(input): \(error)") }
            feed(samples)
        }
        if live.isInSpeech { printer.show(live.commit(), streamTime: Double(fed) / 16000) }
        if live.completedCount > 0 {
            FileHandle.standardError.write(Data("vani: \(live.completedCount) utterances, \(live.contradictions) final transcripts contradicted partial text\n".utf8))
        }
    }
}

/// Prints live events: `… text` for the stable text of the utterance in progress, then the
/// final line `[start → end] text` (`end`: where speech stopped, or the stream's time when the
/// utterance was committed without a stop, as at the end of the input).
final class LinePrinter {
    private var partial = ""
    private var start = 0.0, end: Double?

    /// Prints `events`; `streamTime` is the seconds of audio fed so far.
    func show(_ events: [LiveEvent], streamTime: Double) {
        for event in events {
            switch event {
            case .speechStarted(_, let at): start = at; end = nil; partial = ""
            case .speechStopped(_, let at): end = at
            case .delta(_, let text):
                partial += text
                standardOutput("… \(partial)\n")
            case .completed(_, let transcript, _):
                standardOutput(String(format: "[%7.2f → %7.2f] ", start, max(end ?? streamTime, start)) + transcript + "\n")
                partial = ""; end = nil
            }
        }
    }
}
