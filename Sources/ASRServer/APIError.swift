// Errors in the shape MLflow's scoring server uses, so clients of the service we replace keep
// working: `{"error_code": "BAD_REQUEST", "message": "..."}` with a matching HTTP status.

import ASR
import Foundation
import Hummingbird

/// An error answered to a client: an MLflow error code, an HTTP status and a message that says
/// what to do. Messages never carry stack traces or internal paths.
public struct APIError: Error, Sendable, Equatable, CustomStringConvertible {
    /// MLflow's `error_code` values used by the service.
    public enum Code: String, Sendable, Codable {
        case badRequest = "BAD_REQUEST"
        case invalidParameterValue = "INVALID_PARAMETER_VALUE"
        case resourceExhausted = "RESOURCE_EXHAUSTED"
        case internalError = "INTERNAL_ERROR"
        case unauthenticated = "UNAUTHENTICATED"
        case endpointNotFound = "ENDPOINT_NOT_FOUND"
        case methodNotAllowed = "METHOD_NOT_ALLOWED"
        case unsupportedMediaType = "UNSUPPORTED_MEDIA_TYPE"
        case temporarilyUnavailable = "TEMPORARILY_UNAVAILABLE"
        case deadlineExceeded = "DEADLINE_EXCEEDED"
        case resourceDoesNotExist = "RESOURCE_DOES_NOT_EXIST"
        case permissionDenied = "PERMISSION_DENIED"
    }

    /// MLflow's `error_code`.
    public var code: Code
    /// The HTTP status answered.
    public var status: HTTPResponse.Status
    /// What went wrong and what to do about it, for the client.
    public var message: String
    /// Extra response headers (`Retry-After`, `Allow`, `WWW-Authenticate`).
    public var headers: [String: String]

    /// An error with its code, status, message and any extra headers.
    public init(_ code: Code, status: HTTPResponse.Status, _ message: String, headers: [String: String] = [:]) {
        self.code = code; self.status = status; self.message = message; self.headers = headers
    }

    /// `"<status> <code>: <message>"`, for logs.
    public var description: String { "\(status.code) \(code.rawValue): \(message)" }

    // MARK: - The errors the service answers

    static func badJSON(_ why: String) -> APIError {
        APIError(.badRequest, status: .badRequest, "the request body is not valid JSON (\(why)): send a JSON object")
    }
    static func invalid(_ message: String) -> APIError {
        APIError(.invalidParameterValue, status: .badRequest, message)
    }
    static func missing(_ field: String, aliases: [String] = []) -> APIError {
        let names = ([field] + aliases).map { "'\($0)'" }.joined(separator: " or ")
        return invalid("missing field \(names)")
    }
    static func wrongType(_ field: String, expected: String) -> APIError {
        invalid("field '\(field)' must be \(expected)")
    }
    static func unprocessableAudio(_ message: String) -> APIError {
        APIError(.invalidParameterValue, status: .unprocessableContent, message)
    }
    static func bodyTooLarge(limit: Int) -> APIError {
        APIError(.resourceExhausted, status: .contentTooLarge,
                 "the request body exceeds the limit of \(megabytes(limit)) MiB: send shorter audio (the server's operator sets the limit with --max-body-mb)")
    }
    /// The error a declared `Content-Length` decides at once: over the limit (including
    /// lengths too large for any integer, ≥ 2^63), or not a byte count at all; nil when absent
    /// or acceptable.
    static func checkContentLength(_ value: String?, limit: Int) -> APIError? {
        guard let value else { return nil }
        let text = value.trimmingCharacters(in: .whitespaces)
        guard !text.isEmpty, text.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else {
            return APIError(.badRequest, status: .badRequest,
                            "Content-Length '\(clip(text))' is not a byte count: send the body's length in bytes")
        }
        guard let bytes = Int(text), bytes <= limit else { return bodyTooLarge(limit: limit) }
        return nil
    }
    static func uploadTooSlow(bytes: Int, seconds: Double, minimum: Int) -> APIError {
        APIError(.deadlineExceeded, status: .requestTimeout,
                 "the request body is arriving too slowly (\(bytes) bytes in \(formatSeconds(seconds)) s; at least \(minimum / 1024) KiB/s is needed): send it faster")
    }
    static let bodyBudgetSpent = APIError(
        .resourceExhausted, status: .serviceUnavailable,
        "the server is receiving too much audio at once: retry in a few seconds", headers: ["Retry-After": "2"])
    static func unsupportedMediaType(_ got: String, expected: String) -> APIError {
        APIError(.unsupportedMediaType, status: .unsupportedMediaType,
                 "content type '\(clip(got))' is not supported here: send \(expected)")
    }
    static func queueFull(retryAfter: Int) -> APIError {
        APIError(.resourceExhausted, status: .serviceUnavailable,
                 "the server is busy (inference queue full): retry in \(retryAfter) s",
                 headers: ["Retry-After": "\(retryAfter)"])
    }
    static func timeout(seconds: Double) -> APIError {
        APIError(.deadlineExceeded, status: .serviceUnavailable,
                 "the request did not finish within \(formatSeconds(seconds)) s: send shorter audio, or retry when the server is less busy (the server's operator sets the limit with --timeout)",
                 headers: ["Retry-After": "1"])
    }
    static func uploadTimeout(seconds: Double) -> APIError {
        APIError(.deadlineExceeded, status: .requestTimeout,
                 "the request body did not arrive within \(formatSeconds(seconds)) s: send it faster (the server's operator sets the limit with --timeout)")
    }
    static func modelUnavailable(requestID: String) -> APIError {
        APIError(.temporarilyUnavailable, status: .serviceUnavailable,
                 "the model could not be loaded; the server log has the reason (request id \(requestID))",
                 headers: ["Retry-After": "5"])
    }
    static func internalError(requestID: String) -> APIError {
        APIError(.internalError, status: .internalServerError,
                 "internal error; the server log has the details (request id \(requestID))")
    }
    static let unauthenticated = APIError(
        .unauthenticated, status: .unauthorized,
        "missing or wrong API key: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'",
        headers: ["WWW-Authenticate": "Bearer"])
    static func notFound(_ path: String) -> APIError {
        APIError(.endpointNotFound, status: .notFound,
                 "no endpoint at \(clip(path, to: 100)): see /health, /asr, /invocations, /v1/audio/transcriptions")
    }
    static func methodNotAllowed(_ method: String, path: String, allowed: [String]) -> APIError {
        APIError(.methodNotAllowed, status: .methodNotAllowed,
                 "\(clip(method)) is not allowed on \(clip(path, to: 100)): use \(allowed.joined(separator: " or "))",
                 headers: ["Allow": allowed.joined(separator: ", ")])
    }

