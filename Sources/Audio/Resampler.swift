// Sample-rate conversion with libsoxr at its "high quality" setting (20-bit, linear phase).

import CSoxr
import Foundation

/// Converts mono audio between sample rates with libsoxr (`SOXR_HQ`: passband to 91 % of the
/// lower Nyquist frequency, ≥ 120 dB stop-band rejection, linear phase).
public enum Resampler {
    /// Sample rates accepted as input or output. Below 1 kHz nothing intelligible survives and
    /// above 768 kHz no audio interface records; outside this range a header is lying.
    public static let supportedRates = 1000...768_000

    /// Resamples `samples` from `from` Hz to `to` Hz. The output has
    /// `round(samples.count · to / from)` samples and no delay (soxr compensates its filter).
    ///
    /// - Throws: `AudioError.badSampleRate` for a rate outside `supportedRates`,
    ///   `AudioError.resampleFailed` if libsoxr reports an error.
    public static func resample(_ samples: [Float], from: Int, to: Int) throws(AudioError) -> [Float] {
        guard supportedRates.contains(from) else { throw .badSampleRate(from) }
        guard supportedRates.contains(to) else { throw .badSampleRate(to) }
        if from == to || samples.isEmpty { return samples }
        let outCount = Int((Double(samples.count) * Double(to) / Double(from)).rounded())
        guard outCount > 0 else { return [] }
        var output = [Float](repeating: 0, count: outCount)
        var io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I)
        var quality = soxr_quality_spec(UInt(SOXR_HQ), 0)
        var produced = 0
        let error: soxr_error_t? = samples.withUnsafeBufferPointer { input in
            output.withUnsafeMutableBufferPointer { out in
                soxr_oneshot(Double(from), Double(to), 1,
                             input.baseAddress, input.count, nil,
                             out.baseAddress, out.count, &produced,
                             &io, &quality, nil)
            }
        }
        if let error {
            throw .resampleFailed(detail: String(cString: error))
        }
        if produced < outCount { output.removeLast(outCount - produced) }
        return output
    }
}

extension AudioDecoder {
    /// Shortest audio accepted by `load16kMono`: one 25 ms analysis window at 16 kHz. The
    /// frontend could make a frame from less, but NeMo's reflect padding needs more than
    /// 256 samples and a shorter clip carries no speech.
    public static let minimumSamples16k = 400

    /// Shortest audio accepted at `sampleRate`: one 25 ms analysis window.
    public static func minimumSamples(sampleRate: Int) -> Int { sampleRate / 40 }

    /// The one check of samples a model will see: at least one 25 ms window, at most
    /// `maxSeconds`, every sample finite and within `maxMagnitude`.
    /// - Throws: `.tooShort`, `.tooLong`, `.nonFiniteSamples`, `.outOfRange`.
    public static func validate(_ samples: [Float], sampleRate: Int, maxSeconds: Double? = nil) throws(AudioError) {
        let minimum = minimumSamples(sampleRate: sampleRate)
        guard samples.count >= minimum else { throw .tooShort(samples: samples.count, minimum: minimum) }
        let seconds = Double(samples.count) / Double(sampleRate)
        if let maxSeconds, seconds > maxSeconds { throw .tooLong(seconds: seconds, limit: maxSeconds) }
        if let bad = samples.firstIndex(where: { !$0.isFinite }) { throw .nonFiniteSamples(index: bad) }
        if let bad = samples.firstIndex(where: { abs($0) > maxMagnitude }) {
            throw .outOfRange(index: bad, value: samples[bad])
        }
    }

    /// Decodes `data`, averages its channels and resamples to `sampleRate`: a model's input,
    /// with what the decoder warned about (a truncated file is decoded as far as it goes).
    ///
    /// - Parameter maxSeconds: refuse audio longer than this (checked while decoding, so an
    ///   over-long upload costs little); nil for no limit.
    /// - Returns: mono samples at `sampleRate`, at least `minimumSamples(sampleRate:)` of them.
    /// - Throws: everything `decode(_:)` throws, `.tooLong`, `.tooShort`.
    public static func prepare(_ data: Data, sampleRate: Int, maxSeconds: Double? = nil) throws(AudioError) -> PreparedAudio {
        let decoded = try decode(data, maxSeconds: maxSeconds)
        let samples = try Resampler.resample(decoded.samples, from: decoded.sampleRate, to: sampleRate)
        let minimum = minimumSamples(sampleRate: sampleRate)
        guard samples.count >= minimum else { throw .tooShort(samples: samples.count, minimum: minimum) }
        return PreparedAudio(samples: samples, sampleRate: sampleRate, format: decoded.format, warnings: decoded.warnings)
    }

    /// `prepare(data, sampleRate:maxSeconds:).samples`: the samples alone.
    public static func load(_ data: Data, sampleRate: Int, maxSeconds: Double? = nil) throws(AudioError) -> [Float] {
        try prepare(data, sampleRate: sampleRate, maxSeconds: maxSeconds).samples
    }

    /// `load(data, sampleRate: 16000, maxSeconds:)`: the release's input rate.
    public static func load16kMono(_ data: Data, maxSeconds: Double? = nil) throws(AudioError) -> [Float] {
        try load(data, sampleRate: 16000, maxSeconds: maxSeconds)
    }
}

/// A model's input: mono samples at the model's rate, with the decoder's warnings.
public struct PreparedAudio: Sendable {
    /// Mono samples at `sampleRate`.
    public var samples: [Float]
    /// The model's rate they were resampled to.
    public var sampleRate: Int
    /// The file's container and encoding (`DecodedAudio.format`).
    public var format: String
    /// What was wrong with the file although it decoded (e.g. truncated), in order.
    public var warnings: [AudioWarning]

    /// Samples with their rate, format and warnings.
    public init(samples: [Float], sampleRate: Int, format: String, warnings: [AudioWarning] = []) {
        self.samples = samples; self.sampleRate = sampleRate; self.format = format; self.warnings = warnings
    }
}
