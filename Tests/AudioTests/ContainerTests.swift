// What browsers and phones upload (issue 18, kinds 12, 15, 16): every container decodes, through
// libsndfile or FFmpeg, to the speech that was encoded; errors name the container and codec
// found; a file cut short decodes as far as it goes with a `truncated` warning, whatever its
// container; the libraries' messages reach swift-log, never stderr directly.
// Fixtures: Tests/Fixtures/audio/containers/make.sh (from 1 s of Samples/hi-sample.wav).

@testable import Audio
import Foundation
import Logging
import Testing
import VaniTestSupport

/// A container fixture and how close its decoding must come to the source.
struct ContainerCase: CustomStringConvertible, Sendable {
    var file: String
    var rate: Int
    /// Least SNR (dB) against the source at the best alignment, after both are resampled to 16 kHz.
    var minSNR: Double
    /// Why this floor.
    var why: String
    var description: String { file }
}

let containerCases: [ContainerCase] = [
    .init(file: "webm_opus.webm", rate: 48000, minSNR: 6, why: "Opus at 32 kbit/s keeps the spectrum, not the waveform's phase"),
    .init(file: "m4a_aac.m4a", rate: 44100, minSNR: 10, why: "AAC-LC at 96 kbit/s, stereo from mono"),
    .init(file: "aac_adts.aac", rate: 22050, minSNR: 6, why: "AAC-LC at 48 kbit/s in raw ADTS frames"),
    .init(file: "amr_nb.amr", rate: 8000, minSNR: 1, why: "AMR-NB is a 4 kHz-band speech codec: the waveform barely survives"),
    .init(file: "amr_nb.3gp", rate: 8000, minSNR: 1, why: "the same AMR-NB stream in 3GP"),
    .init(file: "caf_alac.caf", rate: 16000, minSNR: 60, why: "ALAC is lossless (libsndfile reads it)"),
    .init(file: "caf_opus.caf", rate: 48000, minSNR: 6, why: "Opus at 32 kbit/s in CAF (FFmpeg reads it)"),
    .init(file: "wma_v2.wma", rate: 22050, minSNR: 6, why: "WMA v2 at 64 kbit/s"),
]

@Suite struct ContainerTests {
    static func data(_ file: String) throws -> Data { try Data(contentsOf: Fixtures.url("audio/containers/\(file)")) }

    @Test(arguments: containerCases)
    func decodesToTheSource(_ c: ContainerCase) throws {
        let decoded = try AudioDecoder.decode(Self.data(c.file))
        let source = try AudioDecoder.decode(Self.data("source.wav"))
        #expect(decoded.sampleRate == c.rate, "\(c.file): \(decoded.format)")
        #expect(abs(decoded.duration - 1) < 0.1, "\(c.file): \(decoded.duration) s")
        #expect(decoded.warnings.isEmpty, "\(c.file): \(decoded.warnings)")
        let a = try Resampler.resample(decoded.samples, from: decoded.sampleRate, to: 16000)
        let (lag, snr) = bestAlignedSNR(a, source.samples, maxLag: 1000)   // codec delays seen: ≤ 743 samples
        print("[container] \(c.file) (\(decoded.format)): \(decoded.samples.count) samples, lag \(lag), SNR \(String(format: "%.1f", snr)) dB")
        #expect(snr > c.minSNR, "\(c.file): SNR \(snr) dB at lag \(lag) — \(c.why)")
    }

    /// The browser upload of the shared inputs (MediaRecorder's WebM/Opus without a duration).
    @Test func browserWebM() throws {
        let decoded = try AudioDecoder.decode(Data(contentsOf: Fixtures.url("audio/inputs/b2-14a-browser.webm")))
        #expect(decoded.format.hasPrefix("matroska,webm"), "\(decoded.format)")
        #expect(decoded.sampleRate == 48000)
        #expect(abs(decoded.duration - 3.98) < 0.1, "\(decoded.duration)")
        #expect(decoded.warnings.isEmpty, "\(decoded.warnings)")
        #expect(decoded.samples.contains { abs($0) > 0.05 }, "speech, not silence")
    }

    @Test func noAudioStreamNamesContainerAndStreams() throws {
        let video = try Self.data("video_only.mp4")
        do {
            let d = try AudioDecoder.decode(video)
            Issue.record("decoded \(d.samples.count) samples from a video-only file")
        } catch {
            print("[container] video_only.mp4: \(error)")
            guard case .notAudio(let detail) = error else { Issue.record("expected notAudio, got \(error)"); return }
            #expect(detail.contains("mov,mp4"), "\(detail)")
            #expect(detail.contains("video mpeg4"), "\(detail)")
            #expect(error.description.contains("no audio stream"), "\(error)")
        }
    }

