// The road every inference request takes, whatever its API family:
// body collected up to the limit (413), within the shared body budget (503) and the upload
// deadline (408; Uploads.swift) → admission to the worker pool (503 when the estimated wait
// does not fit the timeout or the queue is full) → a worker thread parses the body, resolves
// the language once, loads the model if needed and transcribes → the reply is written back on
// the event loop.

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
        if let refusal = APIError.checkContentLength(request.headers[.contentLength], limit: configuration.maxBodyBytes) {
            throw refusal
        }
        // The body first, counted against the shared budget and cut off if it comes too slowly;
        // only then a place in the pool, so slow uploads hold no place.
        let reservation = BodyReservation(budget: bodyBudget)
        defer { reservation.release() }
        let body = try await collectBody(request, into: reservation)
        let timeout = deadline(forBody: body)     // grows with the audio (TranscriptionStreaming.swift)
        let ticket = try pool.admit(deadline: timeout)
        defer { ticket.releaseIfUnsubmitted() }
        let scope = Scope(requestID: context.requestID, logger: context.logger, contentType: contentType)
        let outcome = try await pool.run(ticket, timeout: timeout) { deadline in
            Result { () throws(APIError) -> Reply in try work(body, scope, deadline) }
        }
        return try outcome.get().response
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
    func transcribe(_ item: TranscriptionRequest, engine: any TranscriptionEngine, scope: Scope,
                    onSegment: (@Sendable (SegmentUpdate) -> Void)? = nil,
                    isCancelled: (@Sendable () -> Bool)? = nil) -> Result<Transcript, APIError> {
        do throws(RecognizerError) {
            let language = try engine.language(item.language)
            return .success(try engine.transcribe(audio: item.audio, language: language, decoder: item.decoder,
                                                  segmentation: item.segmentation, onSegment: onSegment,
                                                  isCancelled: isCancelled))
        } catch {
            if let mapped = APIError.from(error) { return .failure(mapped) }
            scope.logger.error("transcription failed", metadata: ["error": "\(error)"])
            return .failure(.internalError(requestID: scope.requestID))
        }
    }

    /// One item's MLflow-shaped result, timed.
    func result(_ item: TranscriptionRequest, engine: any TranscriptionEngine, scope: Scope,
                isCancelled: (@Sendable () -> Bool)? = nil) -> Result<TranscriptionResult, APIError> {
        let started = ContinuousClock.now
        return transcribe(item, engine: engine, scope: scope, isCancelled: isCancelled).map {
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
            switch item.flatMap({ result($0, engine: engine, scope: scope, isCancelled: { deadline.isExpired }) }) {
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
