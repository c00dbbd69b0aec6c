// Resampler quality: tone SNR after 44.1 kHz → 16 kHz, passband flatness, stop-band rejection,
// delay and length. Numbers are printed; bounds are loose multiples of libsoxr HQ's spec.

import Audio
import Foundation
import Testing

@Suite struct ResamplerTests {
    /// A tone of `frequency` Hz, amplitude `amplitude`, `seconds` long at `rate`.
    func tone(_ frequency: Double, rate: Int, seconds: Double = 1, amplitude: Double = 0.5) -> [Float] {
        (0..<Int(seconds * Double(rate))).map {
            Float(amplitude * sin(2 * Double.pi * frequency * Double($0) / Double(rate)))
        }
    }

    /// Least-squares fit of a·sin + b·cos at `frequency` over the middle of `x` (edges skipped:
    /// the filter rings there). Returns amplitude, phase (radians) and the residual's SNR in dB.
    func fit(_ x: [Float], frequency: Double, rate: Int) -> (amplitude: Double, phase: Double, snr: Double) {
        let skip = rate / 10
        let range = skip..<(x.count - skip)
        var ss = 0.0, cc = 0.0, sc = 0.0, xs = 0.0, xc = 0.0
        for n in range {
            let w = 2 * Double.pi * frequency * Double(n) / Double(rate)
            let s = sin(w), c = cos(w), v = Double(x[n])
            ss += s * s; cc += c * c; sc += s * c; xs += v * s; xc += v * c
        }
        let det = ss * cc - sc * sc
        let a = (xs * cc - xc * sc) / det, b = (xc * ss - xs * sc) / det
        var signal = 0.0, noise = 0.0
        for n in range {
            let w = 2 * Double.pi * frequency * Double(n) / Double(rate)
            let model = a * sin(w) + b * cos(w)
            signal += model * model
            noise += (Double(x[n]) - model) * (Double(x[n]) - model)
        }
        return ((a * a + b * b).squareRoot(), atan2(b, a), 10 * log10(signal / max(noise, 1e-300)))
    }

    @Test func toneSNR() throws {
        let out = try Resampler.resample(tone(1000, rate: 44100), from: 44100, to: 16000)
        #expect(out.count == 16000)
        let r = fit(out, frequency: 1000, rate: 16000)
        print(String(format: "[resampler] 1 kHz tone 44.1→16 kHz: SNR %.1f dB, gain %.4f dB, phase %.2e rad",
                     r.snr, 20 * log10(r.amplitude / 0.5), r.phase))
        // SOXR_HQ is specified for 20-bit precision (~120 dB); float32 output caps it near 140.
        #expect(r.snr > 100, "SNR \(r.snr) dB")
        // Linear phase with its delay removed: the tone keeps its phase.
        #expect(abs(r.phase) < 1e-3, "phase \(r.phase)")
    }

    @Test func passbandFlatness() throws {
        var gains: [(Double, Double)] = []
        for f in [50.0, 100, 300, 1000, 2000, 3000, 4000, 5000, 6000, 7000] {
            let out = try Resampler.resample(tone(f, rate: 44100), from: 44100, to: 16000)
            let r = fit(out, frequency: f, rate: 16000)
            gains.append((f, 20 * log10(r.amplitude / 0.5)))
        }
        let db = gains.map(\.1)
        let spread = db.max()! - db.min()!
        print("[resampler] passband gain (dB): "
              + gains.map { String(format: "%.0f Hz %+.4f", $0.0, $0.1) }.joined(separator: ", ")
              + String(format: "; spread %.4f dB up to 7 kHz", spread))
        #expect(spread < 0.1, "passband spread \(spread) dB")
    }

    @Test func stopBandRejection() throws {
        // 10 kHz cannot exist at 16 kHz: whatever comes out is leakage (or its 6 kHz alias).
        let out = try Resampler.resample(tone(10000, rate: 44100), from: 44100, to: 16000)
        let middle = out[1600..<(out.count - 1600)]
        let rms = (middle.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(middle.count)).squareRoot()
        let rejection = 20 * log10((0.5 / 2.0.squareRoot()) / max(rms, 1e-20))
        print(String(format: "[resampler] 10 kHz tone 44.1→16 kHz: rejected by %.1f dB", rejection))
        #expect(rejection > 100, "rejection \(rejection) dB")
    }

    @Test(arguments: [(8000, 16000), (22050, 16000), (44100, 16000), (48000, 16000), (96000, 16000),
                      (16000, 16000), (11025, 16000), (16000, 44100)])
    func lengths(from: Int, to: Int) throws {
        let n = 12345
        let out = try Resampler.resample([Float](repeating: 0.25, count: n), from: from, to: to)
        #expect(out.count == Int((Double(n) * Double(to) / Double(from)).rounded()))
        // DC passes at unit gain away from the edges.
        let mid = out[out.count / 4..<(3 * out.count / 4)]
        #expect(mid.allSatisfy { abs($0 - 0.25) < 1e-4 })
    }
}
