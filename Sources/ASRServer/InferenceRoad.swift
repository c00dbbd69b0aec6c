// The road every inference request takes, whatever its API family:
// admission (503 when the queue is full) → body collected up to the limit (413) and within the
// timeout (408) → a worker thread parses the body, resolves the language once, loads the model
// if needed and transcribes → the reply is written back on the event loop.

import ASR
import Foundation
import Hummingbird
import Logging

extension ASRService {
    /// The body types an endpoint accepts.
    enum BodyKind { case json, multipart }

    /// What a worker needs to know about the request it serves.
    struct Scope: Sendable {
        var requestID: String
        var logger: Logger
        var contentType: String
    }

    /// A route's work on a worker thread: the whole body in, a reply or the client's error out.
    typealias Work = @Sendable (ByteBuffer, Scope, InferencePool.Deadline) throws(APIError) -> Reply

    /// Admission, body, worker, reply; see the file header.
    func infer(_ request: Request, _ context: VaniRequestContext, accepting kind: BodyKind,
               _ work: @escaping Work) async throws -> Response {
        let contentType = request.headers[.contentType] ?? ""
        try checkContentType(contentType, kind: kind)
        if let length = request.headers[.contentLength].flatMap(Int.init), length > configuration.maxBodyBytes {
            throw APIError.bodyTooLarge(limit: configuration.maxBodyBytes)
        }
        let ticket = try pool.admit()
        defer { ticket.releaseIfUnsubmitted() }
        let body = try await collectBody(request)
        let scope = Scope(requestID: context.requestID, logger: context.logger, contentType: contentType)
        let outcome = try await pool.run(ticket, timeout: configuration.timeoutSeconds) { deadline in
            Result { () throws(APIError) -> Reply in try work(body, scope, deadline) }
        }
        return try outcome.get().response
    }

    /// The whole body, up to the size limit and within the timeout: a client that trickles its
    /// upload must not hold a place in the pool for ever.
    func collectBody(_ request: Request) async throws -> ByteBuffer {
        let limit = configuration.maxBodyBytes
        let seconds = configuration.timeoutSeconds
        let body = request.body
        do {
            return try await withThrowingTaskGroup(of: ByteBuffer?.self) { group in
                group.addTask { try await body.collect(upTo: limit) }
                group.addTask {
                    try await Task.sleep(for: .seconds(seconds))
                    return nil
                }
                defer { group.cancelAll() }
                guard let first = try await group.next(), let buffer = first else {
                    throw APIError.uploadTimeout(seconds: seconds)
                }
                return buffer
            }
        } catch let error as any HTTPResponseError where error.status == .contentTooLarge {
            throw APIError.bodyTooLarge(limit: limit)
        }
    }

    func checkContentType(_ contentType: String, kind: BodyKind) throws(APIError) {
        let type = contentType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        switch kind {
        case .json:
            // MLflow clients send `application/json; format=pandas-split` and the like; curl users
            // sometimes send nothing. Anything else is not for us.
            guard type.isEmpty || type.hasSuffix("json") else {
                throw APIError.unsupportedMediaType(type, expected: "application/json")
            }
        case .multipart:
            guard MultipartForm.boundary(contentType: contentType) != nil else {
                throw APIError.unsupportedMediaType(type.isEmpty ? "none" : type,
                                                    expected: "multipart/form-data with a boundary")
            }
        }
    }

    /// The model, loaded if needed; a failed load is logged and answered 503.
    func engine(_ scope: Scope) throws(APIError) -> any TranscriptionEngine {
        do {
            return try host.engine()
        } catch {
            scope.logger.error("model unavailable", metadata: ["error": "\(error)"])
            throw APIError.modelUnavailable(requestID: scope.requestID)
        }
    }

    /// Transcribes one item: its language code is resolved here, once, and the value goes down
    /// to the decoders. The error, if any, is mapped for the client (and logged when it is the
    /// server's fault).
    func transcribe(_ item: TranscriptionRequest, engine: any TranscriptionEngine, scope: Scope) -> Result<Transcript, APIError> {
        do throws(RecognizerError) {
            let language = try engine.language(item.language)
            // The audio libraries' messages and the decoder's warnings go to this request's log.
            let outcome: Result<Transcript, RecognizerError> = AudioLog.$logger.withValue(scope.logger) {
                do throws(RecognizerError) {
                    return .success(try engine.transcribe(audio: item.audio, language: language, decoder: item.decoder))
                } catch { return .failure(error) }
            }
            return .success(try outcome.get())
        } catch {
            if let mapped = APIError.from(error) { return .failure(mapped) }
            scope.logger.error("transcription failed", metadata: ["error": "\(error)"])
            return .failure(.internalError(requestID: scope.requestID))
        }
    }

    /// One item's MLflow-shaped result, timed.
    func result(_ item: TranscriptionRequest, engine: any TranscriptionEngine, scope: Scope) -> Result<TranscriptionResult, APIError> {
        let started = ContinuousClock.now
        return transcribe(item, engine: engine, scope: scope).map {
            TranscriptionResult($0, processingMs: (ContinuousClock.now - started).seconds * 1000, timestamps: item.timestamps)
        }
    }

    /// Runs a batch in order; items after the deadline are reported as timed out.
    func results(_ items: [ParsedItem], scope: Scope, deadline: InferencePool.Deadline) throws(APIError) -> [ItemOutcome] {
        // A batch of bad items needs no model: do not load one to reject them.
        guard items.contains(where: { if case .success = $0 { true } else { false } }) else {
            return items.map { if case .failure(let e) = $0 { .failure(e) } else { .failure(.internalError(requestID: scope.requestID)) } }
        }
        let engine = try engine(scope)
        var outcomes: [ItemOutcome] = []
        outcomes.reserveCapacity(items.count)
        for (index, item) in items.enumerated() {
            guard !deadline.isExpired else {
                outcomes.append(.failure(.timeout(seconds: configuration.timeoutSeconds)))
                continue
            }
            switch item.flatMap({ result($0, engine: engine, scope: scope) }) {
            case .success(let result): outcomes.append(.success(result))
            case .failure(let error):
                scope.logger.notice("batch item rejected", metadata: [
                    "item": "\(index)", "status": "\(error.status.code)", "error_code": "\(error.code.rawValue)",
                    "message": "\(error.message)"])
                outcomes.append(.failure(error))
            }
        }
        return outcomes
    }
}
