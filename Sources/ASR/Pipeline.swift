// One utterance through the road: features → encoder → decoder → transcript, with long audio
// cut into overlapping windows.

import ConformerModel
import Decoding
import Foundation
import Frontend
import TensorModule

/// How long audio is cut: audio up to `maxWindow` seconds runs whole (exactly what the released
/// wrapper does); longer audio runs in windows of `window` seconds overlapping by `overlap`,
/// each token kept by the window whose centre region holds its start. The model was trained
/// on 5–25 s clips and drops words on long continuous input (contract §6).
public struct ChunkingPolicy: Sendable, Equatable {
    /// Longest audio (seconds) run whole.
    public var maxWindow: Double = 30
    /// Window length (seconds) for longer audio.
    public var window: Double = 20
    /// Overlap (seconds) between consecutive windows.
    public var overlap: Double = 4
    /// Memberwise initialiser.
    public init() {}

    /// Sample ranges of the windows for `count` samples at `rate`, and the time span [from, to)
    /// whose tokens each window keeps.
    public func windows(count: Int, rate: Int) -> [(samples: Range<Int>, keep: Range<Double>)] {
        let total = Double(count) / Double(rate)
        if total <= maxWindow { return [(0..<count, 0..<Double.infinity)] }
        let step = window - overlap
        var result: [(Range<Int>, Range<Double>)] = []
        var start = 0.0
        while true {
            let end = min(start + window, total)
            let isLast = end >= total
            let keepFrom = result.isEmpty ? 0 : start + overlap / 2
            let keepTo = isLast ? Double.infinity : end - overlap / 2
            let lo = Int(start * Double(rate)), hi = isLast ? count : Int(end * Double(rate))
            result.append((lo..<hi, keepFrom..<keepTo))
            if isLast { break }
            start += step
            // Avoid a sliver of a last window: stretch the previous one instead.
            if total - start < overlap + 1 { start = max(0, total - window) }
        }
        return result
    }
}

extension Recognizer {
    /// Transcribes checked samples (finite, long enough, within the limit).
    func transcribeOne(_ samples: [Float], language: String, decoder: DecoderKind) -> Transcript {
        let rate = config.frontend.sampleRate
        let windows = options.chunking.windows(count: samples.count, rate: rate)
        let vocabulary = Vocabulary(pieces: config.languages[language]!.vocabulary)
        var tokens: [TokenTiming] = []
        var ids: [Int] = []
        for window in windows {
            let offset = Double(window.samples.lowerBound) / Double(rate)
            let piece = windows.count == 1 ? samples : Array(samples[window.samples])
            let decoded = decode(piece, language: language, decoder: decoder)
            for i in decoded.ids.indices {
                let start = offset + Double(decoded.startFrames[i]) * config.frameDuration
                guard window.keep.contains(start) else { continue }
                let end = offset + Double(decoded.endFrames[i] + 1) * config.frameDuration
                ids.append(decoded.ids[i])
                tokens.append(TokenTiming(text: vocabulary.text(of: decoded.ids[i]), id: decoded.ids[i],
                                          start: start, end: end, logProb: decoded.logProbs[i]))
            }
        }
        let confidence = tokens.isEmpty ? 0 : tokens.reduce(0) { $0 + Double($1.logProb) } / Double(tokens.count)
        return Transcript(text: vocabulary.detokenize(ids), language: language, decoder: decoder,
                          duration: Double(samples.count) / Double(rate), confidence: confidence, tokens: tokens)
    }

    /// Features → encoder → the chosen decoder for one window.
    func decode(_ samples: [Float], language: String, decoder: DecoderKind) -> DecodedTokens {
        let features = frontend.features(samples)
        let encoded = encode(features)
        let frames = encoded.shape[0]
        switch decoder {
        case .ctc:
            let entry = config.languages[language]!
            let logProbs = model.ctc.logProbs(encoded.pointer, frames: frames,
                                              blockStart: entry.blockStart, blockSize: entry.blockSize)
            return CTCGreedy.decode(logProbs: logProbs.pointer, frames: frames, classes: entry.blockSize + 1,
                                    blank: entry.blockSize)
        case .rnnt:
            return RNNTGreedy.decode(transducer: model.transducer!, encoded: encoded.pointer, frames: frames,
                                     language: language)
        }
    }

    /// The encoder output [T', d] for features (trailing `pad_to` frames are cut before the layers).
    public func encode(_ features: Features) -> Tensor {
        features.values.withUnsafeBufferPointer {
            model.encoder.forward(features: $0.baseAddress!, frames: features.frames,
                                  validFrames: features.validFrames)
        }
    }

    /// Features for samples, with this model's frontend settings.
    public func features(_ samples: [Float]) -> Features { frontend.features(samples) }
}