    /// A WebM whose header is intact and whose audio is garbage: the error (or the warning, when
    /// some packets survive) names the container and the codec it found.
    @Test func garbageAfterAHeaderNamesContainerAndCodec() throws {
        let whole = [UInt8](try Self.data("webm_opus.webm"))
        var rng = SplitMix64(seed: 18)
        // Keep the EBML header and the track entry (the first cluster starts after them).
        let header = whole.count / 8
        let garbage = whole[..<header] + (header..<whole.count).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        do {
            let d = try AudioDecoder.decode(Data(garbage))
            print("[container] garbage webm: \(d.samples.count) samples, \(d.warnings)")
            #expect(!d.warnings.isEmpty, "garbage audio must not decode silently")
            #expect(d.format.contains("matroska,webm"), "\(d.format)")
        } catch {
            print("[container] garbage webm: \(error)")
            #expect(error.description.contains("matroska,webm"), "\(error)")
        }
        // Garbage with no container at all: both libraries are named as not recognising it.
        let noise = Data((0..<4096).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
        do {
            _ = try AudioDecoder.decode(noise)
            Issue.record("noise decoded")
        } catch {
            guard case .notAudio = error else { Issue.record("noise: \(error)"); return }
        }
    }

    /// MP3 inside a WAV goes to FFmpeg too (libsndfile would use libmpg123, which writes to stderr).
    @Test func mp3InsideWAV() throws {
        let decoded = try AudioDecoder.decode(Self.data("mp3_in_wav.wav"))
        #expect(decoded.format.hasPrefix("wav: MP3"), "\(decoded.format)")
        // A WAV carries no gapless information: the encoder's delay and padding stay (≈ 0.08 s).
        #expect(abs(decoded.duration - 0.5) < 0.1, "\(decoded.duration)")
        #expect(decoded.warnings.isEmpty, "\(decoded.warnings)")
    }

    /// Packets in the middle that FFmpeg cannot decode are skipped and reported as `damaged`.
    @Test func damagedPacketsAreReported() throws {
        var bytes = [UInt8](try Data(contentsOf: Fixtures.url("audio/inputs/b2-18b-mp3-truncated.mp3")))
        var rng = SplitMix64(seed: 1)
        for i in 6000..<9000 { bytes[i] = UInt8(truncatingIfNeeded: rng.next()) }
        let decoded = try AudioDecoder.decode(Data(bytes))
        print("[container] damaged mp3: \(decoded.samples.count) samples, \(decoded.warnings)")
        #expect(decoded.warnings.map(\.code).contains("damaged"), "\(decoded.warnings)")
        #expect(decoded.warnings.map(\.code).contains("truncated"), "the file is cut as well: \(decoded.warnings)")
    }

    @Test func textIsNotAudio() {
        for text in ["/home/me/recording.wav", "clip.webm", "{\"audio\": \"...\"}"] {
            do {
                _ = try AudioDecoder.decode(Data(text.utf8))
                Issue.record("decoded text")
            } catch {
                #expect(error == .textNotAudio(preview: text), "\(error)")
                #expect(error.code == "text_not_audio")
                #expect(error.description.contains("not an audio file"), "\(error)")
            }
        }
    }
}

// MARK: - Truncation (kind 15)

@Suite struct TruncationTests {
    func warningCodes(_ data: Data, _ name: String) throws -> (DecodedAudio, [String]) {
        let decoded = try AudioDecoder.decode(data)
        print("[truncated] \(name): \(decoded.samples.count) samples (\(decoded.format)): \(decoded.warnings)")
        return (decoded, decoded.warnings.map(\.code))
    }

    /// The shared inputs: a WAV whose header says longer, an MP3 cut mid-stream. Both decode
    /// what they hold, with a `truncated` warning (the WAV was refused whole before, the MP3
    /// decoded silently in part).
    @Test func sharedInputs() throws {
        let wav = try Data(contentsOf: Fixtures.url("audio/inputs/b2-18a-wav-truncated-header-says-longer.wav"))
        let (w, wCodes) = try warningCodes(wav, "b2-18a")
        #expect(wCodes == ["truncated"])
        #expect(w.duration > 2.5, "\(w.duration) s: what the file holds")
        #expect(w.warnings.first?.message.contains("declares") == true, "\(w.warnings)")
        let mp3 = try Data(contentsOf: Fixtures.url("audio/inputs/b2-18b-mp3-truncated.mp3"))
        let (m, mCodes) = try warningCodes(mp3, "b2-18b")
        #expect(mCodes == ["truncated"])
        #expect(m.duration > 2, "\(m.duration) s")
    }

    /// Every container, cut to 60 %, decodes with a `truncated` warning; whole, with none.
    @Test(arguments: [
        "audio/wav_s16.wav", "audio/containers/flac_1s.flac", "audio/containers/vorbis_4s.ogg",
        "audio/containers/opus_4s.opus", "audio/mp3_44k.mp3", "audio/containers/webm_opus.webm",
        "audio/containers/m4a_aac.m4a", "audio/containers/aac_adts.aac", "audio/containers/amr_nb.amr",
        "audio/containers/amr_nb.3gp", "audio/containers/wma_v2.wma", "audio/inputs/b2-14a-browser.webm",
    ])
    func cutFilesWarnEverywhere(_ path: String) throws {
        let whole = try Data(contentsOf: Fixtures.url(path))
        let (full, fullCodes) = try warningCodes(whole, path)
        #expect(fullCodes.isEmpty, "\(path) whole: \(full.warnings)")
        let (cut, codes) = try warningCodes(whole.prefix(whole.count * 6 / 10), path + " at 60 %")
        #expect(codes.contains("truncated"), "\(path) cut: \(cut.warnings)")
        #expect(cut.samples.count < full.samples.count, "\(path): a cut file holds less")
        #expect(cut.samples.count > 0)
    }

