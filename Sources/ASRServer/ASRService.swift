// The HTTP door onto the Recognizer: routes, handlers and the application that serves them.
//
// Every inference request takes the same road: admission (503 when the queue is full) →
// body collected up to the limit (413) → a worker thread parses, decodes base64, loads the
// model if needed and transcribes → the reply is written back on the event loop.

import ASR
import Foundation
import Hummingbird
import Logging

/// Per-request context: Hummingbird's core plus the request id every log line and error carries.
public struct VaniRequestContext: RequestContext {
    /// Hummingbird's own per-request storage.
    public var coreContext: CoreRequestContextStorage
    /// Echoed as `X-Request-Id`; taken from the request's header when it sends a sane one.
    public var requestID: String = ""
    /// A context for a new request; the front middleware fills in `requestID`.
    public init(source: Source) { coreContext = .init(source: source) }
}

/// The speech-recognition HTTP service.
///
/// Build it with a `ModelHost` (the real `Recognizer`, or any `TranscriptionEngine`), then serve
/// `application()` (`runService()` handles SIGTERM/SIGINT by finishing requests in flight).
public final class ASRService: Sendable {
    /// Reported by `/version` and `/health`.
    public static let version = "0.1.0"

    /// Limits, threads and address, fixed at start.
    public let configuration: ServerConfiguration
    /// The model and its loading state.
    public let host: ModelHost
    let pool: InferencePool
    let logger: Logger
    let started = ContinuousClock.now
    let startedDate = Date()

    /// Endpoints and the methods they answer, for 404 vs 405.
    static let routes: [String: [String]] = [
        "/health": ["GET", "HEAD"], "/ping": ["GET", "HEAD"], "/version": ["GET", "HEAD"],
        "/asr": ["POST"], "/invocations": ["POST"],
        "/v1/audio/transcriptions": ["POST"], "/v1/models": ["GET", "HEAD"],
    ]
    /// Endpoints that answer without an API key (load balancers and probes).
    static let openPaths: Set<String> = ["/health", "/ping"]

    /// Starts the worker threads; with `configuration.preload`, starts loading the model too.
    public init(configuration: ServerConfiguration, host: ModelHost, logger: Logger) {
        self.configuration = configuration
        self.host = host
        self.logger = logger
        self.pool = InferencePool(workers: configuration.concurrency, queueCapacity: configuration.queueCapacity)
        if configuration.preload { host.preload() }
    }

    deinit { pool.shutdown() }

    /// A service around the real model file.
    public convenience init(configuration: ServerConfiguration, modelURL: URL, logger: Logger) {
        let options = RecognizerOptions(blasThreads: configuration.blasThreads)
        let host = ModelHost(name: modelURL.deletingPathExtension().lastPathComponent, logger: logger) {
            () throws(RecognizerError) -> any TranscriptionEngine in
            try Recognizer(modelURL: modelURL, options: options)
        }
        self.init(configuration: configuration, host: host, logger: logger)
    }

    // MARK: - Application

