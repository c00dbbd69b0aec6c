// NeMo's FilterbankFeatures at inference (docs/MODEL.md §3), over FFTW and sgemm.

import CBLAS
import CFFTW
import Dispatch
import Foundation

/// FFTW's planner (and plan destruction) is not thread-safe; only execution is. Every
/// planner call in the process goes through this lock.
private let fftwPlannerLock = NSLock()

/// An FFTW single-precision real-to-complex plan, made once and executed only through the
/// new-array interface (`fftwf_execute_dft_r2c`), which FFTW documents as thread-safe.
private final class RealFFTPlan: @unchecked Sendable {
    let size: Int
    private let plan: fftwf_plan

    init(size: Int) {
        self.size = size
        fftwPlannerLock.lock()
        defer { fftwPlannerLock.unlock() }
        let input = fftwf_alloc_real(size)!
        let output = fftwf_alloc_complex(size / 2 + 1)!
        // FFTW_ESTIMATE leaves the arrays untouched; MEASURE was no faster here (docs/TOOLCHAIN.md).
        plan = fftwf_plan_dft_r2c_1d(Int32(size), input, output, UInt32(FFTW_ESTIMATE))!
        fftwf_free(input)
        fftwf_free(output)
    }

    deinit {
        fftwPlannerLock.lock()
        fftwf_destroy_plan(plan)
        fftwPlannerLock.unlock()
    }

    /// `input` and `output` must come from `fftwf_alloc_*` (the plan's alignment).
    func execute(_ input: UnsafeMutablePointer<Float>, _ output: UnsafeMutablePointer<fftwf_complex>) {
        fftwf_execute_dft_r2c(plan, input, output)
    }
}

/// NeMo-exact log-mel features (AI4Bharat's NeMo fork, `FilterbankFeatures` in eval mode):
/// pre-emphasis, reflect-padded STFT with a symmetric Hann window, power spectrum, Slaney mel,
/// `log(x + 2^-24)`, per-band normalisation. Immutable after `init`: one instance may be used
/// from any number of threads at once.
public final class LogMelFrontend: Sendable {
    /// The settings the features follow.
    public let config: FrontendConfig
    private let fft: RealFFTPlan
    /// `[nFFT]`: symmetric Hann(windowLength) centred in the FFT frame, zeros around it.
    private let window: [Float]
    /// `[nMels, nFFT / 2 + 1]` row-major.
    private let filterbank: [Float]

    /// Plans the FFT (under the process-wide planner lock) and builds window and filterbank.
    public init(config: FrontendConfig = FrontendConfig()) {
        precondition(config.nFFT >= config.windowLength && config.windowLength > 1
                     && config.hopLength > 0 && config.nMels > 0 && config.nFFT % 2 == 0,
                     "LogMelFrontend: nFFT \(config.nFFT), window \(config.windowLength), "
                     + "hop \(config.hopLength), nMels \(config.nMels)")
        self.config = config
        fft = RealFFTPlan(size: config.nFFT)
        // torch.hann_window(win, periodic=False), padded to n_fft on both sides as torch.stft does.
        var w = [Float](repeating: 0, count: config.nFFT)
        let offset = (config.nFFT - config.windowLength) / 2
        let denominator = Double(config.windowLength - 1)
        for n in 0..<config.windowLength {
            w[offset + n] = Float(0.5 - 0.5 * cos(2 * Double.pi * Double(n) / denominator))
        }
        window = w
        filterbank = Self.melFilterbank(sampleRate: config.sampleRate, nFFT: config.nFFT,
                                        nMels: config.nMels)
    }

    /// Frames NeMo makes from `samples` samples: `samples / hop + 1` (the `+ 1` is the
    /// centred STFT's extra frame; leaving it out is a known port bug).
    public static func frameCount(samples: Int, hop: Int) -> Int {
        precondition(samples >= 0 && hop > 0, "frameCount: samples \(samples), hop \(hop)")
        return samples / hop + 1
    }

