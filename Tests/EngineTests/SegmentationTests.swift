// Segmentation of long audio (Sources/ASR/Segmentation.swift, docs/VAD.md): the plan of pieces
// for speech regions, `off` refused past the positional table, silence giving empty text, the
// `windows` mode unchanged, segments reported in order, and live transcription's completed
// transcript equal to the offline transcription of the utterance's samples.

@testable import ASR
import Foundation
import Testing
import VaniTestSupport
import VoiceActivity

@Suite("Segmentation", .serialized)
struct SegmentationTests {
    static let recognizer: Recognizer? = try? Recognizer(
        modelURL: Fixtures.root.appendingPathComponent("Weights/default.safetensors"), options: RecognizerOptions(threads: 2))

    /// The events of `live` fed 0.5 s of silence, `speech`, then 1 s of silence, 0.1 s at a time.
    static func feed(_ live: LiveTranscriber, _ speech: [Float]) -> [LiveEvent] {
        let stream = [Float](repeating: 0, count: 8000) + speech + [Float](repeating: 0, count: 16000)
        var events: [LiveEvent] = []
        for start in stride(from: 0, to: stream.count, by: 1600) {
            events += live.append(Array(stream[start..<min(stream.count, start + 1600)]))
        }
        return events
    }

    static func sample(_ language: String) throws -> [Float] {
        try AudioDecoderShim.samples(Fixtures.root.appendingPathComponent("Samples/\(language)-sample.wav"))
    }

    @Test("regions become segments of at most maxSegment, joined across short pauses, split at long ones")
    func planFromRegions() {
        var policy = SegmentationPolicy()
        policy.joinGap = 1.0                        // joining on (the default joins nothing)
        let regions: [Range<Double>] = [1..<4, 4.5..<9, 9.8..<15, 15.5..<19, 22..<25, 30..<75]
        let pieces = policy.pieces(regions: regions, count: 80 * 16000, rate: 16000)
        // 1–15 joined (gaps 0.5 s and 0.8 s, span 14 s); 15.5–19 would make 18 s: joined too;
        // 22–25 after a 3 s pause alone; 30–75 (45 s of speech without a pause) in windows.
        #expect(pieces[0].samples == 16000..<(19 * 16000))
        #expect(pieces[1].samples == (22 * 16000)..<(25 * 16000))
        let forced = pieces.dropFirst(2)
        #expect(forced.count >= 3)
        #expect(forced.allSatisfy { $0.samples.count <= 20 * 16000 })
        #expect(forced.first!.samples.lowerBound == 30 * 16000 && forced.last!.samples.upperBound == 75 * 16000)
        // Kept spans of the forced windows tile the whole region, without gaps or overlaps.
        #expect(forced.first!.keep.lowerBound == -.infinity && forced.last!.keep.upperBound == .infinity)
        for (a, b) in zip(forced.dropLast(), forced.dropFirst()) { #expect(a.keep.upperBound == b.keep.lowerBound) }
        #expect(pieces.prefix(2).allSatisfy { $0.keep == -Double.infinity..<Double.infinity })
    }

    @Test("live: settings out of range (negative, NaN, huge) never trap; the utterance cap holds without turn detection")
    func liveSettingsAreClamped() throws {
        let recognizer = try #require(Self.recognizer)
        let speech = try Self.sample("hi")
        var bad = LiveSettings()
        bad.silenceDuration = -1; bad.prefixPadding = 1e300; bad.trailingSilence = .nan; bad.redecodeEvery = -5
        var noTurns = LiveSettings()
        noTurns.turnDetection = false
        noTurns.maxUtterance = 2
        for settings in [bad, noTurns] {
            let live = try LiveTranscriber(recognizer: recognizer, language: recognizer.language("hi"), settings: settings)
            var events = Self.feed(live, speech)
            events += live.commit()
            #expect(events.contains { if case .completed = $0 { true } else { false } }, "\(events)")
            if !settings.turnDetection {
                // 2 s cap: the utterance never grows past it.
                #expect(live.completedCount >= 2, "utterances: \(live.completedCount)")
            }
        }
    }

    @Test("hysteresis: short dips do not end speech, clicks are dropped, padding merges neighbours")
    func speechRegions() {
        var p = [Float](repeating: 0.01, count: 200)
        for i in 20..<60 { p[i] = 0.9 }
        p[35] = 0.2                                 // one 32 ms dip: not a pause
        for i in 100..<103 { p[i] = 0.9 }          // 96 ms click: dropped (< 250 ms)
        for i in 130..<170 { p[i] = 0.9 }
        let detection = SpeechDetection()
        let pad = detection.padding
        #expect(pad > 0 && pad < 0.5)
        let regions = detection.regions(p, duration: 200 * 0.032)
        #expect(regions.count == 2)
        #expect(abs(regions[0].lowerBound - (20 * 0.032 - pad)) < 1e-9)
        #expect(abs(regions[0].upperBound - (60 * 0.032 + pad)) < 1e-9)
        #expect(abs(regions[1].lowerBound - (130 * 0.032 - pad)) < 1e-9)
        // Padding wide enough to bridge the 70-chunk gap joins the two regions.
        var wide = SpeechDetection()
        wide.padding = 1.2
        #expect(wide.regions(p, duration: 200 * 0.032).count == 1)
    }

    @Test("off is refused beyond the positional table with a clear error; the limit is about 400 s for the release")
    func offTooLong() throws {
        let recognizer = try #require(Self.recognizer)
        let limit = recognizer.onePassLimit
        #expect(limit.isFinite && limit > 30)
        let samples = [Float](repeating: 0, count: Int((limit + 1) * 16000))
        #expect(throws: RecognizerError.segmentation(.tooLongForOnePass(seconds: limit + 1, limit: limit))) {
            _ = try recognizer.transcribe(samples: samples, language: recognizer.language("hi"), segmentation: .off)
        }
        #expect(RecognizerError.segmentation(.tooLongForOnePass(seconds: 500, limit: 399.92)).description.contains("use segmentation 'vad'"))
    }

