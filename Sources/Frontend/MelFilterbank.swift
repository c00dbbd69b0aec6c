// The Slaney mel filterbank exactly as librosa builds it (librosa.filters.mel, htk=False,

import Foundation
// norm="slaney"), which NeMo computes once and stores as float32.

extension LogMelFrontend {
    /// A Slaney-scale, Slaney-normalised triangular mel filterbank, row-major
    /// `[nMels, nFFT / 2 + 1]`: equal to `librosa.filters.mel(sr:, n_fft:, n_mels:, fmin:,
    /// fmax:, htk=False, norm="slaney")` (computed in Double, rounded to Float as librosa does).
    ///
    /// - Parameter fMax: upper edge in Hz; nil means `sampleRate / 2`.
    public static func melFilterbank(sampleRate: Int = 16000, nFFT: Int = 512, nMels: Int = 80,
                                     fMin: Double = 0, fMax: Double? = nil) -> [Float]
    {
        precondition(sampleRate > 0 && nFFT > 0 && nMels > 0,
                     "melFilterbank: sampleRate \(sampleRate), nFFT \(nFFT), nMels \(nMels)")
        let bins = nFFT / 2 + 1
        let top = fMax ?? Double(sampleRate) / 2
        // np.fft.rfftfreq(n_fft, 1/sr): k · (1 / (n · d))
        let binStep = 1.0 / (Double(nFFT) * (1.0 / Double(sampleRate)))
        let fftFreqs = (0..<bins).map { Double($0) * binStep }
        // np.linspace(min_mel, max_mel, n_mels + 2), then back to Hz
        let count = nMels + 2
        let lo = hzToMel(fMin), hi = hzToMel(top)
        let step = (hi - lo) / Double(count - 1)
        var melF = (0..<count).map { melToHz(Double($0) * step + lo) }
        melF[count - 1] = melToHz(hi)
        var weights = [Float](repeating: 0, count: nMels * bins)
        for i in 0..<nMels {
            let fdiffLow = melF[i + 1] - melF[i]
            let fdiffHigh = melF[i + 2] - melF[i + 1]
            let enorm = 2.0 / (melF[i + 2] - melF[i])
            for k in 0..<bins {
                let lower = -(melF[i] - fftFreqs[k]) / fdiffLow
                let upper = (melF[i + 2] - fftFreqs[k]) / fdiffHigh
                // librosa stores the triangle as float32, then scales it by the float64 norm.
                let triangle = Float(max(0, min(lower, upper)))
                weights[i * bins + k] = Float(Double(triangle) * enorm)
            }
        }
        return weights
    }

    // Slaney's auditory-toolbox mel scale: linear below 1 kHz, logarithmic above.
    private static let fSp = 200.0 / 3
    private static let minLogHz = 1000.0
    private static let minLogMel = minLogHz / fSp
    private static let logStep = log(6.4) / 27

    static func hzToMel(_ f: Double) -> Double {
        f >= minLogHz ? minLogMel + log(f / minLogHz) / logStep : f / fSp
    }

    static func melToHz(_ m: Double) -> Double {
        m >= minLogMel ? minLogHz * exp(logStep * (m - minLogMel)) : fSp * m
    }
}
