// The road every inference request takes, whatever its API family:
// body collected up to the limit (413), within the shared body budget (503) and the upload
// deadline (408; Uploads.swift) → admission to the worker pool (503 when the estimated wait
// does not fit the timeout or the queue is full; the timeout grows with the audio's length,
// Routes/TranscriptionStreaming.swift) → a worker thread parses the body, resolves
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
        /// The API key's name (cache entries are never shared across keys).
        var apiKeyName: String? = nil
        /// Whom rate limits charge the audio seconds to.
        var client: String = ""
        /// The request's deadline, once a worker runs it (the batch scheduler drops its items
        /// when it has passed).
        var deadline: InferencePool.Deadline? = nil
    }

    /// A route's work on a worker thread: the whole body in, a reply or the client's error out.
    typealias Work = @Sendable (ByteBuffer, Scope, InferencePool.Deadline) throws(APIError) -> Reply

    /// Admission, body, worker, reply; see the file header.
    func infer(_ request: Request, _ context: VaniRequestContext, accepting kind: BodyKind,
               _ work: @escaping Work) async throws -> Response {
        let (body, reservation, scope) = try await receive(request, context, accepting: kind)
        defer { reservation.release() }
        return try await run(body: body, scope: scope, work)
    }

    /// The first half of the road: content type and length checked, the body collected within
    /// the shared budget (503) and the upload deadline (408). The caller releases the reservation
    /// once the body is no longer needed.
    func receive(_ request: Request, _ context: VaniRequestContext,
                 accepting kind: BodyKind) async throws -> (ByteBuffer, BodyReservation, Scope) {
        let contentType = request.headers[.contentType] ?? ""
        try checkContentType(contentType, kind: kind)
        if let refusal = APIError.checkContentLength(request.headers[.contentLength], limit: configuration.maxBodyBytes) {
            throw refusal
        }
        // The body first, counted against the shared budget and cut off if it comes too slowly;
        // only then a place in the pool, so slow uploads hold no place.
        let reservation = BodyReservation(budget: bodyBudget)
        let body: ByteBuffer
        do { body = try await collectBody(request, into: reservation) } catch {
            reservation.release()
            if let error = error as? APIError, error.status == .serviceUnavailable {
                metrics.rejected(code: 503, reason: "body_budget")
            }
            throw error
        }
        let scope = Scope(requestID: context.requestID, logger: context.logger, contentType: contentType,
                          apiKeyName: context.apiKeyName, client: context.client)
        return (body, reservation, scope)
    }

    /// The second half: admission to the pool with a deadline that grows with the audio
    /// (`deadline(forBody:)`), the work on a worker thread, the reply.
    func run(body: ByteBuffer, scope: Scope, _ work: @escaping Work) async throws -> Response {
        let timeout = deadline(forBody: body)
        let ticket: InferencePool.Ticket
        do { ticket = try pool.admit(deadline: timeout) } catch { throw counted(error) }
        defer { ticket.releaseIfUnsubmitted() }
        let submitted = ContinuousClock.now
        let outcome: Result<Reply, APIError>
        do {
            outcome = try await pool.run(ticket, timeout: timeout) { [metrics] deadline in
                metrics.queueWait(seconds: (ContinuousClock.now - submitted).seconds)
                var scope = scope
                scope.deadline = deadline
                return Result { () throws(APIError) -> Reply in try work(body, scope, deadline) }
            }
        } catch { throw counted(error) }
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

    /// A pool refusal, counted for `/metrics` on its way to the client.
    func counted(_ rejection: InferencePool.Rejection) -> InferencePool.Rejection {
        switch rejection {
        case .queueFull: metrics.rejected(code: 503, reason: "queue_full")
        case .deadlineExceeded: metrics.rejected(code: 503, reason: "deadline")
        case .cancelled, .ticketReused: break
        }
        return rejection
    }

    /// The model `host` holds, loaded if needed; a failed load is logged and answered 503.
    func loaded(_ host: ModelHost, _ scope: Scope) throws(APIError) -> LoadedModel {
        do {
            return try host.current()
        } catch {
            scope.logger.error("model unavailable", metadata: ["model": "\(host.name)", "error": "\(error)"])
            throw APIError.modelUnavailable(requestID: scope.requestID)
        }
    }

    /// Transcribes one item: its language code is resolved here, once, and the value goes down
    /// to the decoders; the audio is decoded, and the answer comes from the response cache when
    /// the same samples were transcribed the same way for the same key (ResponseCache.swift). The
    /// error, if any, is mapped for the client (and logged when it is the server's fault). Says
    /// whether the answer came from the cache.
    /// `onSegment` sees each finished segment in order (streamed answers); the work stops
    /// between segments once `isCancelled` says so.
    func transcribe(_ item: TranscriptionRequest, model: LoadedModel, scope: Scope,
                    onSegment: (@Sendable (SegmentUpdate) -> Void)? = nil,
                    isCancelled: (@Sendable () -> Bool)? = nil) -> Result<(transcript: Transcript, cache: CacheStatus), APIError> {
        do throws(RecognizerError) {
            let language = try model.engine.language(item.language)
            // The audio libraries' messages and the decoder's warnings go to this request's log.
            let outcome: Result<(transcript: Transcript, cache: CacheStatus)?, RecognizerError> =
                AudioLog.$logger.withValue(scope.logger) {
                    do throws(RecognizerError) {
                        return .success(try answer(item, language: language, model: model, scope: scope,
                                                   onSegment: onSegment, isCancelled: isCancelled))
                    } catch { return .failure(error) }
                }
            // nil: the deadline passed before its batch ran (the client has its answer already).
            guard let answered = try outcome.get() else { return .failure(.timeout(seconds: configuration.timeoutSeconds)) }
            return .success(answered)
        } catch {
            if let mapped = APIError.from(error) { return .failure(mapped) }
            scope.logger.error("transcription failed", metadata: ["error": "\(error)"])
            return .failure(.internalError(requestID: scope.requestID))
        }
    }

    /// One item's MLflow-shaped result, timed; in a batch (`inBatch`) it says whether it came
    /// from the cache in its `cache` field.
    func result(_ item: TranscriptionRequest, model: LoadedModel, scope: Scope, inBatch: Bool = false,
                isCancelled: (@Sendable () -> Bool)? = nil) -> Result<(result: TranscriptionResult, cache: CacheStatus), APIError> {
        let started = ContinuousClock.now
        return transcribe(item, model: model, scope: scope, isCancelled: isCancelled).map { transcript, cache in
            var result = TranscriptionResult(transcript, processingMs: (ContinuousClock.now - started).seconds * 1000,
                                             timestamps: item.timestamps)
            if inBatch { result.cache = cache.rawValue }
            return (result, cache)
        }
    }

    /// The items' outcomes in order, the cache status of each answered one, and the model that
    /// answered (nil when no item could be parsed).
    struct BatchOutcome {
        var outcomes: [ItemOutcome]
        var cache: [CacheStatus?]
        var model: LoadedModel?
    }

    /// Runs a batch in order; items after the deadline are reported as timed out. With
    /// `inBatch`, each answered item says in its `cache` field whether it came from the cache.
    func results(_ items: [ParsedItem], scope: Scope, deadline: InferencePool.Deadline,
                 inBatch: Bool = true) throws(APIError) -> BatchOutcome {
        // A batch of bad items needs no model: do not load one to reject them.
        guard items.contains(where: { if case .success = $0 { true } else { false } }) else {
            let outcomes: [ItemOutcome] = items.map {
                if case .failure(let e) = $0 { .failure(e) } else { .failure(.internalError(requestID: scope.requestID)) }
            }
            return BatchOutcome(outcomes: outcomes, cache: Array(repeating: nil, count: items.count), model: nil)
        }
        let model = try loaded(try modelHost(for: items), scope)
        if inBatch { metrics.batch(items: items.count) }
        var batch = BatchOutcome(outcomes: [], cache: [], model: model)
        batch.outcomes.reserveCapacity(items.count)
        // With batching on, the items run together (BatchScheduler.swift); an engine that runs
        // them one by one anyway keeps this loop, which stops at the deadline between items.
        let batched = batcher.policy.isOn && items.count > 1 && model.engine is any BatchTranscriptionEngine
            ? scheduledResults(items, model: model, scope: scope, inBatch: inBatch) : nil
        for (index, item) in items.enumerated() {
            guard !deadline.isExpired else {
                batch.outcomes.append(.failure(.timeout(seconds: configuration.timeoutSeconds)))
                batch.cache.append(nil)
                continue
            }
            switch batched?[index] ?? item.flatMap({ result($0, model: model, scope: scope, inBatch: inBatch,
                                                            isCancelled: { deadline.isExpired }) }) {
            case .success(let (result, cache)):
                batch.outcomes.append(.success(result))
                batch.cache.append(cache)
            case .failure(let error):
                scope.logger.notice("batch item rejected", metadata: [
                    "item": "\(index)", "status": "\(error.status.code)", "error_code": "\(error.code.rawValue)",
                    "message": "\(error.message)"])
                batch.outcomes.append(.failure(error))
                batch.cache.append(nil)
            }
        }
        return batch
    }
}
