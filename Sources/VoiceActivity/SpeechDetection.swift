// From speech probabilities to speech regions: a two-threshold (hysteresis) detector in the
// manner of Silero's own `get_speech_timestamps`, in seconds, for cutting long audio at pauses
// (ASR's segmentation) and for turn detection in live transcription (docs/VAD.md).

/// Settings that turn per-chunk speech probabilities into speech regions.
public struct SpeechDetection: Sendable, Equatable {
    /// A chunk at or above this probability starts (or continues) speech.
    public var threshold: Float = 0.5
    /// Speech ends only where the probability falls below this (Silero: threshold − 0.15).
    public var releaseThreshold: Float = 0.35
    /// Regions shorter than this (seconds) are dropped as clicks and breaths.
    public var minSpeech: Double = 0.25
    /// A pause shorter than this (seconds) does not end a region.
    public var minSilence: Double = 0.5
    /// Seconds of audio kept on each side of a region: the demo model was trained on clips with
    /// 0.1 s of silence around the words, and 0.1 s measured best on the long-form set
    /// (Tools/training/RESULTS.md, "Long-form audio").
    public var padding: Double = 0.1

    /// The defaults above.
    public init() {}

    /// Speech regions (seconds from the start, padded, merged where the padding overlaps,
    /// clamped to [0, `duration`]) of probabilities computed every `chunkDuration` seconds.
    public func regions(_ probabilities: [Float], chunkDuration: Double = SileroVAD.chunkDuration,
                        duration: Double) -> [Range<Double>] {
        var raw: [Range<Double>] = []
        var start: Int?           // chunk where the current region started
        var silentSince: Int?     // first chunk below the release threshold inside it
        let minSilenceChunks = Int((minSilence / chunkDuration).rounded(.up))
        for (i, p) in probabilities.enumerated() {
            if p >= threshold {
                if start == nil { start = i }
                silentSince = nil
            } else if let s = start, p < releaseThreshold {
                if silentSince == nil { silentSince = i }
                if i - silentSince! + 1 >= minSilenceChunks {
                    raw.append(Double(s) * chunkDuration..<Double(silentSince!) * chunkDuration)
                    start = nil; silentSince = nil
                }
            }
        }
        if let s = start {
            raw.append(Double(s) * chunkDuration..<Double(silentSince ?? probabilities.count) * chunkDuration)
        }
        var merged: [Range<Double>] = []
        for region in raw where region.upperBound - region.lowerBound >= minSpeech {
            let padded = max(0, region.lowerBound - padding)..<min(duration, region.upperBound + padding)
            guard padded.lowerBound < padded.upperBound else { continue }
            if let last = merged.last, padded.lowerBound <= last.upperBound {
                merged[merged.count - 1] = last.lowerBound..<max(last.upperBound, padded.upperBound)
            } else {
                merged.append(padded)
            }
        }
        return merged
    }
}
