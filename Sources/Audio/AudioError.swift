// Every way audio input can be refused, each with a message that says what to do about it.

/// Why audio could not be decoded, resampled or accepted.
///
/// Every case is a problem with the *input*; none is a programmer error. The `description`
/// names the problem and ends with what the caller can do about it, so the HTTP server can
/// pass it straight to the client.
public enum AudioError: Error, CustomStringConvertible, Sendable, Equatable {
    /// Zero bytes of input.
    case empty
    /// The bytes are not in any audio format libsndfile or FFmpeg recognises (`detail` says what
    /// was found: the libraries' messages, or a container without an audio stream).
    case notAudio(detail: String)
    /// The bytes are text (`preview`: its start), not an audio file: a file name, a path or a
    /// form field sent where the file's contents belong.
    case textNotAudio(preview: String)
    /// A recognised format whose header or structure is broken (`detail` names the container and
    /// codec found, and the library's message).
    case malformed(detail: String)
    /// A recognised container holding an encoding this build cannot decode.
    case unsupported(detail: String)
    /// The header promises audio and the bytes end before any of it (a file cut that short; a
    /// file cut later is decoded with an `AudioWarning` instead).
    case truncated(expectedFrames: Int, decodedFrames: Int)
    /// The codec failed in the middle of the stream.
    case decodeFailed(detail: String)
    /// The header says the audio has no channels.
    case noChannels
    /// More channels than any real recording has (limit: `AudioDecoder.maxChannels`).
    case tooManyChannels(Int)
    /// A sample rate outside `Resampler.supportedRates`.
    case badSampleRate(Int)
    /// A NaN or infinite sample at `index` (interleaved-frame index, before mixing).
    case nonFiniteSamples(index: Int)
    /// A float sample of absurd magnitude (beyond `AudioDecoder.maxMagnitude`, 60 dB over full
    /// scale): garbage bytes in a float file, which would overflow the power spectrum.
    case outOfRange(index: Int, value: Float)
    /// The file is valid but holds no samples.
    case noSamples
    /// Fewer 16 kHz samples than one 25 ms analysis window (`minimum`).
    case tooShort(samples: Int, minimum: Int)
    /// Longer than the caller's limit.
    case tooLong(seconds: Double, limit: Double)
    /// libsoxr refused the conversion (`detail` is its message).
    case resampleFailed(detail: String)

    /// A stable machine-readable name of the case (`"truncated"`, `"bad_sample_rate"`, ...) for
    /// logs, metrics and API error bodies.
    public var code: String {
        switch self {
        case .empty: return "empty"
        case .notAudio: return "not_audio"
        case .textNotAudio: return "text_not_audio"
        case .malformed: return "malformed"
        case .unsupported: return "unsupported"
        case .truncated: return "truncated"
        case .decodeFailed: return "decode_failed"
        case .noChannels: return "no_channels"
        case .tooManyChannels: return "too_many_channels"
        case .badSampleRate: return "bad_sample_rate"
        case .nonFiniteSamples: return "non_finite_samples"
        case .outOfRange: return "out_of_range"
        case .noSamples: return "no_samples"
        case .tooShort: return "too_short"
        case .tooLong: return "too_long"
        case .resampleFailed: return "resample_failed"
        }
    }

    public var description: String {
        switch self {
        case .empty:
            return "The audio is empty (0 bytes). Send the file's contents."
        case .notAudio(let detail):
            return "The data is not a recognised audio file (\(detail)). "
                + "Send WAV, FLAC, OGG/Vorbis, Opus, MP3, WebM, MP4/M4A/AAC or another common audio format."
        case .textNotAudio(let preview):
            return "The data is text (\"\(preview)\"), not an audio file. "
                + "Send the audio file's contents, not its name, path or a text field."
        case .malformed(let detail):
            return "The audio file is damaged (\(detail)). Re-export it, e.g. `sox in out.wav`."
        case .unsupported(let detail):
            return "The audio encoding is not supported (\(detail)). "
                + "Convert it to 16-bit PCM WAV or FLAC."
        case .truncated(let expected, let decoded):
            return "The audio file is truncated: its header promises \(expected) frames but only "
                + "\(decoded) are present. Upload the complete file."
        case .decodeFailed(let detail):
            return "Decoding failed part-way through the audio (\(detail)). "
                + "The file is probably corrupt; re-encode it."
        case .noChannels:
            return "The audio header declares 0 channels. Re-export the file with 1 or more channels."
        case .tooManyChannels(let n):
            return "The audio header declares \(n) channels (at most \(AudioDecoder.maxChannels) "
                + "are accepted). Mix it down to mono first."
        case .badSampleRate(let rate):
            return "Sample rate \(rate) Hz is outside \(Resampler.supportedRates.lowerBound)"
                + "…\(Resampler.supportedRates.upperBound) Hz. Re-export the audio at 16 kHz."
        case .nonFiniteSamples(let index):
            return "The audio contains a NaN or infinite sample (at sample \(index)). "
                + "Fix the floating-point export or use integer PCM."
        case .outOfRange(let index, let value):
            return "The audio has a sample of \(value) at sample \(index), far outside [-1, 1]. "
                + "Normalise the floating-point audio to [-1, 1]."
        case .noSamples:
            return "The audio file is valid but holds no samples (0 s of audio). Send a recording with sound in it."
        case .tooShort(let samples, let minimum):
            return "The audio is too short: \(samples) samples at 16 kHz, fewer than one 25 ms "
                + "window (\(minimum)). Send at least 25 ms of audio."
        case .tooLong(let seconds, let limit):
            return "The audio is \(formatSeconds(seconds)) s long; the limit is "
                + "\(formatSeconds(limit)) s. Split it into shorter pieces."
        case .resampleFailed(let detail):
            return "Resampling failed (\(detail)). Convert the audio to 16 kHz first."
        }
    }
}

private func formatSeconds(_ s: Double) -> String {
    guard s.isFinite, abs(s) < 1e12 else { return String(s) }
    let tenths = (s * 10).rounded() / 10
    return tenths == tenths.rounded() ? String(Int(tenths)) : String(tenths)
}
