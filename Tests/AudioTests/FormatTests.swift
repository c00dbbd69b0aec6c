// Every encoding decodes to the samples sox decodes (Tools/reference/make_frontend_refs.py).

import Audio
import Foundation
import Testing
import VaniTestSupport

/// A fixture file and the tolerance its decoding is held to.
struct FormatCase: CustomStringConvertible, Sendable {
    var file: String
    var atol: Float
    /// Why this tolerance.
    var why: String
    var description: String { file }
}

// Tolerances, each with its reason. sox decodes through 32-bit integers, libsndfile through
// float; both scale integer PCM by 1/2^(bits−1), so lossless files agree to one float rounding.
let losslessCases: [FormatCase] = [
    .init(file: "wav_u8.wav", atol: 1e-7, why: "(x−128)/128 is exact in float"),
    .init(file: "wav_s16.wav", atol: 1e-7, why: "x/2^15 is exact in float"),
    .init(file: "wav_s24.wav", atol: 1e-7, why: "x/2^23 is exact in float"),
    .init(file: "wav_s32.wav", atol: 2e-7, why: "x/2^31 rounds to float once (≤ 6e-8 at |x| < 1)"),
    .init(file: "wav_f32.wav", atol: 2e-7, why: "sox's int32 path quantises to 2^-31 and rounds once"),
    .init(file: "wav_f64.wav", atol: 2e-7, why: "double → float rounding plus sox's int32 path"),
    .init(file: "wav_ext_6ch.wav", atol: 2e-7, why: "16-bit; the 6-channel mean rounds a few times"),
    .init(file: "wav_list.wav", atol: 1e-7, why: "16-bit with a LIST chunk: exact"),
    .init(file: "wav_odd_chunk.wav", atol: 1e-7, why: "16-bit after an odd-sized chunk: exact"),
    .init(file: "flac_s16.flac", atol: 1e-7, why: "lossless 16-bit: exact"),
    .init(file: "ogg_vorbis.ogg", atol: 3.1e-5,
          why: "same libvorbis decoder, but sox reads it as 16-bit integers (ov_read): ≤ 2^-15 off"),
]

@Suite struct FormatTests {
    @Test(arguments: losslessCases)
    func decodesLikeSox(_ c: FormatCase) throws {
        let decoded = try AudioDecoder.decode(Data(contentsOf: Fixtures.url("audio/\(c.file)")))
        let stem = c.file.split(separator: ".").first!
        let expected = try Fixtures.npy("audio/\(stem).expected.npy").values
        #expect(decoded.samples.count == expected.count,
                "\(c.file): \(decoded.samples.count) samples, sox gives \(expected.count)")
        guard decoded.samples.count == expected.count else { return }
        let r = compare(decoded.samples, expected, atol: c.atol)
        print("[format] \(c.file) (\(decoded.format), \(decoded.channels) ch, \(decoded.sampleRate) Hz): \(r)")
        #expect(r.withinTolerance, "\(c.file): \(r) — \(c.why)")
    }

    /// Opus and MP3: no independent decoder on the machine, so compare with the signal that was
    /// encoded. Lossy codecs shift and colour the signal: find the best alignment, require
    /// 20 dB SNR (a wrong channel mix, sample rate or scale gives < 6 dB).
    @Test(arguments: [("opus_48k.opus", 48000), ("mp3_44k.mp3", 44100)])
    func lossyMatchesSource(file: String, rate: Int) throws {
        let decoded = try AudioDecoder.decode(Data(contentsOf: Fixtures.url("audio/\(file)")))
        let source = try Fixtures.npy("audio/\(file.split(separator: ".").first!).expected.npy").values
        #expect(decoded.sampleRate == rate)
        let (lag, snr) = bestAlignedSNR(decoded.samples, source, maxLag: 3000)
        print("[format] \(file) (\(decoded.format)): \(decoded.samples.count) samples "
              + "(source \(source.count)), best lag \(lag), SNR \(String(format: "%.1f", snr)) dB")
        #expect(snr > 20, "\(file): SNR \(snr) dB at lag \(lag)")
    }

    @Test func metadata() throws {
        let six = try AudioDecoder.decodeFile(Fixtures.url("audio/wav_ext_6ch.wav"))
        #expect(six.channels == 6)
        #expect(six.sampleRate == 48000)
        #expect(six.format.hasPrefix("wav"), "\(six.format)")
        #expect(abs(six.duration - 0.05) < 1e-9)
        let flac = try AudioDecoder.decodeFile(Fixtures.url("audio/flac_s16.flac"))
        #expect(flac.format.hasPrefix("flac"), "\(flac.format)")
        #expect(flac.channels == 2 && flac.sampleRate == 44100)
    }

    @Test func load16kMonoResamples() throws {
        let data = try Data(contentsOf: Fixtures.url("audio/flac_s16.flac"))
        let samples = try AudioDecoder.load16kMono(data)
        #expect(samples.count == 1600, "0.1 s at 16 kHz, got \(samples.count)")
        let same = try AudioDecoder.load16kMono(Data(contentsOf: Fixtures.url("audio/wav_list.wav")))
        let direct = try AudioDecoder.decode(Data(contentsOf: Fixtures.url("audio/wav_list.wav")))
        #expect(same == direct.samples, "16 kHz input must pass through unchanged")
    }
}

/// SNR in dB of `actual` against `reference` at the lag (actual[i + lag] ↔ reference[i]) that
/// maximises it.
func bestAlignedSNR(_ actual: [Float], _ reference: [Float], maxLag: Int) -> (lag: Int, snr: Double) {
    var best = (lag: 0, snr: -Double.infinity)
    for lag in -maxLag...maxLag {
        var signal = 0.0, noise = 0.0
        for i in 0..<reference.count {
            let j = i + lag
            let r = Double(reference[i])
            // Reference samples with no decoded partner count as noise, so a lag cannot win by
            // shrinking the overlap.
            let d = j >= 0 && j < actual.count ? Double(actual[j]) - r : r
            signal += r * r
            noise += d * d
        }
        guard signal > 0 else { continue }
        let snr = 10 * log10(signal / max(noise, 1e-30))
        if snr > best.snr { best = (lag, snr) }
    }
    return best
}

@Suite struct ConcurrencyTests {
    /// libsndfile handles, libsoxr one-shots and the decoders under them share no state: many
    /// uploads may decode at once and each gets what a lone decode gets.
    @Test func concurrentDecodesMatchSerial() async throws {
        let files = ["flac_s16.flac", "ogg_vorbis.ogg", "opus_48k.opus", "mp3_44k.mp3", "wav_s24.wav"]
        let inputs = try files.map { try Data(contentsOf: Fixtures.url("audio/\($0)")) }
        let serial = try inputs.map { try AudioDecoder.load16kMono($0) }
        let results = try await withThrowingTaskGroup(of: (Int, [Float]).self) { group in
            for round in 0..<8 {
                for (i, data) in inputs.enumerated() {
                    group.addTask { (i, try AudioDecoder.load16kMono(data)) }
                }
                _ = round
            }
            var all: [(Int, [Float])] = []
            for try await r in group { all.append(r) }
            return all
        }
        #expect(results.count == 8 * files.count)
        for (i, samples) in results { #expect(samples == serial[i], "\(files[i])") }
    }
}
