// Decoding from memory: libsndfile's virtual I/O first (WAV, FLAC, OGG/Vorbis, Opus, AIFF, CAF
// with PCM, ...), FFmpeg's libraries for what it does not read (WebM, MP4/M4A/AAC, AMR/3GP, WMA,
// ...) and for MPEG audio. No temporary file for HTTP uploads.

import CSndfile
import Foundation

/// Audio decoded to one mono channel at its original sample rate.
public struct DecodedAudio: Sendable {
    /// Mono samples in [-1, 1] (integer PCM is scaled by 1/2^(bits−1); float is passed through),
    /// the mean of all channels.
    public var samples: [Float]
    /// The file's sample rate in Hz (not resampled).
    public var sampleRate: Int
    /// How many channels the file had before they were averaged.
    public var channels: Int
    /// Container and encoding, e.g. `"wav: Signed 16 bit PCM"`, `"matroska,webm: Opus (Opus Interactive Audio Codec)"`.
    public var format: String
    /// Length in seconds: `samples.count / sampleRate`.
    public var duration: Double
    /// What was wrong with audio that was decoded all the same (a truncated file), in order.
    public var warnings: [AudioWarning]

    /// Decoded audio; `duration` follows from the samples and the rate.
    public init(samples: [Float], sampleRate: Int, channels: Int, format: String, warnings: [AudioWarning] = []) {
        self.samples = samples
        self.sampleRate = sampleRate
        self.channels = channels
        self.format = format
        self.duration = sampleRate > 0 ? Double(samples.count) / Double(sampleRate) : 0
        self.warnings = warnings
    }
}

/// Decodes audio files held in memory: WAV (PCM u8/16/24/32, float 32/64, extensible), FLAC,
/// OGG/Vorbis, Opus and the other formats of the system libsndfile; WebM/Matroska, MP4/M4A/AAC,
/// MP3, AMR, 3GP, CAF, WMA and the other formats of the system FFmpeg.
///
/// A file cut short is decoded as far as it goes, with an `AudioWarning` (`"truncated"`) in
/// `DecodedAudio.warnings`, whatever its container. Messages of the libraries go to `AudioLog`.
public enum AudioDecoder {
    /// Files declaring more channels than this are refused.
    public static let maxChannels = 256
    /// Float samples beyond ±this (60 dB over full scale) are refused as garbage.
    public static let maxMagnitude: Float = 1000

    /// Decodes `data` to mono at its original rate.
    ///
    /// - Throws: `AudioError` for empty, unrecognised, damaged, undecodable or unsupported input,
    ///   a bad channel count or sample rate, or NaN/Inf samples. Never traps on bad input.
    public static func decode(_ data: Data) throws(AudioError) -> DecodedAudio {
        try decode(data, maxSeconds: nil)
    }

    /// Decodes the file at `url` (read into memory, then as `decode(_:)`).
    ///
    /// - Throws: `AudioError.notAudio` when the file cannot be read, otherwise as `decode(_:)`.
    public static func decodeFile(_ url: URL) throws(AudioError) -> DecodedAudio {
        let data: Data
        do {
            data = try Data(contentsOf: url, options: .mappedIfSafe)
        } catch {
            throw .notAudio(detail: "cannot read \(url.path): \(error.localizedDescription)")
        }
        return try decode(data)
    }

    /// Decodes, stopping with `.tooLong` as soon as more than `maxSeconds` have been decoded
    /// (so a 3-hour upload is refused without decoding all of it). Warnings are logged to
    /// `AudioLog.logger` as well as returned.
    static func decode(_ data: Data, maxSeconds: Double?) throws(AudioError) -> DecodedAudio {
        guard !data.isEmpty else { throw .empty }
        let data = RIFF.patchedZeroDataSize(data) ?? data
        let decoded = try AudioLog.withBudget { () throws(AudioError) -> DecodedAudio in
            let result: Result<DecodedAudio, AudioError> = data.withUnsafeBytes { raw in
                do throws(AudioError) {
                    return .success(try decode(raw, maxSeconds: maxSeconds))
                } catch {
                    return .failure(error)
                }
            }
            return try result.get()
        }
        for warning in decoded.warnings { AudioLog.warning(warning, format: decoded.format) }
        return decoded
    }

