// The log-mel frontend against librosa (filterbank), a float32 torch transcription of NeMo's
// FilterbankFeatures (synthetic signals), and the fork-patched NeMo preprocessor itself
// (speech clips in Tests/Fixtures/clips).

import Audio
import Foundation
import Frontend
import Testing
import TensorModule
import VaniTestSupport

// Tolerances, each with its reason.
/// librosa computes the filterbank in float64 and stores float32; so do we: only the last
/// float32 rounding of log/exp may differ (weights are ≤ 0.03, one ulp there is ~2e-9).
let filterbankTolerance: Float = 1e-6
/// NeMo runs in float32 and so do we, with a different FFT (FFTW vs torch's): in bins far
/// below a frame's peak each FFT is off by its own ~1e-7·‖frame‖, which log() turns into
/// ~1e-5…1e-4 after normalisation. NeMo's own output differs from a float64 recipe by up to
/// 4.2e-5 on these clips. 1e-4 max is the issue's contract.
let featureTolerance: Float = 1e-4
/// Mean |Δ| bound: rounding differences are rare and small; a recipe error (window, padding,
/// filterbank, normalisation) moves every value and fails this even where max |Δ| might pass.
let featureMeanTolerance: Double = 2e-6
/// The synthetic chirp has almost no energy below 60 Hz once pre-emphasised: band 0 sits
/// ~100 dB under the frame's peak, where torch's float32 STFT itself is 3.2e-4 away from a
/// float64 recipe. The speech clips have no such band.
let syntheticTolerance: Float = 1e-3
let syntheticMeanTolerance: Double = 1e-5

let frontend = LogMelFrontend()

@Suite struct FilterbankTests {
    @Test func equalsLibrosa() throws {
        let reference = try Fixtures.npy("audio/mel_filterbank_80x257.npy")
        #expect(reference.shape == [80, 257])
        let ours = LogMelFrontend.melFilterbank(sampleRate: 16000, nFFT: 512, nMels: 80)
        let r = compare(ours, reference.values, atol: filterbankTolerance)
        print("[frontend] filterbank vs librosa: \(r)")
        #expect(r.withinTolerance, "\(r)")
        #expect(frontend.melWeights == ours)
    }

    @Test func slaneyShape() {
        // Slaney normalisation: each triangle has area ≈ 1 in Hz·(weight/Hz) terms, so rows
        // at high frequency (wide triangles) are lower; every row has at least one nonzero bin.
        let fb = LogMelFrontend.melFilterbank()
        for m in 0..<80 {
            let row = fb[(m * 257)..<((m + 1) * 257)]
            #expect(row.contains { $0 > 0 }, "band \(m) is empty")
            #expect(row.allSatisfy { $0 >= 0 })
        }
        #expect(fb[5 * 257..<6 * 257].max()! > fb[75 * 257..<76 * 257].max()!)
    }
}

@Suite struct FeatureTests {
    @Test(arguments: [(0, 1), (1, 1), (159, 1), (160, 2), (161, 2), (400, 3), (9000, 57),
                      (16000, 101), (160_079, 1001)])
    func frameCount(samples: Int, frames: Int) {
        #expect(LogMelFrontend.frameCount(samples: samples, hop: 160) == frames)
    }

    /// Synthetic 16-bit signals against the torch transcription (make_frontend_refs.py).
    @Test(arguments: ["chirp_noise_1s", "noise_9137", "short_400"])
    func matchesTorchReference(_ name: String) throws {
        let samples = try AudioDecoder.decode(Data(contentsOf: Fixtures.url("audio/synth_\(name).wav"))).samples
        let reference = try Fixtures.npy("audio/synth_\(name).features.npy")
        try check(samples, reference, label: "synth_\(name) vs torch", atol: syntheticTolerance,
                  meanAbsTolerance: syntheticMeanTolerance)
    }

    static let clipNames: [String] = {
        let dir = Fixtures.url("clips")
        let files = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return files.filter { $0.hasSuffix(".features.npy") }
            .map { String($0.dropLast(".features.npy".count)) }.sorted()
    }()

    /// Speech clips against the fork-patched NeMo preprocessor: the frontend's real contract.
    /// The parameterised test below runs once per clip; with no clips it would run nothing and
    /// pass, so their absence is a failure of its own.
    @Test func referenceClipsArePresent() {
        #expect(Self.clipNames.count >= 7, "NeMo reference clips missing from Tests/Fixtures/clips (found \(Self.clipNames)): regenerate them with Tools/reference/make_fixtures.sh")
    }

    @Test(arguments: clipNames)
    func matchesNeMo(_ clip: String) throws {
        let samples = try AudioDecoder.decode(Data(contentsOf: Fixtures.url("clips/\(clip).wav"))).samples
        let reference = try Fixtures.npy("clips/\(clip).features.npy")
        try check(samples, reference, label: "\(clip) vs NeMo", atol: featureTolerance,
                  meanAbsTolerance: featureMeanTolerance)
    }

