// Bad input gives a typed error with a message that says what to do; never a trap or a hang.

import Audio
import Foundation
import Testing
import VaniTestSupport

@Suite struct ErrorTests {
    /// Runs `decode` and returns the error it throws (fails the test if it succeeds).
    func decodeError(_ data: Data, sourceLocation: SourceLocation = #_sourceLocation) -> AudioError? {
        do {
            let d = try AudioDecoder.decode(data)
            Issue.record("decoded \(d.samples.count) samples (\(d.format)) instead of failing",
                         sourceLocation: sourceLocation)
            return nil
        } catch {
            print("[error] \(error)")
            #expect(error.description.hasSuffix("."), "message must end with what to do: \(error)",
                    sourceLocation: sourceLocation)
            return error
        }
    }

    @Test func empty() {
        #expect(decodeError(Data()) == .empty)
    }

    @Test func notAudio() {
        // Text is named as text (issue 18, kind 14).
        #expect(decodeError(Data("hello, this is plain text, not audio at all".utf8))
            == .textNotAudio(preview: "hello, this is plain text, not audio at all"))
        var rng = SplitMix64(seed: 7)
        let noise = Data((0..<4096).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
        guard case .notAudio = decodeError(noise) else { Issue.record("expected notAudio for noise"); return }
        guard case .notAudio = decodeError(Data([0xC3])) else { Issue.record("one byte"); return }
    }

    @Test func truncatedWAV() throws {
        let whole = WAVBuilder.pcm16(tone16(8000)).data
        // Cut inside the samples: the data chunk promises more than there is. What is there is
        // decoded, with a warning (issue 18, kind 15).
        let half = try AudioDecoder.decode(whole.prefix(whole.count / 2))
        #expect(half.samples.count == (whole.count / 2 - 44) / 2)
        #expect(half.warnings.map(\.code) == ["truncated"], "\(half.warnings)")
        // Cut inside the header.
        for cut in [4, 11, 12, 20, 30, 43] {
            let e = decodeError(whole.prefix(cut))
            #expect(e != nil, "cut at \(cut)")
        }
    }

    /// Compressed files cut anywhere: decoded in part with a `truncated` warning, or refused when
    /// nothing decodable is left (these fixtures are 0.1–0.3 s: a cut often leaves only headers;
    /// TruncationTests cuts 1 s files).
    @Test func truncatedCompressed() throws {
        for file in ["flac_s16.flac", "ogg_vorbis.ogg", "opus_48k.opus", "mp3_44k.mp3"] {
            let whole = try Data(contentsOf: Fixtures.url("audio/\(file)"))
            for fraction in [0.02, 0.3, 0.7] {
                let cut = whole.prefix(Int(Double(whole.count) * fraction))
                do {
                    let d = try AudioDecoder.decode(cut)
                    print("[error] \(file) cut to \(cut.count) B decodes \(d.samples.count) samples: \(d.warnings)")
                    #expect(d.warnings.map(\.code).contains("truncated"), "\(file) at \(fraction): \(d.warnings)")
                } catch {
                    print("[error] \(file) cut to \(cut.count) B: \(error)")
                }
            }
        }
    }

    @Test func headerLies() {
        // Data chunk claims 100 MB more than present: the samples present, with a warning.
        var lie = WAVBuilder.pcm16(tone16(1600))
        lie.dataSizeOverride = 100_000_000
        let lied = try? AudioDecoder.decode(lie.data)
        #expect(lied?.samples.count == 1600 && lied?.warnings.map(\.code) == ["truncated"], "\(String(describing: lied))")
        // Streaming writers leave 0 or 0xFFFFFFFF when the length is unknown: accepted.
        for placeholder: UInt32 in [0, 0xFFFF_FFFF] {
            var stream = WAVBuilder.pcm16(tone16(1600))
            stream.dataSizeOverride = placeholder
            stream.riffSizeOverride = placeholder
            do {
                let d = try AudioDecoder.decode(stream.data)
                #expect(d.samples.count == 1600, "placeholder \(placeholder): \(d.samples.count)")
            } catch {
                Issue.record("placeholder size \(placeholder) refused: \(error)")
            }
        }
        // RIFF size lies (bigger and smaller than the file): libsndfile trusts the chunks.
        for riff: UInt32 in [4, 0x7FFF_0000] {
            var b = WAVBuilder.pcm16(tone16(1600))
            b.riffSizeOverride = riff
            if let d = try? AudioDecoder.decode(b.data) { #expect(d.samples.count == 1600) }
        }
        // Block align that does not match channels × bytes.
        var odd = WAVBuilder.pcm16(tone16(1600))
        odd.bitsPerSample = 13
        _ = try? AudioDecoder.decode(odd.data)
    }

    @Test func zeroChannels() {
        var b = WAVBuilder.pcm16(tone16(1600))
        b.channels = 0
        let e = decodeError(b.data)
        #expect(e == .noChannels || { if case .malformed = e { return true }; return false }(),
                "\(String(describing: e))")
    }

    @Test func absurdChannelCount() {
        var b = WAVBuilder.pcm16(tone16(1600))
        b.channels = 60000
        #expect(decodeError(b.data) != nil)
    }

    @Test(arguments: [UInt32(0), 1, 999, 768_001, 1_000_000_000, 0xFFFF_FFFF])
    func absurdSampleRate(_ rate: UInt32) {
        var b = WAVBuilder.pcm16(tone16(1600))
        b.sampleRate = rate
        let e = decodeError(b.data)
        switch e {
        case .badSampleRate, .malformed: break
        default: Issue.record("rate \(rate): \(String(describing: e))")
        }
    }

    @Test func nonFiniteSamples() {
        for bad in [Float.nan, .infinity, -.infinity] {
            var samples = [Float](repeating: 0.1, count: 1600)
            samples[1234] = bad
            #expect(decodeError(WAVBuilder.float32(samples).data) == .nonFiniteSamples(index: 1234))
        }
    }

    @Test func absurdMagnitude() {
        var samples = [Float](repeating: 0.1, count: 1600)
        samples[99] = 1e30
        #expect(decodeError(WAVBuilder.float32(samples).data) == .outOfRange(index: 99, value: 1e30))
        samples[99] = 1.5  // a float export that clipped a little is fine
        #expect((try? AudioDecoder.decode(WAVBuilder.float32(samples).data)) != nil)
    }

    @Test func noSamples() {
        #expect(decodeError(WAVBuilder.pcm16([]).data) == .noSamples)
        // As Python's `wave` and sox write an empty recording: a data chunk of size 0, nothing after.
        var streamed = WAVBuilder.pcm16([])
        streamed.dataSizeOverride = 0
        #expect(decodeError(streamed.data) == .noSamples)
        #expect(AudioError.noSamples.description.contains("no samples"))
    }

    @Test func tooShortAndTooLong() throws {
        let short = WAVBuilder.pcm16(tone16(399)).data
        #expect(throws: AudioError.tooShort(samples: 399, minimum: 400)) {
            try AudioDecoder.load16kMono(short)
        }
        #expect(try AudioDecoder.load16kMono(WAVBuilder.pcm16(tone16(400)).data).count == 400)
        // 399 samples at 8 kHz → 798 at 16 kHz: long enough. 150 at 8 kHz → 300: too short.
        let short8k = WAVBuilder.pcm16(tone16(150, rate: 8000), rate: 8000).data
        #expect(throws: AudioError.tooShort(samples: 300, minimum: 400)) {
            try AudioDecoder.load16kMono(short8k)
        }
        let twoSeconds = WAVBuilder.pcm16(tone16(32000)).data
        #expect(throws: AudioError.tooLong(seconds: 2, limit: 1.5)) {
            try AudioDecoder.load16kMono(twoSeconds, maxSeconds: 1.5)
        }
        #expect(try AudioDecoder.load16kMono(twoSeconds, maxSeconds: 2).count == 32000)
    }

    @Test func tooLongStopsEarly() throws {
        // 60 s of audio against a 1 s limit: refused after about 1 s has been decoded; the
        // message gives the header's length.
        let long = WAVBuilder.pcm16([Int16](repeating: 100, count: 16000 * 60)).data
        do {
            _ = try AudioDecoder.load16kMono(long, maxSeconds: 1)
            Issue.record("accepted 60 s with a 1 s limit")
        } catch {
            guard case .tooLong(let seconds, let limit) = error else { Issue.record("\(error)"); return }
            #expect(seconds == 60 && limit == 1, "\(error)")
        }
    }

    @Test func decodeFileMissing() {
        #expect(throws: AudioError.self) {
            try AudioDecoder.decodeFile(URL(fileURLWithPath: "/nonexistent/file.wav"))
        }
    }

    @Test func resamplerRejectsBadRates() {
        #expect(throws: AudioError.badSampleRate(0)) { try Resampler.resample([0, 1], from: 0, to: 16000) }
        #expect(throws: AudioError.badSampleRate(1_000_000_000)) {
            try Resampler.resample([0, 1], from: 16000, to: 1_000_000_000)
        }
    }

    @Test func everyMessageSaysWhatToDo() {
        let all: [AudioError] = [
            .empty, .notAudio(detail: "x"), .textNotAudio(preview: "clip.wav"), .malformed(detail: "x"), .unsupported(detail: "x"),
            .truncated(expectedFrames: 2, decodedFrames: 1), .decodeFailed(detail: "x"), .noChannels,
            .tooManyChannels(999), .badSampleRate(0), .nonFiniteSamples(index: 3), .outOfRange(index: 1, value: 1e9), .noSamples,
            .tooShort(samples: 1, minimum: 400), .tooLong(seconds: 100, limit: 30),
            .resampleFailed(detail: "x"),
        ]
        #expect(Set(all.map(\.code)).count == all.count, "codes must be distinct")
        for e in all {
            #expect(e.description.hasSuffix("."), "\(e)")
            #expect(e.description.count > 30, "\(e)")
        }
    }
}

/// A small deterministic generator (SplitMix64) so fuzz and noise inputs repeat run to run.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