    /// libsndfile first, FFmpeg when libsndfile cannot open the bytes; MPEG audio straight to
    /// FFmpeg (libsndfile decodes it through libmpg123, which writes to stderr).
    private static func decode(_ raw: UnsafeRawBufferPointer, maxSeconds: Double?) throws(AudioError) -> DecodedAudio {
        if Sniff.isMPEGAudio(raw) || RIFF.holdsMPEG(raw) {
            switch try FFmpegDecoder.decode(raw, maxSeconds: maxSeconds) {
            case .decoded(let audio): return audio
            case .unrecognised(let why):
                throw .notAudio(detail: "the bytes start like MPEG audio, but FFmpeg finds no stream (\(why))")
            }
        }
        let sndfileError: AudioError
        do throws(AudioError) {
            return try decodeWithSndfile(MemorySource(raw), maxSeconds: maxSeconds)
        } catch {
            switch error {
            // FFmpeg gets its turn on what libsndfile cannot open or read to the end: a cut
            // FLAC, Ogg or CAF is decoded as far as it goes there, with the same warning.
            case .notAudio, .unsupported, .malformed, .decodeFailed: sndfileError = error
            default: throw error   // decoded by libsndfile and refused on its merits
            }
        }
        // Text (a file name, a path, a form field) is said to be text, before FFmpeg's probe
        // takes it for a subtitle or playlist format.
        if case .notAudio = sndfileError, let text = Sniff.text(raw) { throw .textNotAudio(preview: text) }
        let outcome: FFmpegDecoder.Outcome
        do throws(AudioError) {
            outcome = try FFmpegDecoder.decode(raw, maxSeconds: maxSeconds)
        } catch {
            // Both libraries recognised the format and failed: say what each found.
            throw sndfileError.combined(with: error)
        }
        switch outcome {
        case .decoded(let audio): return audio
        case .unrecognised(let why):
            if case .notAudio(let detail) = sndfileError {
                throw .notAudio(detail: "libsndfile: \(detail); FFmpeg: \(why)")
            }
            throw sndfileError
        }
    }

// MARK: - Decoding

