// The one thing the service needs from the pipeline: a loaded model that resolves a language
// code once and turns audio file bytes into a Transcript. `Recognizer` is the real one; tests
// plug in a fake with the same shape.

import ASR
import Foundation

/// A loaded speech-recognition model as the HTTP service sees it.
///
/// `transcribe` is synchronous and may run BLAS for seconds: the service calls it only from
/// its own worker threads, never from an event loop or the Swift cooperative pool.
public protocol TranscriptionEngine: Sendable {
    /// Name, languages, decoders and size of the model, for `/health` and `/v1/models`.
    var info: ModelInfo { get }
    /// The language `code` names (checked once, at the door).
    /// - Throws: `.unknownLanguage` unless the model offers it.
    func language(_ code: String) throws(RecognizerError) -> Language
    /// Decodes an audio file's bytes (WAV, FLAC, OGG, MP3, …) and transcribes it.
    /// - Throws: `RecognizerError` (`.audio` with its `AudioError`, `.decoderUnavailable`).
    func transcribe(audio: Data, language: Language, decoder: DecoderKind) throws(RecognizerError) -> Transcript
    /// The same, cut by `segmentation` (nil: the engine's default), `onSegment` seeing each
    /// finished segment in order (for streamed answers); stops between segments once
    /// `isCancelled` says so (the client went away or the deadline passed).
    func transcribe(audio: Data, language: Language, decoder: DecoderKind, segmentation: Segmentation?,
                    onSegment: (@Sendable (SegmentUpdate) -> Void)?,
                    isCancelled: (@Sendable () -> Bool)?) throws(RecognizerError) -> Transcript
}

extension TranscriptionEngine {
    /// Engines without segmentation (test fakes) transcribe whole and report one segment.
    public func transcribe(audio: Data, language: Language, decoder: DecoderKind, segmentation: Segmentation?,
                           onSegment: (@Sendable (SegmentUpdate) -> Void)?,
                           isCancelled: (@Sendable () -> Bool)?) throws(RecognizerError) -> Transcript {
        let transcript = try transcribe(audio: audio, language: language, decoder: decoder)
        onSegment?(SegmentUpdate(index: 0, count: 1, start: 0, end: transcript.duration, text: transcript.text,
                                 tokens: transcript.tokens))
        return transcript
    }
}

extension Recognizer: TranscriptionEngine {}
