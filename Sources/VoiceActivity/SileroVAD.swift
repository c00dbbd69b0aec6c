// Silero VAD (16 kHz branch) on Vani's tensor code: a learned STFT (a strided conv), four small
// 1-D convolutions, one LSTM cell and a sigmoid, run on 512-sample chunks that each carry the
// previous chunk's last 64 samples as context. The weights come from the silero-vad wheel,
// converted once by Tools/vad/convert_silero.py (Weights/silero_vad.safetensors, MIT licence in
// Weights/SILERO_VAD_LICENSE). docs/VAD.md describes the network and how long audio is cut.
//
// The convolutions of many chunks are independent, so they run as one product per layer over a
// block of chunks; only the LSTM steps chunk by chunk.

import Foundation
import TensorModule
import WeightFormat

/// Errors loading the voice-activity weights; each message ends with what to do.
public enum VoiceActivityError: Error, CustomStringConvertible, Sendable, Equatable {
    /// No file at the path.
    case modelNotFound(path: String)
    /// The file is not Silero VAD weights in Vani's format (the reason).
    case invalidModel(String)

    /// The message, ending with what to do.
    public var description: String {
        switch self {
        case .modelNotFound(let path):
            return "voice-activity weights not found at \(path): run Tools/vad/convert_silero.py or pass --segmentation windows"
        case .invalidModel(let why):
            return "the voice-activity weights are not usable: \(why); re-create them with Tools/vad/convert_silero.py"
        }
    }
}

/// The LSTM state and audio context that carry from one chunk to the next in a stream.
public struct VoiceActivityState: Sendable {
    /// LSTM hidden state [128].
    var h: [Float]
    /// LSTM cell state [128].
    var c: [Float]
    /// The last `context` samples of the previous chunk (zeros before the first).
    var context: [Float]

    /// A fresh state (the start of a stream).
    public init(hidden: Int = SileroVAD.hidden, context: Int = SileroVAD.contextSamples) {
        h = [Float](repeating: 0, count: hidden)
        c = [Float](repeating: 0, count: hidden)
        self.context = [Float](repeating: 0, count: context)
    }
}

/// Silero VAD: one speech probability per 512 samples (32 ms) of 16 kHz audio.
///
/// Immutable once loaded and `Sendable`; the per-stream state is a `VoiceActivityState` owned by
/// the caller.
public final class SileroVAD: Sendable {
    /// Sample rate the network expects.
    public static let sampleRate = 16_000
    /// Samples per chunk (one probability each).
    public static let chunkSamples = 512
    /// Samples of the previous chunk prepended to each chunk.
    public static let contextSamples = 64
    /// LSTM width.
    public static let hidden = 128
    /// Seconds per chunk (0.032).
    public static var chunkDuration: Double { Double(chunkSamples) / Double(sampleRate) }

    static let nFFT = 256, hop = 128, reflectPad = 64, bins = 129
    /// Frames of the learned STFT per chunk: (64 + 512 + 64 − 256) / 128 + 1.
    static let framesPerChunk = 4
    /// Chunks whose convolutions run as one product (bounds scratch to a few MB).
    static let block = 512

    struct Conv { let weight: [Float]; let bias: [Float]; let cout: Int; let cin: Int; let stride: Int }

    let stft: [Float]                  // stft_conv.weight [258, 1, 256]: 129 real rows, 129 imaginary
    let convs: [Conv]                  // conv1…conv4 [cout, cin, 3], kernel 3, padding 1
    let weightIH: [Float]              // lstm_cell.weight_ih [512, 128], gates i, f, g, o
    let weightHH: [Float]              // lstm_cell.weight_hh [512, 128]
    let biasGates: [Float]             // lstm_cell.bias_ih + bias_hh [512]
    let finalWeight: [Float]           // final_conv.weight [1, 128, 1]
    let finalBias: Float               // final_conv.bias [1]

