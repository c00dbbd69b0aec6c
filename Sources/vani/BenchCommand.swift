// `vani bench`: quick speed numbers without Python — frontend, encoder, decoders and sgemm at
// the model's shapes, medians over several runs after a warm-up.

import ArgumentParser
import ASR
import Audio
import ConformerModel
import Foundation
import TensorModule

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time the pipeline stages on synthetic audio and sgemm at the model's shapes.")

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .long, help: "Seconds of audio per run (repeat the option for several lengths).")
    var seconds: [Double] = [10]

    @Option(name: .long, help: "Audio files to time instead of synthetic audio (repeat the option).")
    var audio: [String] = []

    @Option(name: .long, help: "Encoder frames for the one-layer micro-benchmark (125 = 10 s).")
    var layerFrames: Int = 125

    @Option(name: .long, help: "Timed runs per length (after one warm-up run).")
    var runs: Int = 5

    @Option(name: .shortAndLong, help: "Language for the decoders.")
    var language: String?

    @Flag(name: .long, help: "Skip the RNN-T decoder (time the encoder and CTC only).")
    var skipRnnt = false

    @Flag(name: .long, help: "Print JSON lines instead of a table.")
    var json = false

    @Flag(name: .long, help: "Also time sgemm at the encoder's shapes (the achievable GEMM rate).")
    var sgemm = false

    @Flag(name: .long, help: "Also split the encoder's time into its parts (weight products, attention, norms, convolutions, element-wise).")
    var stages = false

    @Option(name: .long, help: "Time the encoder on batches of this many utterances of each length against as many single runs (repeat the option for several sizes, e.g. --batch 1 --batch 4 --batch 8 --batch 16); only this table is printed.")
    var batch: [Int] = []

    func validate() throws {
        guard batch.allSatisfy({ $0 >= 1 }) else { throw ValidationError("--batch must be at least 1") }
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
    }

    func run() throws {
        // Process-wide here, deliberately: the layer and sgemm micro-benchmarks run outside the
        // recognizer and must use the same thread count as its forward passes.
        if modelOptions.threads > 0 { BLAS.setThreads(modelOptions.threads) }
        let loadStart = DispatchTime.now().uptimeNanoseconds
        let recognizer = try modelOptions.load()
        let loadMs = Double(DispatchTime.now().uptimeNanoseconds - loadStart) / 1e6
        let config = recognizer.config
        let c = config.encoder
        let ctc: Decoder, rnnt: Decoder?
        do {
            let resolved = try recognizer.language(language ?? recognizer.info.languages.first ?? "")
            ctc = try recognizer.decoder(.ctc, for: resolved)
            rnnt = skipRnnt ? nil : try? recognizer.decoder(.rnnt, for: resolved)
        } catch { throw CLIError(error.description) }
        if !json {
            print("model \(config.name): d_model \(c.dModel), \(c.layers) layers, \(recognizer.info.parameters) parameters, loaded in \(String(format: "%.1f", loadMs)) ms")
            if let probe = recognizer.deviceProbeSeconds {
                print("device \(modelOptions.device.rawValue) → \(recognizer.backend.device.rawValue): CUDA probe \(String(format: "%.2f", probe * 1000)) ms\(recognizer.deviceNote.map { "; \($0)" } ?? "")")
            }
            print("OpenBLAS core \(BLAS.coreName), \(BLAS.threads) thread(s) per forward pass (OpenBLAS itself \(BLAS.openBLASThreads)), device \(recognizer.backend.device.rawValue), precision \(recognizer.precision.rawValue)\(recognizer.precision.isNative ? "" : " (portable path)"); \(runs) runs after 1 warm-up; medians")
            print("")
            if batch.isEmpty {
                print("| audio s | frontend ms | encoder ms | CTC ms | RNN-T ms | end-to-end ms | RTF | encoder GFLOP/s |")
                print("|---:|---:|---:|---:|---:|---:|---:|---:|")
            }
        }
        let rate = config.frontend.sampleRate
        var inputs: [(Double, [Float])] = []
        for file in audio {
            guard let data = FileManager.default.contents(atPath: file) else { throw CLIError("cannot read \(file)") }
            do {
                let samples = try AudioDecoder.load(data, sampleRate: rate)
                inputs.append((Double(samples.count) / Double(rate), samples))
            } catch { throw CLIError("\(file): \(error)") }
        }
        if audio.isEmpty {
            inputs = seconds.map { ($0, Self.syntheticSpeechLikeSignal(seconds: $0, rate: rate)) }
        }
        if !batch.isEmpty {
            benchBatches(recognizer, inputs: inputs)
            return
        }
        for (length, samples) in inputs {
            var times: [String: [Double]] = [:]
            for run in 0...runs {
                var t0 = DispatchTime.now().uptimeNanoseconds
                func lap(_ name: String) {
                    let t1 = DispatchTime.now().uptimeNanoseconds
                    if run > 0 { times[name, default: []].append(Double(t1 - t0) / 1e6) }
                    t0 = t1
                }
                let start = t0
                let features = recognizer.features(samples); lap("frontend")
                let encoded = recognizer.encode(features); lap("encoder")
                _ = recognizer.decode(encoded, decoder: ctc); lap("ctc")
                if let rnnt { _ = recognizer.decode(encoded, decoder: rnnt) }
                lap("rnnt")
                if run > 0 { times["total", default: []].append(Double(t0 - start) / 1e6) }
            }
            let med = times.mapValues(Self.median)
            let frames = recognizer.model.encoder.outputLength(samples.count / config.frontend.hopLength + 1)
            let gflop = c.flops(frames: frames) / 1e9
            let encoderMs = med["encoder"] ?? 0
            let e2e = (med["frontend"] ?? 0) + encoderMs + (med["ctc"] ?? 0)
            let rtf = e2e / 1000 / length
            if json {
                let row: [String: Double] = ["seconds": length, "load_ms": loadMs, "peak_rss_mb": Self.peakRSSMegabytes(),
                                             "threads": Double(BLAS.threads), "precision_bits": Double(Self.bits(recognizer.precision)), "frontend_ms": med["frontend"] ?? 0, "encoder_ms": encoderMs,
                                             "ctc_ms": med["ctc"] ?? 0, "rnnt_ms": med["rnnt"] ?? 0, "end_to_end_ctc_ms": e2e,
                                             "rtf": rtf, "encoder_gflops": gflop / (encoderMs / 1000), "encoder_gflop": gflop]
                let data = try JSONSerialization.data(withJSONObject: row, options: [.sortedKeys])
                print(String(decoding: data, as: UTF8.self))
            } else {
                print(String(format: "| %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.4f | %.0f |", length,
                             med["frontend"] ?? 0, encoderMs, med["ctc"] ?? 0, med["rnnt"] ?? 0, e2e, rtf,
                             gflop / (encoderMs / 1000)))
            }
        }
        if stages { benchStages(recognizer, inputs: inputs) }
        benchLayer(recognizer.model.encoder, frames: layerFrames)
        let longest = inputs.map { $0.1.count }.max() ?? 16000
        if sgemm { try benchSgemm(c, frames: recognizer.model.encoder.outputLength(longest / config.frontend.hopLength + 1)) }
    }

    /// The encoder on batches of `batch` sizes against as many single runs of the same utterance,
    /// the sizes alternated within each round (the machine's load drifts; every size sees it
    /// alike); min and median over `runs` rounds after a warm-up.
    func benchBatches(_ recognizer: Recognizer, inputs: [(Double, [Float])]) {
        if !json {
            print("encoder on batches (the weight products over all utterances' frames at once) vs one utterance at a time; \(runs) rounds after 1 warm-up, sizes alternated")
            print("")
            print("| audio s | batch | batched ms (min / median) | singles ms (min / median) | ms per utterance | audio s per s | speed-up (medians) |")
            print("|---:|---:|---:|---:|---:|---:|---:|")
        }
        for (length, samples) in inputs {
            let features = recognizer.features(samples)
            var batched: [Int: [Double]] = [:], singles: [Int: [Double]] = [:]
            for round in 0...runs {
                let sizes = round % 2 == 0 ? batch : batch.reversed()
                for n in sizes {
                    let copies = Array(repeating: features, count: n)
                    var t0 = DispatchTime.now().uptimeNanoseconds
                    _ = recognizer.backend.encode(copies)
                    var t1 = DispatchTime.now().uptimeNanoseconds
                    if round > 0 { batched[n, default: []].append(Double(t1 - t0) / 1e6) }
                    t0 = DispatchTime.now().uptimeNanoseconds
                    for f in copies { _ = recognizer.backend.encode([f]) }
                    t1 = DispatchTime.now().uptimeNanoseconds
                    if round > 0 { singles[n, default: []].append(Double(t1 - t0) / 1e6) }
                }
            }
            for n in batch {
                let b = batched[n] ?? [], s = singles[n] ?? []
                let (bMin, bMed, sMin, sMed) = (b.min() ?? 0, Self.median(b), s.min() ?? 0, Self.median(s))
                let throughput = Double(n) * length / (bMed / 1000)
                if json {
                    let row: [String: Double] = ["batch_seconds": length, "batch": Double(n), "batched_ms_min": bMin,
                                                 "batched_ms_median": bMed, "singles_ms_min": sMin, "singles_ms_median": sMed,
                                                 "audio_seconds_per_second": throughput, "speedup": sMed / bMed,
                                                 "threads": Double(BLAS.threads)]
                    if let data = try? JSONSerialization.data(withJSONObject: row, options: [.sortedKeys]) {
                        print(String(decoding: data, as: UTF8.self))
                    }
                } else {
                    print(String(format: "| %.1f | %d | %.1f / %.1f | %.1f / %.1f | %.2f | %.1f | %.2f× |", length, n, bMin, bMed,
                                 sMin, sMed, bMed / Double(n), throughput, sMed / bMed))
                }
            }
        }
    }

    /// Bits per weight of a precision (for the JSON rows, which hold numbers only).
    static func bits(_ p: Precision) -> Int {
        switch p {
        case .fp32, .tf32: return 32
        case .bf16: return 16
        case .int8: return 8
        }
    }

    /// Where the encoder's time goes, per input: each part's median over the runs and its share.
    func benchStages(_ recognizer: Recognizer, inputs: [(Double, [Float])]) {
        for (length, samples) in inputs {
            let features = recognizer.features(samples)
            var perRun: [[String: Double]] = []
            for run in 0...runs {
                let clock = ConformerEncoder.StageClock()
                let encoder = recognizer.model.encoder
                _ = features.values.withUnsafeBufferPointer {
                    encoder.forward(features: $0.baseAddress!, frames: features.frames,
                                    validFrames: features.validFrames, clock: clock)
                }
                if run > 0 { perRun.append(clock.nanoseconds.mapValues { Double($0) / 1e6 }) }
            }
            let parts = Set(perRun.flatMap(\.keys)).sorted()
            let med = Dictionary(uniqueKeysWithValues: parts.map { p in (p, Self.median(perRun.map { $0[p] ?? 0 })) })
            let total = med.values.reduce(0, +)
            if json {
                var row: [String: Double] = ["stages_seconds": length, "stages_total_ms": total]
                for (p, ms) in med { row["stage " + p] = ms }
                if let data = try? JSONSerialization.data(withJSONObject: row, options: [.sortedKeys]) {
                    print(String(decoding: data, as: UTF8.self))
                }
            } else {
                print("")
                print(String(format: "encoder parts, %.1f s of audio, precision %@ (medians, ms):", length,
                             recognizer.precision.rawValue))
                print("| part | ms | share |")
                print("|---|---:|---:|")
                for (p, ms) in med.sorted(by: { $0.value > $1.value }) {
                    print(String(format: "| %@ | %.1f | %.1f %% |", p, ms, 100 * ms / max(total, 1e-9)))
                }
                print(String(format: "| total | %.1f | |", total))
            }
        }
    }

    /// One Conformer layer on `frames` encoder frames.
    func benchLayer(_ encoder: ConformerEncoder, frames t: Int) {
        let x = Tensor(zeros: [t, encoder.config.dModel])
        var times: [Double] = []
        for run in 0...runs {
            for i in 0..<x.count { x.pointer[i] = Float((i * 7919) % 1000) / 1000 - 0.5 }
            let t0 = DispatchTime.now().uptimeNanoseconds
            encoder.forwardLayer(0, x: x.pointer, frames: t)
            if run > 0 { times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6) }
        }
        var one = encoder.config
        one.layers = 1
        let gflop = one.flops(frames: t) / 1e9
        let ms = Self.median(times)
        if json {
            print("{\"layer_frames\": \(t), \"layer_ms\": \(String(format: "%.3f", ms)), \"layer_gflops\": \(String(format: "%.1f", gflop / (ms / 1000)))}")
        } else {
            print(String(format: "one Conformer layer at T=%d: %.2f ms, %.0f GFLOP/s", t, ms, gflop / (ms / 1000)))
        }
    }

    /// sgemm GFLOP/s at the encoder's own shapes (x[T, in] · Wᵀ, W [out, in]), the rate an
    /// encoder built on BLAS can reach at best.
    func benchSgemm(_ c: EncoderConfig, frames t: Int) throws {
        let shapes = [(c.dModel, c.ffDim), (c.ffDim, c.dModel), (c.dModel, c.dModel), (c.dModel, 2 * c.dModel)]
        var totalFlop = 0.0, totalSeconds = 0.0
        for (k, n) in shapes {
            let x = Tensor(zeros: [t, k]), w = Tensor(zeros: [n, k]), y = Tensor(zeros: [t, n])
            for i in 0..<x.count { x.pointer[i] = Float(i % 7) * 0.1 }
            for i in 0..<w.count { w.pointer[i] = Float(i % 5) * 0.01 }
            func time() -> Double {
                var times: [Double] = []
                for run in 0...runs {
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    linear(x.pointer, rows: t, inFeatures: k, weight: w.pointer, bias: nil, outFeatures: n, into: y.pointer)
                    if run > 0 { times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9) }
                }
                return Self.median(times)
            }
            let m = time()
            let openBLAS = BLAS.withOpenBLASOnly { time() }
            let flop = 2.0 * Double(t * k * n)
            totalFlop += flop; totalSeconds += m
            if json {
                print("{\"sgemm\": [\(t), \(k), \(n)], \"gflops\": \(String(format: "%.1f", flop / m / 1e9)), \"openblas_gflops\": \(String(format: "%.1f", flop / openBLAS / 1e9))}")
            } else {
                print(String(format: "sgemm T=%d in=%d out=%d: %.2f ms, %.0f GFLOP/s (OpenBLAS alone: %.2f ms, %.0f GFLOP/s)",
                             t, k, n, m * 1e3, flop / m / 1e9, openBLAS * 1e3, flop / openBLAS / 1e9))
            }
        }
        if json {
            print("{\"sgemm_mix_gflops\": \(String(format: "%.1f", totalFlop / totalSeconds / 1e9))}")
        } else {
            print(String(format: "sgemm at the encoder's shapes: %.0f GFLOP/s", totalFlop / totalSeconds / 1e9))
        }
    }

    static func peakRSSMegabytes() -> Double {
        // VmHWM starts afresh at exec; ru_maxrss keeps the parent's high-water mark across
        // fork + exec (a Python runner that imported torch made every child report its size).
        if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
           let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
           let kb = Double(line.split(separator: " ").dropFirst().first ?? "") {
            return kb / 1024
        }
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss) / 1024
    }

    static func median(_ xs: [Double]) -> Double {
        let s = xs.sorted()
        return s.isEmpty ? 0 : (s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2)
    }

    /// A deterministic signal with speech-like energy: gliding harmonics plus noise, in [-1, 1].
    static func syntheticSpeechLikeSignal(seconds: Double, rate: Int) -> [Float] {
        let n = max(Int(seconds * Double(rate)), 400)
        var state: UInt64 = 0x9E3779B97F4A7C15
        return (0..<n).map { i in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let noise = Float(Int64(bitPattern: state >> 11) % 2000) / 2000 * 0.05
            let time = Double(i) / Double(rate)
            let f0 = 120 + 40 * sin(2 * .pi * 0.5 * time)
            var v = 0.0
            for h in 1...5 { v += sin(2 * .pi * f0 * Double(h) * time) / Double(h) }
            return Float(0.2 * v * (0.6 + 0.4 * sin(2 * .pi * 3 * time))) + noise
        }
    }
}