    /// Features for one utterance of mono samples at `config.sampleRate`: time-major
    /// `[T, nMels]`, `T = samples.count / hop + 1`, then zero frames up to a multiple of
    /// `config.padTo` when it is > 0.
    ///
    /// Any length works: audio shorter than `nFFT / 2 + 1` samples (which NeMo's reflect pad
    /// refuses) is reflected periodically, and a single frame normalises to zeros.
    public func features(_ samples: [Float]) -> Features {
        let hop = config.hopLength, nFFT = config.nFFT, nMels = config.nMels
        let bins = nFFT / 2 + 1
        let frames = Self.frameCount(samples: samples.count, hop: hop)

        let padded = preemphasisedAndPadded(samples)                    // (N + nFFT)

        // Power spectrum, one frame at a time through the shared plan.
        var power = [Float](repeating: 0, count: frames * bins)          // (T, bins)
        let input = fftwf_alloc_real(nFFT)!
        let output = fftwf_alloc_complex(bins)!
        defer { fftwf_free(input); fftwf_free(output) }
        let first = (nFFT - config.windowLength) / 2
        let last = first + config.windowLength
        padded.withUnsafeBufferPointer { x in
            window.withUnsafeBufferPointer { w in
                power.withUnsafeMutableBufferPointer { p in
                    input.initialize(repeating: 0, count: nFFT)
                    for t in 0..<frames {
                        let start = t * hop
                        for j in first..<last { input[j] = x[start + j] * w[j] }
                        fft.execute(input, output)
                        let row = p.baseAddress! + t * bins
                        for k in 0..<bins {
                            let re = output[k].0, im = output[k].1
                            // NeMo takes sqrt(re² + im²) and squares it back (mag_power 2.0).
                            let magnitude = (re * re + im * im).squareRoot()
                            row[k] = magnitude * magnitude
                        }
                    }
                }
            }
        }

        // Mel: (T, bins) · (nMels, bins)ᵀ → (T, nMels)
        var mel = [Float](repeating: 0, count: frames * nMels)           // (T, nMels)
        power.withUnsafeBufferPointer { p in
            filterbank.withUnsafeBufferPointer { fb in
                mel.withUnsafeMutableBufferPointer { m in
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans,
                                Int32(frames), Int32(nMels), Int32(bins),
                                1, p.baseAddress, Int32(bins), fb.baseAddress, Int32(bins),
                                0, m.baseAddress, Int32(nMels))
                }
            }
        }
        let guardValue = config.logGuard
        for i in 0..<mel.count { mel[i] = log(mel[i] + guardValue) }

        normalisePerBand(&mel, frames: frames, bands: nMels)

        if config.padTo > 0, frames % config.padTo != 0 {
            let total = (frames / config.padTo + 1) * config.padTo
            mel.append(contentsOf: repeatElement(0, count: (total - frames) * nMels))
            return Features(frames: total, bands: nMels, values: mel, validFrames: frames)
        }
        return Features(frames: frames, bands: nMels, values: mel)
    }

    /// Features for several utterances, computed concurrently; `result[i]` belongs to `batch[i]`.
    public func features(batch: [[Float]]) -> [Features] {
        if batch.count <= 1 { return batch.map { features($0) } }
        let results = ResultSlots<Features>(count: batch.count)
        DispatchQueue.concurrentPerform(iterations: batch.count) { i in
            results[i] = features(batch[i])
        }
        return results.values
    }

    /// The filterbank in use, `[nMels, nFFT / 2 + 1]` row-major.
    public var melWeights: [Float] { filterbank }

    // MARK: - Steps

    /// Pre-emphasis (`y[0] = x[0]`, `y[n] = x[n] − a·x[n−1]`), then reflect padding of `nFFT / 2`
    /// on both sides without repeating the edge sample (torch `pad_mode="reflect"`).
    private func preemphasisedAndPadded(_ x: [Float]) -> [Float] {
        let n = x.count, pad = config.nFFT / 2
        var y = x
        let a = config.preemphasis
        if n > 1 {
            for i in stride(from: n - 1, to: 0, by: -1) { y[i] = x[i] - a * x[i - 1] }
        }
        var padded = [Float](repeating: 0, count: n + 2 * pad)
        guard n > 0 else { return padded }
        for i in 0..<n { padded[pad + i] = y[i] }
        for i in 1...pad {
            padded[pad - i] = y[reflect(-i, n)]
            padded[pad + n - 1 + i] = y[reflect(n - 1 + i, n)]
        }
        return padded
    }

    /// Index `i` reflected into `0..<n` (period 2(n − 1)); for n > pad this is a single mirror.
    private func reflect(_ i: Int, _ n: Int) -> Int {
        if n == 1 { return 0 }
        let period = 2 * (n - 1)
        var j = i % period
        if j < 0 { j += period }
        return j < n ? j : period - j
    }

    /// `(x − μ) / (σ + ε)` per band over the frames; σ is the unbiased std (÷ (T − 1)), taken
    /// as 0 when T = 1 (NeMo's NaN guard). Sums run in Double.
    private func normalisePerBand(_ x: inout [Float], frames: Int, bands: Int) {
        let eps = Double(config.normalizeEpsilon)
        x.withUnsafeMutableBufferPointer { v in
            for m in 0..<bands {
                var sum = 0.0
                for t in 0..<frames { sum += Double(v[t * bands + m]) }
                let mean = sum / Double(frames)
                var squares = 0.0
                for t in 0..<frames {
                    let d = Double(v[t * bands + m]) - mean
                    squares += d * d
                }
                let std = frames > 1 ? (squares / Double(frames - 1)).squareRoot() : 0
                let scale = 1 / (std + eps)
                for t in 0..<frames {
                    v[t * bands + m] = Float((Double(v[t * bands + m]) - mean) * scale)
                }
            }
        }
    }
}

/// Write-once slots filled from `concurrentPerform`; each index is written by one iteration.
private final class ResultSlots<Value: Sendable>: @unchecked Sendable {
    private var slots: [Value?]
    private let lock = NSLock()

    init(count: Int) { slots = Array(repeating: nil, count: count) }

    subscript(i: Int) -> Value? {
        get { lock.withLock { slots[i] } }
        set { lock.withLock { slots[i] = newValue } }
    }

    var values: [Value] { lock.withLock { slots.map { $0! } } }
}
