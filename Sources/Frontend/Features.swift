// The frontend's output: log-mel features, time-major as the encoder reads them.

/// Normalised log-mel features of one utterance, time-major: `values[t * bands + m]`.
public struct Features: Sendable, Equatable {
    /// Number of frames in `values`, including any `padTo` zero frames.
    public var frames: Int
    /// Mel bands per frame (80 for the release).
    public var bands: Int
    /// `[frames, bands]`, row-major.
    public var values: [Float]
    /// Frames computed from audio (`samples / hop + 1`); the frames after it are `padTo` zeros.
    public var validFrames: Int

    public init(frames: Int, bands: Int, values: [Float], validFrames: Int? = nil) {
        precondition(values.count == frames * bands,
                     "Features: \(values.count) values for [\(frames), \(bands)]")
        self.frames = frames
        self.bands = bands
        self.values = values
        self.validFrames = validFrames ?? frames
    }

    /// The value of band `m` at frame `t`.
    public subscript(t: Int, m: Int) -> Float { values[t * bands + m] }

    /// The same features band-major, `[bands, frames]`: NeMo's and the ONNX graph's layout.
    public func bandMajor() -> [Float] {
        var out = [Float](repeating: 0, count: values.count)
        for t in 0..<frames {
            for m in 0..<bands { out[m * frames + t] = values[t * bands + m] }
        }
        return out
    }
}