    @Test("audio without speech gives empty text with vad, whatever its length")
    func silenceIsEmpty() throws {
        let recognizer = try #require(Self.recognizer)
        var noise = [Float](repeating: 0, count: 16000 * 45)
        var seed: UInt64 = 17
        for i in noise.indices {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            noise[i] = Float(Int64(bitPattern: seed >> 11) % 1000) / 1000 * 0.002
        }
        let transcript = try recognizer.transcribe(samples: noise, language: recognizer.language("hi"), segmentation: .vad)
        #expect(transcript.text.isEmpty)
        #expect(transcript.tokens.isEmpty)
    }

    @Test("long audio: vad is the default above 30 s; segments come in order with times on the whole file's axis")
    func segmentsInOrder() throws {
        let recognizer = try #require(Self.recognizer)
        let speech = try Self.sample("hi")
        let gap = [Float](repeating: 0, count: 16000 * 2)
        var samples = gap
        for _ in 0..<8 { samples += speech + gap }
        let updates = UpdateLog()
        let vad = try recognizer.transcribe(samples: samples, language: recognizer.language("hi"), segmentation: nil,
                                            onSegment: { updates.append($0) })
        let single = try recognizer.transcribe(samples: speech, language: "hi").text
        #expect(vad.text == Array(repeating: single, count: 8).joined(separator: " "))
        let seen = updates.all
        #expect(seen.map(\.index) == Array(0..<seen.count))
        #expect(seen.count >= 3)
        #expect(zip(seen.dropLast(), seen.dropFirst()).allSatisfy { $0.end <= $1.start })
        #expect(seen.map(\.text).joined(separator: " ") == vad.text)
        let windows = try recognizer.transcribe(samples: samples, language: recognizer.language("hi"), segmentation: .windows)
        #expect(windows.duration == vad.duration)
        #expect(!windows.text.isEmpty)
    }

    @Test("threads split segments across workers with the same text as one worker")
    func parallelEqualsSerial() throws {
        let url = Fixtures.root.appendingPathComponent("Weights/default.safetensors")
        let one = try Recognizer(modelURL: url, options: RecognizerOptions(threads: 1))
        let two = try Recognizer(modelURL: url, options: RecognizerOptions(threads: 2))
        let speech = try Self.sample("ta")
        let gap = [Float](repeating: 0, count: 16000)
        var samples = gap
        for _ in 0..<6 { samples += speech + gap }
        let a = try one.transcribe(samples: samples, language: one.language("ta"), segmentation: .vad)
        let b = try two.transcribe(samples: samples, language: two.language("ta"), segmentation: .vad)
        #expect(a == b)
    }

    @Test("live: the completed transcript is the offline transcription of the utterance's samples")
    func liveCompletedEqualsOffline() throws {
        let recognizer = try #require(Self.recognizer)
        for language in ["hi", "ta", "bn"] {
            let speech = try Self.sample(language)
            let live = try LiveTranscriber(recognizer: recognizer, language: recognizer.language(language))
            let events = Self.feed(live, speech)
            guard case .completed(_, let transcript, let contradicted)? = events.last else {
                Issue.record("\(language): no completed event in \(events)")
                continue
            }
            let offline = try recognizer.transcribe(samples: live.lastUtterance, language: recognizer.language(language),
                                                    segmentation: .off).text
            #expect(transcript == offline)
            #expect(transcript == (try recognizer.transcribe(samples: speech, language: language).text))
            let deltas = events.compactMap { if case .delta(_, let text) = $0 { text } else { nil } }.joined()
            #expect(!contradicted, "\(language): deltas '\(deltas)' vs '\(transcript)'")
            #expect(events.contains { if case .speechStarted = $0 { true } else { false } })
        }
    }
}

final class UpdateLog: @unchecked Sendable {
    private let lock = NSLock()
    private var updates: [SegmentUpdate] = []
    func append(_ update: SegmentUpdate) { lock.lock(); updates.append(update); lock.unlock() }
    var all: [SegmentUpdate] { lock.lock(); defer { lock.unlock() }; return updates }
}

/// `vani stream` as a user runs it (the binary `swift build --build-tests` builds beside the tests).
@Suite("vani stream")
struct StreamCommandTests {
    @Test("an utterance still open at the end of the input ends at the input's end, not at 0")
    func finalLineOfAnUncommittedUtterance() throws {
        let vani = Fixtures.root.appendingPathComponent(".build/debug/vani")
        try #require(FileManager.default.isExecutableFile(atPath: vani.path), "run `swift build --build-tests` first")
        let sample = Fixtures.root.appendingPathComponent("Samples/hi-sample.wav")
        let duration = Double(try AudioDecoderShim.samples(sample).count) / 16000
        let process = Process()
        process.executableURL = vani
        process.arguments = ["stream", "--fast", "--threads", "2", "--language", "ta", sample.path]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        // The final line: `[  start →    end] text`.
        let last = try #require(output.split(separator: "\n").last { $0.hasPrefix("[") }, "no final line in \(output)")
        let times = last.dropFirst().prefix { $0 != "]" }.split(separator: "→").compactMap {
            Double($0.trimmingCharacters(in: .whitespaces))
        }
        try #require(times.count == 2, "\(last)")
        #expect(times[1] > times[0], "\(last)")
        #expect(abs(times[1] - duration) < 0.05, "\(last): the input is \(duration) s")
    }
}