    /// Containers whose index follows the audio (CAF's packet table, an MP4 written without
    /// faststart) cannot be read once cut: refused, naming the container and the missing index.
    @Test(arguments: ["caf_alac.caf", "caf_opus.caf", "aac_moov_last.m4a"])
    func cutBeforeTheIndexIsNamed(_ file: String) throws {
        let whole = try Data(contentsOf: Fixtures.url("audio/containers/\(file)"))
        #expect(throws: Never.self) { try AudioDecoder.decode(whole) }
        let cut = whole.prefix(whole.count * 6 / 10)
        do {
            let d = try AudioDecoder.decode(cut)
            Issue.record("\(file): decoded \(d.samples.count) samples without an index")
        } catch {
            print("[truncated] \(file) at 60 %: \(error)")
            guard case .malformed(let detail) = error else { Issue.record("\(file): \(error)"); return }
            #expect(detail.contains(file.hasSuffix(".caf") ? "'caf'" : "mov,mp4"), "\(detail)")
            #expect(detail.contains(file.hasSuffix(".caf") ? "pakt" : "moov"), "\(detail)")
        }
    }

    /// A WAV a few samples short of its header, at the model's input: decoded, warned.
    @Test func wavAFewSamplesShort() throws {
        let whole = WAVBuilder.pcm16(tone16(16000)).data
        let prepared = try AudioDecoder.prepare(whole.prefix(whole.count - 6), sampleRate: 16000)
        #expect(prepared.samples.count == 15997)
        #expect(prepared.warnings.map(\.code) == ["truncated"])
    }

    /// A header and nothing after it: nothing to decode, so still refused as truncated.
    @Test func headerOnlyIsRefused() {
        let whole = WAVBuilder.pcm16(tone16(1600)).data
        #expect(throws: AudioError.truncated(expectedFrames: 1600, decodedFrames: 0)) {
            try AudioDecoder.decode(whole.prefix(44))
        }
    }
}

// MARK: - Library messages (kind 16)

@Suite struct LibraryLogTests {
    /// FFmpeg's complaints about a damaged stream and the decoder's truncation warning go to the
    /// bound logger, with its metadata (the service's request id), not to stderr.
    @Test func ffmpegMessagesReachTheBoundLogger() throws {
        let capture = LogCapture()
        var logger = capture.logger()
        logger[metadataKey: "request_id"] = "req-16"
        let mp3 = try Data(contentsOf: Fixtures.url("audio/inputs/b2-18b-mp3-truncated.mp3"))
        let garbage = Data([UInt8](try Data(contentsOf: Fixtures.url("audio/mp3_44k.mp3"))).enumerated().map { i, b in
            i > 2000 && i % 7 == 0 ? b ^ 0x5A : b
        })
        try AudioLog.$logger.withValue(logger) {
            _ = try AudioDecoder.decode(mp3)
            _ = try? AudioDecoder.decode(garbage)
        }
        let lines = capture.lines
        for line in lines { print("[log] \(line)") }
        #expect(lines.allSatisfy { $0.metadata["request_id"] == "req-16" })
        #expect(lines.contains { $0.metadata["audio_warning"] == "truncated" }, "the truncation is logged")
        #expect(lines.contains { $0.metadata["library"] == "ffmpeg" }, "FFmpeg's messages are routed")
        #expect(lines.filter { $0.metadata["library"] != nil }.count <= AudioLog.maxLibraryLines + 2,
                "one decode writes a bounded number of library lines")
    }

    /// Other threads decoding at the same time keep their own loggers.
    @Test func concurrentDecodesKeepTheirLoggers() async throws {
        let mp3 = try Data(contentsOf: Fixtures.url("audio/inputs/b2-18b-mp3-truncated.mp3"))
        let captures = (0..<4).map { _ in LogCapture() }
        await withTaskGroup(of: Void.self) { group in
            for (i, capture) in captures.enumerated() {
                group.addTask {
                    var logger = capture.logger()
                    logger[metadataKey: "request_id"] = "req-\(i)"
                    AudioLog.$logger.withValue(logger) { _ = try? AudioDecoder.decode(mp3) }
                }
            }
        }
        for (i, capture) in captures.enumerated() {
            #expect(!capture.lines.isEmpty)
            #expect(capture.lines.allSatisfy { $0.metadata["request_id"] == "req-\(i)" })
        }
    }
}
