// What the service answers: the MLflow service's result object, batches of them, and
// OpenAI's transcription objects.

import ASR
import Foundation
import Hummingbird

/// One transcription as `/asr` and `/invocations` return it.
struct TranscriptionResult: Encodable, Sendable {
    struct Token: Encodable, Sendable { var text: String; var start: Double; var end: Double }
    struct Word: Encodable, Sendable { var word: String; var start: Double; var end: Double }

    var text: String
    var language: String
    var decoding: String
    var duration: Double
    var processing_ms: Double
    var tokens: [Token]?
    var words: [Word]?
    /// In batches only: `HIT` when the answer came from the response cache, else `MISS`.
    var cache: String?
    /// `[{"code", "message"}]` when the audio had something to report (a truncated file).
    var warnings: [AudioWarning]?

    init(_ transcript: Transcript, processingMs: Double, timestamps: Bool) {
        text = transcript.text
        language = transcript.language
        decoding = transcript.decoder.rawValue
        duration = millis(transcript.duration)
        processing_ms = (processingMs * 10).rounded() / 10
        warnings = transcript.warnings.isEmpty ? nil : transcript.warnings
        if timestamps {
            tokens = transcript.tokens.map { Token(text: $0.text, start: millis($0.start), end: millis($0.end)) }
            words = SubtitleFormatter.words(from: transcript.tokens).map {
                Word(word: $0.word.word, start: millis($0.word.start), end: millis($0.word.end))
            }
        }
    }
}

/// A batch entry: a result, or the error that item met, in MLflow's error shape.
enum ItemOutcome: Encodable, Sendable {
    case success(TranscriptionResult)
    case failure(APIError)

    func encode(to encoder: any Encoder) throws {
        switch self {
        case .success(let result): try result.encode(to: encoder)
        case .failure(let error): try error.body.encode(to: encoder)
        }
    }
}

struct BatchResponse: Encodable, Sendable { var results: [ItemOutcome] }
struct PredictionsResponse: Encodable, Sendable { var predictions: [ItemOutcome] }

/// Seconds rounded to the millisecond, so JSON shows 1.23 rather than 1.2299999999999999.
func millis(_ seconds: Double) -> Double { (seconds * 1000).rounded() / 1000 }

// MARK: - Health and models

struct HealthResponse: Encodable, Sendable {
    struct Model: Encodable, Sendable {
        var name: String
        var state: String
        var languages: [String]?
        var decoders: [String]?
        var parameters: Int?
        var sample_rate: Int?
        var precision: String?
    }
    struct Queue: Encodable, Sendable { var in_flight: Int; var workers: Int; var capacity: Int }
    /// One entry of `models`: every model the server holds.
    struct Entry: Encodable, Sendable {
        var id: String
        var `default`: Bool
        var state: String
        var name: String?
        var digest: String?
        var file: String?
        var generation: Int?
        var load_seconds: Double?
        var languages: [String]?
        var decoders: [String]?
        var parameters: Int?
        var reload_error: String?
    }
    var status: String
    var model: Model
    var models: [Entry]
    var max_audio_seconds: Double
    var uptime_s: Double
    var version: String
    var queue: Queue
    var error: String?
}

struct ModelList: Encodable, Sendable {
    struct Entry: Encodable, Sendable {
        var id: String
        var object = "model"
        var created: Int
        var owned_by = "vani"
        /// Extension: `sha256:<hex>` of the weights file, once loaded.
        var digest: String?
        /// Extension: the model answering requests that name none.
        var `default`: Bool?
    }
    var object = "list"
    var data: [Entry]
}

// MARK: - OpenAI transcriptions

struct OpenAITextResponse: Encodable, Sendable {
    var text: String
    /// Present when the audio had something to report (a truncated file).
    var warnings: [AudioWarning]?
}

/// OpenAI's `verbose_json`, with only fields this model measures: no `no_speech_prob` (there is
/// no voice-activity detector) and no `compression_ratio` (a Whisper heuristic for runaway
/// repetition that greedy CTC/RNN-T decoding does not need). `temperature` is 0: decoding is
/// greedy; `seek` is 0: segments are on the whole file's time axis.
struct OpenAIVerboseResponse: Encodable, Sendable {
    struct Segment: Encodable, Sendable {
        var id: Int
        var seek = 0
        var start: Double
        var end: Double
        var text: String
        var tokens: [Int]
        var temperature = 0.0
        /// Mean log-probability of the segment's tokens.
        var avg_logprob: Double
    }
    struct Word: Encodable, Sendable { var word: String; var start: Double; var end: Double }
    var task = "transcribe"
    /// The English name in lower case, as OpenAI writes it (`"hindi"`).
    var language: String
    /// The code the model decoded in (`"hi"`).
    var language_code: String
    var duration: Double
    var text: String
    var segments: [Segment]?
    var words: [Word]?
    var warnings: [AudioWarning]?
}

// MARK: - Replies built on worker threads

/// A response body and its type, built off the event loop.
struct Reply: Sendable {
    var status: HTTPResponse.Status = .ok
    var contentType: String
    var body: ByteBuffer
    /// Extra headers (`X-Cache`, `X-Model-Digest`).
    var headers: [String: String] = [:]

    static func json<T: Encodable>(_ value: T) -> Reply {
        Reply(contentType: "application/json", body: JSONBody.encode(value))
    }

    static func text(_ text: String, contentType: String = "text/plain; charset=utf-8") -> Reply {
        Reply(contentType: contentType, body: ByteBuffer(string: text))
    }

    var response: Response {
        var fields = HTTPFields()
        fields[.contentType] = contentType
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) {
            if let field = HeaderName(name) { fields[field] = value }
        }
        return Response(status: status, headers: fields, body: .init(byteBuffer: body))
    }
}