    private static func decodeWithSndfile(_ source: MemorySource, maxSeconds: Double?) throws(AudioError)
        -> DecodedAudio
    {
        var io = SF_VIRTUAL_IO(
            get_filelen: { MemorySource.from($0).length },
            seek: { offset, whence, user in MemorySource.from(user).seek(offset, whence) },
            read: { ptr, count, user in MemorySource.from(user).read(into: ptr, count: count) },
            write: { _, _, _ in 0 },
            tell: { MemorySource.from($0).position })
        var info = SF_INFO()
        let user = Unmanaged.passUnretained(source).toOpaque()
        guard let file = sf_open_virtual(&io, Int32(SFM_READ), &info, user) else {
            let code = sf_error(nil)
            let message = String(cString: sf_strerror(nil))
            switch Int(code) {
            case SF_ERR_UNRECOGNISED_FORMAT:
                throw .notAudio(detail: message)
            case SF_ERR_UNSUPPORTED_ENCODING:
                throw .unsupported(detail: message)
            default:
                if message.localizedCaseInsensitiveContains("channel") { throw .noChannels }
                throw .malformed(detail: message)
            }
        }
        defer { sf_close(file) }

        let channels = Int(info.channels)
        guard channels > 0 else { throw .noChannels }
        guard channels <= maxChannels else { throw .tooManyChannels(channels) }
        let rate = Int(info.samplerate)
        guard Resampler.supportedRates.contains(rate) else { throw .badSampleRate(rate) }
        let format = formatName(Int(info.format))

        // Frames libsndfile expects; SF_COUNT_MAX or nonsense means "unknown".
        let declared = Int(info.frames)
        let known = declared >= 0 && declared < Int(Int32.max) * 64
        let maxFrames = maxSeconds.map { Int(min(max($0 * Double(rate), 0), 1e15).rounded()) }

        // The output can never honestly be much larger than the input: 4096 samples per byte
        // covers the most compressed codec (Opus silence); past that a decoder is looping.
        let sampleCap = max(source.length, 1) * 4096

        var mono: [Float] = []
        // Reserve no more than the bytes could hold as 8-bit PCM: a lying header must not
        // make a 100-byte upload allocate gigabytes (the array still grows if a codec expands).
        if known, declared > 0 {
            mono.reserveCapacity(min(declared, maxFrames ?? declared, Int(source.length) / channels + 1))
        }
        let chunkFrames = 4096
        var interleaved = [Float](repeating: 0, count: chunkFrames * channels)
        var decodedSamples = 0
        let scale = 1 / Float(channels)
        while true {
            let got = interleaved.withUnsafeMutableBufferPointer {
                Int(sf_readf_float(file, $0.baseAddress, sf_count_t(chunkFrames)))
            }
            if got <= 0 { break }
            for i in 0..<(got * channels) where !(abs(interleaved[i]) <= maxMagnitude) {
                if !interleaved[i].isFinite { throw .nonFiniteSamples(index: decodedSamples + i) }
                throw .outOfRange(index: decodedSamples + i, value: interleaved[i])
            }
            decodedSamples += got * channels
            if channels == 1 {
                mono.append(contentsOf: interleaved[0..<got])
            } else {
                for f in 0..<got {
                    var sum: Float = 0
                    for c in 0..<channels { sum += interleaved[f * channels + c] }
                    mono.append(sum * scale)
                }
            }
            if let maxFrames, let maxSeconds, mono.count > maxFrames {
                // Report the whole length when the header knows it, else what was decoded.
                let frames = known && declared > mono.count ? declared : mono.count
                throw .tooLong(seconds: Double(frames) / Double(rate), limit: maxSeconds)
            }
            if decodedSamples > sampleCap {
                throw .decodeFailed(detail: "the decoder produced more samples than the data can hold")
            }
        }
        // An error part-way (a cut FLAC frame, a damaged page) ends the stream: what came before
        // it is kept, and said to be all there is.
        let code = sf_error(file)
        let libraryError = code != 0 ? String(cString: sf_strerror(file)) : nil
        guard !mono.isEmpty else {
            if let libraryError { throw .decodeFailed(detail: libraryError) }
            // A header promising audio with none after it is a cut, not an empty recording.
            if let promised = RIFF.promisedDataBytes(source.bytes), promised > 0 {
                throw .truncated(expectedFrames: promised / max(RIFF.bytesPerFrame(Int(info.format), channels: channels), 1),
                                 decodedFrames: 0)
            }
            throw .noSamples
        }
        var audio = DecodedAudio(samples: mono, sampleRate: rate, channels: channels, format: format)
        let container = format.split(separator: ":").first.map { String($0).uppercased() } ?? "audio"
        let seconds = audio.duration
        let major = Int(info.format) & SF_FORMAT_TYPEMASK
        var expectedFrames: Int?
        // Lossless formats state their length exactly; coming up short means missing bytes.
        if major == SF_FORMAT_FLAC, known, mono.count < declared { expectedFrames = declared }
        if let promised = RIFF.promisedDataBytes(source.bytes) {
            let bytesPerFrame = RIFF.bytesPerFrame(Int(info.format), channels: channels)
            if bytesPerFrame > 0, promised / bytesPerFrame > mono.count { expectedFrames = promised / bytesPerFrame }
        }
        if let expectedFrames {
            audio.warnings.append(.truncated(container: container, expectedSeconds: Double(expectedFrames) / Double(rate),
                                             decodedSeconds: seconds, detail: libraryError))
        } else if let libraryError {
            audio.warnings.append(.truncated(container: container, expectedSeconds: nil, decodedSeconds: seconds,
                                             detail: "decoding stopped: \(libraryError)"))
        } else if major == SF_FORMAT_OGG, let cut = Sniff.oggCut(source.bytes) {
            // Ogg states no length up front: a cut file ends inside a page or without the
            // end-of-stream page.
            audio.warnings.append(.truncated(container: "Ogg", expectedSeconds: nil, decodedSeconds: seconds, detail: cut))
        }
        return audio
    }