    /// The Hummingbird application serving this service on `configuration.host:port`.
    public func application() -> some ApplicationProtocol {
        Application(
            router: router(),
            server: .http1(configuration: .init(idleTimeout: .seconds(75))),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "vani"),
            logger: logger)
    }

    /// All routes behind the front middleware (request id, API key, errors, access log).
    public func router() -> Router<VaniRequestContext> {
        let router = Router(context: VaniRequestContext.self, options: [.autoGenerateHeadEndpoints])
        router.add(middleware: FrontMiddleware(service: self))

        router.get("/ping") { _, _ in Response(status: .ok, headers: [.contentType: "text/plain"], body: .init(byteBuffer: ByteBuffer(string: "\n"))) }
        router.get("/health") { _, _ in self.health() }
        router.get("/version") { _, _ in Reply.text(Self.version).response }
        router.get("/v1/models") { _, _ in self.models().response }
        if configuration.webUI { addWebUI(to: router) }

        router.post("/asr") { request, context in
            try await self.infer(request, context, accepting: .json) { body, scope, deadline throws(APIError) in
                try self.asr(body: body, scope: scope, deadline: deadline)
            }
        }
        router.post("/invocations") { request, context in
            try await self.infer(request, context, accepting: .json) { body, scope, deadline throws(APIError) in
                try self.invocations(body: body, scope: scope, deadline: deadline)
            }
        }
        router.post("/v1/audio/transcriptions") { request, context in
            try await self.infer(request, context, accepting: .multipart) { body, scope, deadline throws(APIError) in
                try self.openAITranscription(body: body, scope: scope, deadline: deadline)
            }
        }
        return router
    }

    // MARK: - The road of an inference request

    enum BodyKind { case json, multipart }

    /// What a worker needs to know about the request it serves.
    struct Scope: Sendable {
        var requestID: String
        var logger: Logger
        var contentType: String
    }

    /// Admission, body, worker, reply; see the file header.
    func infer(_ request: Request, _ context: VaniRequestContext, accepting kind: BodyKind,
               _ work: @escaping @Sendable (ByteBuffer, Scope, InferencePool.Deadline) throws(APIError) -> Reply) async throws -> Response {
        let contentType = request.headers[.contentType] ?? ""
        try checkContentType(contentType, kind: kind)
        if let length = request.headers[.contentLength].flatMap(Int.init), length > configuration.maxBodyBytes {
            throw APIError.bodyTooLarge(limit: configuration.maxBodyBytes)
        }
        let ticket = try pool.admit()
        defer { ticket.releaseIfUnsubmitted() }
        let body = try await collectBody(request)
        let scope = Scope(requestID: context.requestID, logger: context.logger, contentType: contentType)
        let reply = try await pool.run(ticket, timeout: configuration.timeoutSeconds) { deadline throws(APIError) in
            try work(body, scope, deadline)
        }
        return reply.response
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

    /// Transcribes one item; the error, if any, is mapped for the client (and logged when it is
    /// the server's fault).
    func transcribe(_ item: TranscriptionRequest, engine: any TranscriptionEngine, scope: Scope) -> Result<Transcript, APIError> {
        do throws(RecognizerError) {
            try engine.checkLanguage(item.language)
            guard engine.info.decoders.contains(item.decoder) else { throw RecognizerError.decoderUnavailable(item.decoder) }
            return .success(try engine.transcribe(audio: item.audio, language: item.language, decoder: item.decoder))
        } catch {
            if let mapped = APIError.from(error) { return .failure(mapped) }
            scope.logger.error("transcription failed", metadata: ["error": "\(error)"])
            return .failure(.internalError(requestID: scope.requestID))
        }
    }

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

    // MARK: - POST /asr

    func asr(body: ByteBuffer, scope: Scope, deadline: InferencePool.Deadline) throws(APIError) -> Reply {
        guard case .object(let object) = try JSONValue.parse(body) else {
            throw APIError(.badRequest, status: .badRequest,
                           "the body must be a JSON object with 'audio' and 'language' (or 'items': [...])")
        }
        if let itemsValue = object["items"] {
            let defaults = try RequestFields.defaults(object)
            let items = try batchItems(itemsValue, field: "items", defaults: defaults)
            return .json(BatchResponse(results: try results(items, scope: scope, deadline: deadline)))
        }
        let item = try RequestFields.item(object)
        return .json(try result(item, engine: try engine(scope), scope: scope).get())
    }

    func batchItems(_ value: JSONValue, field: String, defaults: RequestDefaults) throws(APIError) -> [ParsedItem] {
        guard case .array(let values) = value else {
            throw APIError.wrongType(field, expected: "an array of objects, not \(value.kind)")
        }
        guard !values.isEmpty else { throw APIError.invalid("field '\(field)' is empty: send at least one item") }
        guard values.count <= configuration.maxBatchItems else {
            throw APIError.invalid("field '\(field)' has \(values.count) items; the limit is \(configuration.maxBatchItems) per request")
        }
        return values.enumerated().map { index, value in
            let path = "\(field)[\(index)]."
            guard case .object(let object) = value else {
                return .failure(.wrongType("\(field)[\(index)]", expected: "an object, not \(value.kind)"))
            }
            do throws(APIError) {
                return .success(try RequestFields.item(object, defaults: defaults, path: path))
            } catch {
                return .failure(error)
            }
        }
    }

    // MARK: - POST /invocations (MLflow scoring protocol)

    static let invocationKeys = ["dataframe_split", "dataframe_records", "instances", "inputs"]

    func invocations(body: ByteBuffer, scope: Scope, deadline: InferencePool.Deadline) throws(APIError) -> Reply {
        guard case .object(let object) = try JSONValue.parse(body) else {
            throw invocationFormatError()
        }
        let present = Self.invocationKeys.filter { object[$0] != nil }
        guard present.count == 1, let key = present.first, let payload = object[key] else { throw invocationFormatError() }
        var defaults = RequestDefaults()
        if let params = object["params"], params != .null {
            guard case .object(let paramsObject) = params else { throw APIError.wrongType("params", expected: "an object") }
            defaults = try RequestFields.defaults(paramsObject, path: "params.")
        }
        let rows = try invocationRows(payload, key: key)
        guard !rows.isEmpty else { throw APIError.invalid("field '\(key)' holds no rows: send at least one") }
        guard rows.count <= configuration.maxBatchItems else {
            throw APIError.invalid("'\(key)' has \(rows.count) rows; the limit is \(configuration.maxBatchItems) per request")
        }
        let items: [ParsedItem] = rows.enumerated().map { index, row in
            do throws(APIError) {
                return .success(try RequestFields.item(row, defaults: defaults, path: "\(key)[\(index)]."))
            } catch {
                return .failure(error)
            }
        }
        // One row: its error is the request's error, as MLflow's scoring server answers.
        if items.count == 1, case .failure(let error) = items[0] { throw error }
        let outcomes = try results(items, scope: scope, deadline: deadline)
        if outcomes.count == 1, case .failure(let error) = outcomes[0] { throw error }
        return .json(PredictionsResponse(predictions: outcomes))
    }

    func invocationFormatError() -> APIError {
        APIError(.badRequest, status: .badRequest,
                 "the body must be a JSON object with exactly one of 'dataframe_split', 'dataframe_records', 'instances' or 'inputs'")
    }

    /// Rows of the four MLflow input formats, as objects with the item fields.
    func invocationRows(_ payload: JSONValue, key: String) throws(APIError) -> [[String: JSONValue]] {
        switch (key, payload) {
        case ("dataframe_split", .object(let split)):
            guard case .array(let columnValues)? = split["columns"], case .array(let data)? = split["data"] else {
                throw APIError.invalid("'dataframe_split' needs 'columns' (array of names) and 'data' (array of rows)")
            }
            var columns: [String] = []
            for value in columnValues {
                guard case .string(let name) = value else { throw APIError.wrongType("dataframe_split.columns", expected: "an array of strings") }
                columns.append(name)
            }
            var rows: [[String: JSONValue]] = []
            for (index, row) in data.enumerated() {
                guard case .array(let cells) = row, cells.count == columns.count else {
                    throw APIError.invalid("dataframe_split.data[\(index)] must be an array of \(columns.count) values (one per column)")
                }
                rows.append(Dictionary(zip(columns, cells), uniquingKeysWith: { first, _ in first }))
            }
            return rows
        case ("dataframe_records", .array(let records)), ("instances", .array(let records)), ("inputs", .array(let records)):
            return try records.enumerated().map { (index, record) throws(APIError) -> [String: JSONValue] in
                switch record {
                case .object(let row): return row
                case .string: return ["audio": record]   // a bare list of base64 clips
                default: throw APIError.wrongType("\(key)[\(index)]", expected: "an object, not \(record.kind)")
                }
            }
        case ("inputs", .object(let columns)), ("instances", .object(let columns)):
            // Columnar: {"audio": [...], "language": [...]} (or scalars for a single row).
            let lengths = Set(columns.values.compactMap { if case .array(let a) = $0 { a.count } else { nil } })
            if lengths.isEmpty { return [columns] }
            guard lengths.count == 1, let count = lengths.first else {
                throw APIError.invalid("the columns of '\(key)' have different lengths: send one value per row in each")
            }
            return (0..<count).map { row in
                columns.mapValues { if case .array(let values) = $0 { values[row] } else { $0 } }
            }
        default:
            throw APIError.wrongType(key, expected: key == "dataframe_split" ? "an object" : "an array of objects")
        }
    }

    // MARK: - POST /v1/audio/transcriptions (OpenAI)

    enum ResponseFormat: String { case json, text, srt, vtt, verbose_json }

    func openAITranscription(body: ByteBuffer, scope: Scope, deadline: InferencePool.Deadline) throws(APIError) -> Reply {
        guard let boundary = MultipartForm.boundary(contentType: scope.contentType) else {
            throw APIError.unsupportedMediaType(scope.contentType, expected: "multipart/form-data")
        }
        let form = try MultipartForm.parse(body, boundary: boundary)
        guard let file = form.first("file") else { throw APIError.missing("file") }
        guard file.body.readableBytes > 0 else { throw APIError.invalid("the 'file' part is empty: send an audio file") }
        let formatName = form.first("response_format")?.string.trimmingCharacters(in: .whitespaces).lowercased() ?? ""
        guard let format = formatName.isEmpty ? .json : ResponseFormat(rawValue: formatName) else {
            throw APIError.invalid("field 'response_format' must be json, text, srt, vtt or verbose_json, not '\(clip(formatName))'")
        }
        let language = form.first("language").map { RequestFields.normalizedLanguage($0.string) } ?? ""
        guard !language.isEmpty else { throw APIError.missing("language") }
        let decoderName = (form.first("decoding") ?? form.first("decoder"))?.string ?? "ctc"
        let decoder = try RequestFields.decoderKind(decoderName, field: "decoding")
        let granularities = Set((form.all("timestamp_granularities[]") + form.all("timestamp_granularities"))
            .map { $0.string.trimmingCharacters(in: .whitespaces).lowercased() })
        for value in granularities where value != "word" && value != "segment" {
            throw APIError.invalid("field 'timestamp_granularities[]' takes 'word' or 'segment', not '\(clip(value))'")
        }

        let item = TranscriptionRequest(audio: Data(file.body.readableBytesView), language: language,
                                        decoder: decoder, timestamps: false)
        let transcript = try transcribe(item, engine: try engine(scope), scope: scope).get()
        let formatter = SubtitleFormatter()
        switch format {
        case .json: return .json(OpenAITextResponse(text: transcript.text))
        case .text: return .text(transcript.text + "\n")
        case .srt: return .text(formatter.srt(transcript))
        case .vtt: return .text(formatter.vtt(transcript), contentType: "text/vtt; charset=utf-8")
        case .verbose_json:
            var response = OpenAIVerboseResponse(language: transcript.language, duration: millis(transcript.duration),
                                                 text: transcript.text)
            if granularities.isEmpty || granularities.contains("segment") {
                response.segments = formatter.cues(for: transcript).enumerated().map { index, cue in
                    let tokens = transcript.tokens[cue.tokens]
                    let meanLogProb = tokens.isEmpty ? 0 : tokens.reduce(0.0) { $0 + Double($1.logProb) } / Double(tokens.count)
                    return .init(id: index, start: millis(cue.start), end: millis(cue.end), text: cue.text,
                                 tokens: tokens.map(\.id), avg_logprob: meanLogProb)
                }
            }
            if granularities.contains("word") {
                response.words = SubtitleFormatter.words(from: transcript.tokens).map {
                    .init(word: $0.word.word, start: millis($0.word.start), end: millis($0.word.end))
                }
            }
            return .json(response)
        }
    }

    // MARK: - GET /health, /v1/models

    func health() -> Response {
        let (state, info) = host.snapshot
        let status: String
        switch state {
        case .idle, .ready: status = "ok"
        case .loading: status = "loading"
        case .failed: status = "error"
        }
        let model = HealthResponse.Model(
            name: info?.name ?? host.name, state: state.rawValue, languages: info?.languages,
            decoders: info?.decoders.map(\.rawValue), parameters: info?.parameters, sample_rate: info?.sampleRate)
        let body = HealthResponse(
            status: status, model: model,
            uptime_s: ((ContinuousClock.now - started).seconds * 10).rounded() / 10,
            version: Self.version,
            queue: .init(in_flight: pool.load, workers: pool.workers, capacity: pool.workers + pool.queueCapacity),
            error: state == .failed ? "the model failed to load; the server log has the reason" : nil)
        var reply = Reply.json(body)
        // Probes read the status code: only a model that can answer is healthy.
        reply.status = status == "ok" ? .ok : .serviceUnavailable
        return reply.response
    }

    func models() -> Reply {
        let name = host.snapshot.info?.name ?? host.name
        return .json(ModelList(data: [.init(id: name, created: Int(startedDate.timeIntervalSince1970))]))
    }
}