    /// Loads `Weights/silero_vad.safetensors` (or another file written by the converter),
    /// checking every tensor's shape and that none is left unused.
    /// - Throws: `.modelNotFound`, `.invalidModel`.
    public init(contentsOf url: URL) throws(VoiceActivityError) {
        guard FileManager.default.fileExists(atPath: url.path) else { throw .modelNotFound(path: url.path) }
        let archive: WeightsArchive
        do { archive = try WeightsArchive(contentsOf: url) } catch { throw .invalidModel(error.description) }
        guard archive.metadata["vani.voice_activity"] != nil else {
            throw .invalidModel("no vani.voice_activity metadata in \(url.lastPathComponent)")
        }
        func load(_ name: String, _ shape: [Int]) throws(VoiceActivityError) -> [Float] {
            do { return try archive.floats(name, shape: shape).array } catch { throw .invalidModel(error.description) }
        }
        stft = try load("stft_conv.weight", [2 * Self.bins, 1, Self.nFFT])
        let layers = [(128, 129, 1), (64, 128, 2), (64, 64, 2), (128, 64, 1)]
        var convs: [Conv] = []
        for (i, (cout, cin, stride)) in layers.enumerated() {
            convs.append(Conv(weight: try load("conv\(i + 1).weight", [cout, cin, 3]),
                              bias: try load("conv\(i + 1).bias", [cout]), cout: cout, cin: cin, stride: stride))
        }
        self.convs = convs
        weightIH = try load("lstm_cell.weight_ih", [4 * Self.hidden, Self.hidden])
        weightHH = try load("lstm_cell.weight_hh", [4 * Self.hidden, Self.hidden])
        let bih = try load("lstm_cell.bias_ih", [4 * Self.hidden])
        let bhh = try load("lstm_cell.bias_hh", [4 * Self.hidden])
        biasGates = zip(bih, bhh).map { $0 + $1 }
        finalWeight = try load("final_conv.weight", [1, Self.hidden, 1])
        finalBias = try load("final_conv.bias", [1])[0]
        let unused = archive.unusedNames()
        guard unused.isEmpty else { throw .invalidModel("unused tensors \(unused)") }
    }

    /// The weights used when none are named: `VANI_VAD_MODEL`, else
    /// `Weights/silero_vad.safetensors` in the working directory or above the executable.
    public static func defaultModelURL(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        BundledWeights.url("Weights/silero_vad.safetensors", environmentKey: "VANI_VAD_MODEL", environment: environment)
    }

    // MARK: - Whole audio

    /// One speech probability per 512-sample chunk of `samples` (16 kHz mono), the last partial
    /// chunk padded with zeros, as Silero's own wrapper computes them.
    public func probabilities(_ samples: [Float]) -> [Float] {
        var state = VoiceActivityState()
        let chunk = Self.chunkSamples
        var out: [Float] = []
        out.reserveCapacity((samples.count + chunk - 1) / chunk)
        samples.withUnsafeBufferPointer { buffer in
            var start = 0
            while start + chunk <= buffer.count {
                let n = min(Self.block, (buffer.count - start) / chunk)
                out += process(buffer.baseAddress! + start, chunks: n, state: &state)
                start += n * chunk
            }
            if start < buffer.count {
                var last = [Float](repeating: 0, count: chunk)
                for i in start..<buffer.count { last[i - start] = buffer[i] }
                out += last.withUnsafeBufferPointer { process($0.baseAddress!, chunks: 1, state: &state) }
            }
        }
        return out
    }

    // MARK: - Streaming