    /// Maps an error of the pipeline to what the client is told, by case (the audio's by its
    /// `AudioError` case); `nil` for errors that are the server's fault (the caller logs them and
    /// answers 500/503 without details).
    static func from(_ error: RecognizerError) -> APIError? {
        switch error {
        case .unknownLanguage, .decoderUnavailable:
            return invalid(error.description)
        case .audio(let audio):
            switch audio {
            case .tooShort, .tooLong, .nonFiniteSamples, .outOfRange, .noSamples, .textNotAudio:
                // Decodable audio the model cannot take, or text where the file belongs: the
                // message says what to send instead.
                return unprocessableAudio(audio.description)
            case .empty, .notAudio, .malformed, .unsupported, .truncated, .decodeFailed, .noChannels,
                 .tooManyChannels, .badSampleRate, .resampleFailed:
                // The decoder's message already says which formats it reads.
                return unprocessableAudio("the audio could not be decoded: \(audio.description)")
            }
        case .segmentation(let segmentation):
            if case .voiceActivityUnavailable = segmentation { return nil }
            return invalid(error.description)
        case .modelNotFound, .invalidModel, .precisionUnavailable, .deviceUnavailable:
            return nil
        }
    }

    /// What the client is told when the worker pool does not run its request.
    init(_ rejection: InferencePool.Rejection) {
        switch rejection {
        case .queueFull(let retryAfter): self = .queueFull(retryAfter: retryAfter)
        case .deadlineExceeded(let seconds): self = .timeout(seconds: seconds)
        case .cancelled: self = APIError(.badRequest, status: .badRequest, "the client went away")
        case .ticketReused: self = .internalError(requestID: "ticket reused")
        }
    }

    // MARK: - Rendering

    /// The JSON body: `{"error_code": ..., "message": ...}`.
    var body: ErrorBody { ErrorBody(error_code: code.rawValue, message: message) }

    func response(requestID: String) -> Response {
        var fields = HTTPFields()
        fields[.contentType] = "application/json"
        for (name, value) in headers {
            if let field = HeaderName(name) { fields[field] = value }
        }
        return Response(status: status, headers: fields, body: .init(byteBuffer: JSONBody.encode(body)))
    }
}

/// MLflow's error object.
struct ErrorBody: Codable, Sendable, Equatable {
    var error_code: String
    var message: String
}

func megabytes(_ bytes: Int) -> String {
    let mib = Double(bytes) / 1_048_576
    return mib == mib.rounded() ? String(Int(mib)) : String(format: "%.1f", mib)
}

func formatSeconds(_ s: Double) -> String {
    s == s.rounded() ? String(Int(s)) : String(format: "%.1f", s)
}

/// `HTTPField.Name` without importing HTTPTypes (Hummingbird re-exports only `HTTPFields`).
typealias HeaderName = HTTPFields.Element.Name

extension HeaderName {
    static let requestID = HeaderName("X-Request-Id")!
    static let apiKey = HeaderName("X-API-Key")!
    static let retryAfter = HeaderName("Retry-After")!
}
