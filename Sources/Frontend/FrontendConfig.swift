// Settings of the log-mel frontend; stored in the weights file as part of `ModelConfig`.

/// NeMo `AudioToMelSpectrogramPreprocessor` settings as the release uses them (docs/MODEL.md §3).
public struct FrontendConfig: Codable, Sendable, Equatable {
    public var sampleRate: Int = 16000
    public var nFFT: Int = 512
    public var windowLength: Int = 400
    public var hopLength: Int = 160
    public var nMels: Int = 80
    public var preemphasis: Float = 0.97
    /// Added inside the log: 2^-24.
    public var logGuard: Float = 5.960464477539063e-08
    /// Added to the std in per-feature normalisation.
    public var normalizeEpsilon: Float = 1e-5
    /// 0 = no padding; 16 pads the frame count up to a multiple of 16 with zeros.
    public var padTo: Int = 0
    public init() {}
}