    /// Probabilities of `chunks` consecutive 512-sample chunks starting at `samples`, carrying
    /// `state` (LSTM and context) across calls.
    public func process(_ samples: UnsafePointer<Float>, chunks: Int, state: inout VoiceActivityState) -> [Float] {
        if chunks == 0 { return [] }
        let chunk = Self.chunkSamples, ctx = Self.contextSamples
        let width = ctx + chunk + Self.reflectPad                              // 640 samples per chunk
        let frames = chunks * Self.framesPerChunk
        // Each chunk's input: context, chunk, then a reflection of its last samples (PyTorch's
        // "reflect" pad: x[n-2], x[n-3], …).
        var input = [Float](repeating: 0, count: chunks * width)               // (chunks, 640)
        input.withUnsafeMutableBufferPointer { x in
            for j in 0..<chunks {
                let row = x.baseAddress! + j * width
                if j == 0 {
                    for i in 0..<ctx { row[i] = state.context[i] }
                } else {
                    for i in 0..<ctx { row[i] = samples[j * chunk - ctx + i] }
                }
                for i in 0..<chunk { row[ctx + i] = samples[j * chunk + i] }
                let n = ctx + chunk
                for i in 0..<Self.reflectPad { row[n + i] = row[n - 2 - i] }
            }
        }
        for i in 0..<ctx { state.context[i] = samples[chunks * chunk - ctx + i] }

        // Learned STFT: frame t of chunk j is input[j, t·128 ..< t·128 + 256], copied out so
        // that all frames of the block are one product.
        var framed = [Float](repeating: 0, count: frames * Self.nFFT)          // (frames, 256)
        for j in 0..<chunks {
            for t in 0..<Self.framesPerChunk {
                let src = j * width + t * Self.hop, dst = (j * Self.framesPerChunk + t) * Self.nFFT
                for k in 0..<Self.nFFT { framed[dst + k] = input[src + k] }
            }
        }
        var spectrum = [Float](repeating: 0, count: frames * 2 * Self.bins)    // (frames, 258)
        var magnitude = [Float](repeating: 0, count: frames * Self.bins)       // (frames, 129)
        framed.withUnsafeBufferPointer { x in
            stft.withUnsafeBufferPointer { w in
                spectrum.withUnsafeMutableBufferPointer { s in
                    linear(x.baseAddress!, rows: frames, inFeatures: Self.nFFT, weight: w.baseAddress!, bias: nil,
                           outFeatures: 2 * Self.bins, into: s.baseAddress!)
                }
            }
        }
        for f in 0..<frames {
            for b in 0..<Self.bins {
                let re = spectrum[f * 2 * Self.bins + b], im = spectrum[f * 2 * Self.bins + Self.bins + b]
                magnitude[f * Self.bins + b] = (re * re + im * im).squareRoot()
            }
        }

        // Four convolutions (kernel 3, padding 1) with ReLU; time 4 → 4 → 2 → 1 → 1 per chunk.
        var x = magnitude, steps = Self.framesPerChunk
        for conv in convs {
            (x, steps) = convolve(x, chunks: chunks, steps: steps, conv: conv)
        }
        // x: (chunks, 128), one vector per chunk.

        // LSTM cell, chunk by chunk: the input part of the gates as one product.
        let hdim = Self.hidden
        var gates = [Float](repeating: 0, count: chunks * 4 * hdim)            // (chunks, 512)
        x.withUnsafeBufferPointer { xb in
            weightIH.withUnsafeBufferPointer { w in
                biasGates.withUnsafeBufferPointer { bias in
                    gates.withUnsafeMutableBufferPointer { g in
                        linear(xb.baseAddress!, rows: chunks, inFeatures: hdim, weight: w.baseAddress!,
                               bias: bias.baseAddress!, outFeatures: 4 * hdim, into: g.baseAddress!)
                    }
                }
            }
        }
        var probabilities = [Float](repeating: 0, count: chunks)
        var step = [Float](repeating: 0, count: 4 * hdim)
        for j in 0..<chunks {
            for i in 0..<(4 * hdim) { step[i] = gates[j * 4 * hdim + i] }
            state.h.withUnsafeBufferPointer { h in
                weightHH.withUnsafeBufferPointer { w in
                    step.withUnsafeMutableBufferPointer { s in
                        sgemm(transB: true, m: 1, n: 4 * hdim, k: hdim, a: h.baseAddress!, lda: hdim,
                              b: w.baseAddress!, ldb: hdim, beta: 1, c: s.baseAddress!, ldc: 4 * hdim)
                    }
                }
            }
            var logit = finalBias
            for i in 0..<hdim {
                let input = Self.logistic(step[i]), forget = Self.logistic(step[hdim + i])
                let cell = tanhf(step[2 * hdim + i]), output = Self.logistic(step[3 * hdim + i])
                let c = forget * state.c[i] + input * cell
                let h = output * tanhf(c)
                state.c[i] = c
                state.h[i] = h
                logit += finalWeight[i] * max(0, h)
            }
            probabilities[j] = Self.logistic(logit)
        }
        return probabilities
    }

    @inline(__always)
    static func logistic(_ x: Float) -> Float { 1 / (1 + expf(-x)) }

    /// One Conv1d (kernel 3, padding 1, `conv.stride`) + bias + ReLU over each chunk's own
    /// `steps` time steps (zero padding at each chunk's edges), time-major: (chunks·steps, cin)
    /// → (chunks·steps', cout).
    func convolve(_ input: [Float], chunks: Int, steps: Int, conv: Conv) -> ([Float], Int) {
        let outSteps = convOutputSize(steps, kernel: 3, stride: conv.stride, padding: 1)
        let rows = chunks * outSteps, k = conv.cin * 3
        var col = [Float](repeating: 0, count: rows * k)                      // (rows, cin·3)
        for j in 0..<chunks {
            for t in 0..<outSteps {
                let row = (j * outSteps + t) * k
                for tap in 0..<3 {
                    let s = t * conv.stride + tap - 1
                    guard s >= 0, s < steps else { continue }
                    let src = (j * steps + s) * conv.cin
                    for ci in 0..<conv.cin { col[row + ci * 3 + tap] = input[src + ci] }
                }
            }
        }
        var output = [Float](repeating: 0, count: rows * conv.cout)           // (rows, cout)
        col.withUnsafeBufferPointer { c in
            conv.weight.withUnsafeBufferPointer { w in
                conv.bias.withUnsafeBufferPointer { b in
                    output.withUnsafeMutableBufferPointer { o in
                        linear(c.baseAddress!, rows: rows, inFeatures: k, weight: w.baseAddress!,
                               bias: b.baseAddress!, outFeatures: conv.cout, into: o.baseAddress!)
                        relu(o.baseAddress!, count: rows * conv.cout)
                    }
                }
            }
        }
        return (output, outSteps)
    }
}