    /// `reference` is NeMo's `[80, T]` (or `[1, 80, T]`).
    func check(_ samples: [Float], _ reference: (shape: [Int], values: [Float]), label: String,
               atol: Float, meanAbsTolerance: Double, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let shape = reference.shape.drop { $0 == 1 && reference.shape.count > 2 }
        let bands = shape.first!, frames = shape.last!
        let f = frontend.features(samples)
        #expect(bands == 80 && f.bands == 80, sourceLocation: sourceLocation)
        #expect(f.frames == frames, "\(label): \(f.frames) frames, reference \(frames)",
                sourceLocation: sourceLocation)
        #expect(f.frames == LogMelFrontend.frameCount(samples: samples.count, hop: 160),
                sourceLocation: sourceLocation)
        guard f.frames == frames else { return }
        let ours = f.bandMajor()
        let r = compare(ours, reference.values, atol: atol)
        let (m, t) = (r.worstIndex / frames, r.worstIndex % frames)
        let meanAbs = zip(ours, reference.values).reduce(0.0) { $0 + Double(abs($1.0 - $1.1)) }
            / Double(max(ours.count, 1))
        print("[frontend] \(label): \(samples.count) samples, \(frames) frames; mean |Δ| "
              + "\(String(format: "%.2e", meanAbs)); worst at [band \(m), frame \(t)]: \(r)")
        #expect(meanAbs < meanAbsTolerance, "\(label): mean |Δ| \(meanAbs)",
                sourceLocation: sourceLocation)
        #expect(r.withinTolerance, "\(label): worst at [band \(m), frame \(t)]: \(r)",
                sourceLocation: sourceLocation)
    }

    @Test func batchEqualsSingle() {
        // Seeded, so a failure repeats: a fixed LCG's top bits mapped to [-0.3, 0.3).
        var state: UInt64 = 0x5EED_F00D
        func next() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(state >> 40) / Float(1 << 24) * 0.6 - 0.3
        }
        let batch = (0..<6).map { i in (0..<(3000 + 1711 * i)).map { _ in next() } }
        let together = frontend.features(batch: batch)
        #expect(together.count == batch.count)
        for (i, x) in batch.enumerated() {
            #expect(together[i] == frontend.features(x), "utterance \(i)")
        }
    }

    @Test func oneInstanceManyThreads() async {
        let x: [Float] = (0..<16000).map { i in
            let s = Float(sin(Double(i) * 0.05)) * 0.2
            return s + Float(i % 7) * 1e-3
        }
        let expected = frontend.features(x)
        let shared = frontend
        let results = await withTaskGroup(of: Features.self) { group in
            for _ in 0..<16 { group.addTask { shared.features(x) } }
            var all: [Features] = []
            for await f in group { all.append(f) }
            return all
        }
        #expect(results.allSatisfy { $0 == expected })
        // Many instances planning at once (the planner is serialised by a global lock).
        let made = await withTaskGroup(of: Features.self) { group in
            for _ in 0..<8 { group.addTask { LogMelFrontend().features(x) } }
            var all: [Features] = []
            for await f in group { all.append(f) }
            return all
        }
        #expect(made.allSatisfy { $0 == expected })
    }

    @Test(arguments: [0, 1, 2, 100, 256, 257, 399])
    func tinyInputsStayFinite(_ n: Int) {
        let x = (0..<n).map { Float(sin(Double($0))) * 0.1 }
        let f = frontend.features(x)
        #expect(f.frames == n / 160 + 1)
        #expect(f.values.allSatisfy { $0.isFinite }, "n = \(n)")
        if f.frames == 1 { #expect(f.values.allSatisfy { $0 == 0 }, "one frame normalises to 0") }
    }

    @Test func silenceIsFiniteAndZero() {
        let f = frontend.features([Float](repeating: 0, count: 16000))
        #expect(f.values.allSatisfy { $0 == 0 })
    }

    @Test func padTo16() {
        var config = FrontendConfig()
        config.padTo = 16
        let padded = LogMelFrontend(config: config)
        let x = (0..<16000).map { Float(sin(Double($0) * 0.01)) * 0.1 }
        let plain = frontend.features(x), f = padded.features(x)
        #expect(plain.frames == 101 && f.frames == 112 && f.validFrames == 101)
        #expect(Array(f.values[0..<(101 * 80)]) == plain.values)
        #expect(f.values[(101 * 80)...].allSatisfy { $0 == 0 })
        let exact = padded.features([Float](x[0..<(95 * 160)]))  // 96 frames: no padding
        #expect(exact.frames == 96 && exact.validFrames == 96)
    }

    @Test func layoutAndNPY() throws {
        let f = Features(frames: 2, bands: 3, values: [0, 1, 2, 10, 11, 12])
        #expect(f.bandMajor() == [0, 10, 1, 11, 2, 12])
        #expect(f[1, 2] == 12)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("vani-features-\(UUID()).npy")
        defer { try? FileManager.default.removeItem(at: url) }
        try f.writeNPY(to: url)
        let back = try NPY.read(url)
        #expect(back.shape == [3, 2] && back.values == f.bandMajor())
        try f.writeNPY(to: url, bandMajor: false)
        let timeMajor = try NPY.read(url)
        #expect(timeMajor.shape == [2, 3] && timeMajor.values == f.values)
    }
}
