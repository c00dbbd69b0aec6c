// The one thing the service needs from the pipeline: a loaded model that resolves a language
// code once, decodes audio file bytes to samples, and turns samples into a Transcript.
// `Recognizer` is the real one; tests plug in a fake with the same shape.
//
// Decoding and transcription are two calls so that the service can look at the samples in
// between: the response cache (ResponseCache.swift) keys on a hash of the decoded samples.

import ASR
import Foundation

/// A loaded speech-recognition model as the HTTP service sees it.
///
/// `decodeAudio` and `transcribe` are synchronous and may run for seconds: the service calls
/// them only from its own worker threads, never from an event loop or the Swift cooperative pool.
public protocol TranscriptionEngine: Sendable {
    /// Name, languages, decoders and size of the model, for `/health` and `/v1/models`.
    var info: ModelInfo { get }
    /// Settings of this engine, other than the weights, that change its answers (long-audio
    /// chunking, device, precision, the default segmentation), as one string for the response
    /// cache's key (a request's own segmentation is keyed separately). Engines whose answers depend on nothing else return "".
    var answerSettings: String { get }
    /// The language `code` names (checked once, at the door).
    /// - Throws: `.unknownLanguage` unless the model offers it.
    func language(_ code: String) throws(RecognizerError) -> Language
    /// Decodes an audio file's bytes (WAV, FLAC, OGG, MP3, …) to validated mono samples at the
    /// model's rate.
    /// - Throws: `.audio` with its `AudioError`.
    func decodeAudio(_ audio: Data) throws(RecognizerError) -> PreparedAudio
    /// Transcribes audio from `decodeAudio(_:)` (validated there, not checked again); its
    /// warnings are the transcript's.
    /// - Throws: `.decoderUnavailable`.
    func transcribe(decoded: PreparedAudio, language: Language, decoder: DecoderKind) throws(RecognizerError) -> Transcript
    /// The same, cut by `segmentation` (nil: the engine's default), `onSegment` seeing each
    /// finished segment in order (for streamed answers); stops between segments once
    /// `isCancelled` says so (the client went away or the deadline passed).
    /// - Throws: `.decoderUnavailable`, `.segmentation`.
    func transcribe(decoded: PreparedAudio, language: Language, decoder: DecoderKind, segmentation: Segmentation?,
                    onSegment: (@Sendable (SegmentUpdate) -> Void)?,
                    isCancelled: (@Sendable () -> Bool)?) throws(RecognizerError) -> Transcript
}

extension TranscriptionEngine {
    /// No settings beyond the weights.
    public var answerSettings: String { "" }

    /// Decodes an audio file's bytes and transcribes them.
    /// - Throws: `RecognizerError` (`.audio` with its `AudioError`, `.decoderUnavailable`).
    public func transcribe(audio: Data, language: Language, decoder: DecoderKind) throws(RecognizerError) -> Transcript {
        try transcribe(decoded: decodeAudio(audio), language: language, decoder: decoder)
    }

    /// Engines without segmentation (test fakes) transcribe whole and report one segment.
    public func transcribe(decoded: PreparedAudio, language: Language, decoder: DecoderKind,
                           segmentation: Segmentation?, onSegment: (@Sendable (SegmentUpdate) -> Void)?,
                           isCancelled: (@Sendable () -> Bool)?) throws(RecognizerError) -> Transcript {
        let transcript = try transcribe(decoded: decoded, language: language, decoder: decoder)
        onSegment?(SegmentUpdate(index: 0, count: 1, start: 0, end: transcript.duration, text: transcript.text,
                                 tokens: transcript.tokens))
        return transcript
    }
}

extension Recognizer: TranscriptionEngine {
    /// The long-audio windows and the device: the same weights answer differently under other
    /// windows, and may differ in the last bits on another device.
    public var answerSettings: String {
        let chunking = options.chunking
        return "chunking=\(chunking.maxWindow)/\(chunking.window)/\(chunking.overlap) device=\(options.device.rawValue)"
            + " precision=\(info.precision?.rawValue ?? "fp32")"
            + " segmentation=\(options.segmentation?.rawValue ?? "auto")"
    }
}