    /// `"<container>: <encoding>"` from libsndfile's own tables, e.g. `"flac: Signed 16 bit PCM"`,
    /// `"ogg: Opus"`, `"mp3: MPEG Layer III"`.
    private static func formatName(_ format: Int) -> String {
        func info(_ value: Int) -> SF_FORMAT_INFO? {
            var fi = SF_FORMAT_INFO()
            fi.format = Int32(truncatingIfNeeded: value)
            let ok = sf_command(nil, Int32(SFC_GET_FORMAT_INFO), &fi,
                                Int32(MemoryLayout<SF_FORMAT_INFO>.size)) == 0
            return ok ? fi : nil
        }
        let major = format & SF_FORMAT_TYPEMASK
        let sub = format & SF_FORMAT_SUBMASK
        var container = info(major)?.extension.map { String(cString: $0) } ?? String(major, radix: 16)
        switch container {
        case "oga": container = "ogg"
        case "m1a": container = "mp3"
        default: break
        }
        let encoding = info(sub)?.name.map { String(cString: $0) } ?? String(sub, radix: 16)
        return "\(container): \(encoding)"
    }
}

extension AudioError {
    /// libsndfile's error (`self`) after FFmpeg also failed with `other`: FFmpeg's alone when
    /// libsndfile did not recognise the bytes (it names the container and codec found), else
    /// libsndfile's case with both details.
    func combined(with other: AudioError) -> AudioError {
        func detail(_ e: AudioError) -> String? {
            switch e {
            case .malformed(let d), .unsupported(let d), .decodeFailed(let d), .notAudio(let d): return d
            default: return nil
            }
        }
        guard let mine = detail(self), let theirs = detail(other) else { return other }
        switch self {
        case .notAudio: return other
        case .malformed: return .malformed(detail: "libsndfile: \(mine); FFmpeg: \(theirs)")
        case .unsupported: return .unsupported(detail: "libsndfile: \(mine); FFmpeg: \(theirs)")
        case .decodeFailed: return .decodeFailed(detail: "libsndfile: \(mine); FFmpeg: \(theirs)")
        default: return other
        }
    }
}

// MARK: - Virtual I/O

/// The bytes libsndfile reads through its callbacks. Lives only inside `Data.withUnsafeBytes`.
private final class MemorySource {
    let bytes: UnsafeRawBufferPointer
    var offset = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    static func from(_ user: UnsafeMutableRawPointer?) -> MemorySource {
        Unmanaged<MemorySource>.fromOpaque(user!).takeUnretainedValue()
    }

    var length: sf_count_t { sf_count_t(bytes.count) }
    var position: sf_count_t { sf_count_t(offset) }

    func seek(_ delta: sf_count_t, _ whence: Int32) -> sf_count_t {
        let base: Int
        switch whence {
        case SEEK_SET: base = 0
        case SEEK_CUR: base = offset
        case SEEK_END: base = bytes.count
        default: return -1
        }
        let (target, overflow) = base.addingReportingOverflow(Int(delta))
        // Seeking past the end is allowed (reads there return 0), before the start is not.
        guard !overflow, target >= 0 else { return -1 }
        offset = target
        return sf_count_t(offset)
    }

    func read(into destination: UnsafeMutableRawPointer?, count: sf_count_t) -> sf_count_t {
        guard let destination, count > 0, offset < bytes.count else { return 0 }
        let n = min(Int(count), bytes.count - offset)
        destination.copyMemory(from: bytes.baseAddress! + offset, byteCount: n)
        offset += n
        return sf_count_t(n)
    }
}
