// One utterance through the road: features → encoder → decoder → transcript, with long audio
// cut into overlapping windows or at pauses (Segmentation.swift).

import Decoding
import Foundation
import Frontend

/// How long audio is cut: audio up to `maxWindow` seconds runs whole (exactly what the released
/// wrapper does); longer audio runs in windows of `window` seconds overlapping by `overlap`,
/// each token kept by the window whose centre region holds its start. The model was trained
/// on 5–25 s clips and drops words on long continuous input (docs/MODEL.md §6).
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
            // Each window keeps from where the previous one stopped keeping: the kept spans tile
            // the timeline even when the last window is pulled back to avoid a sliver.
            let keepFrom = result.last?.1.upperBound ?? 0
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
    /// Transcribes validated samples: cut by `segmentation` (Segmentation.swift), each piece's
    /// features → the backend (encoder and decoder) → tokens kept by their piece, on the whole
    /// file's time axis → text.
    func transcribeValidated(_ samples: [Float], language: Language, decoder: Decoder,
                             warnings: [AudioWarning] = [], segmentation: Segmentation? = nil,
                             onSegment: (@Sendable (SegmentUpdate) -> Void)? = nil,
                             isCancelled: (@Sendable () -> Bool)? = nil) throws(RecognizerError) -> Transcript {
        let pieces = try plan(samples, segmentation: segmentation)
        return transcribePieces(samples, pieces: pieces, language: language, decoder: decoder, warnings: warnings, onSegment: onSegment,
                                isCancelled: isCancelled)
    }

    /// The transcript of audio of `sampleCount` samples from its windows' tokens.
    func transcript(_ sampleCount: Int, windows: [(samples: Range<Int>, keep: Range<Double>)], decoded: [DecodedTokens],
                    language: Language, decoder: Decoder, warnings: [AudioWarning]) -> Transcript {
        let rate = config.frontend.sampleRate
        var tokens: [TokenTiming] = []
        var ids: [Int] = []
        for (window, windowTokens) in zip(windows, decoded) {
            let offset = Double(window.samples.lowerBound) / Double(rate)
            for i in windowTokens.ids.indices {
                let id = windowTokens.ids[i]
                let start = offset + Double(windowTokens.startFrames[i]) * config.frameDuration
                guard window.keep.contains(start) else { continue }
                let end = offset + Double(windowTokens.endFrames[i] + 1) * config.frameDuration
                ids.append(id)
                tokens.append(TokenTiming(text: language.vocabulary.text(of: id), id: id,
                                          start: start, end: end, logProb: windowTokens.logProbs[i]))
            }
        }
        let confidence = tokens.isEmpty ? 0 : tokens.reduce(0) { $0 + Double($1.logProb) } / Double(tokens.count)
        // Transcript clamps token times to the audio: a last frame can reach past the last sample.
        return Transcript(text: language.vocabulary.detokenize(ids), language: language.code, decoder: decoder.kind,
                          duration: Double(sampleCount) / Double(rate), confidence: confidence, tokens: tokens,
                          warnings: warnings)
    }
}
