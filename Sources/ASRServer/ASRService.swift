// The HTTP door onto the Recognizer: the service object, its application and its router.
//
// The routes live in one collection per API family (Routes/): MLflow (`/asr`, `/invocations`),
// OpenAI (`/v1/...`) and health (`/health`, `/ping`, `/version`). Every inference request takes
// one road (InferenceRoad.swift): admission → body → a worker resolves and transcribes → reply.

import ASR
import Foundation
import HummingbirdCore
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
/// `application()` (`run()` handles SIGTERM/SIGINT by finishing requests in flight).
public final class ASRService: Sendable {
    /// Reported by `/version` and `/health`.
    public static let version = "0.1.0"

    /// Limits, threads and address, fixed at start.
    public let configuration: ServerConfiguration
    /// The model and its loading state.
    public let host: ModelHost
    let pool: InferencePool
    /// Bytes of request bodies held at once (Uploads.swift).
    let bodyBudget: BodyBudget
    /// Open connections, for `maxConnections`.
    let connections = ConnectionCounter()
    let logger: Logger
    let started = ContinuousClock.now
    let startedDate = Date()
    /// Paths and the methods registered on them (for 404 vs 405), filled by `router()`.
    let routeTable = RouteTable()

    /// Endpoints that answer without an API key (load balancers and probes).
    static let openPaths: Set<String> = ["/health", "/ping"]

    /// Starts the worker threads; with `configuration.preload`, starts loading the model too.
    public init(configuration: ServerConfiguration, host: ModelHost, logger: Logger) {
        self.configuration = configuration
        self.host = host
        self.logger = logger
        self.pool = InferencePool(workers: configuration.concurrency, queueCapacity: configuration.queueCapacity)
        self.bodyBudget = BodyBudget(capacity: configuration.effectiveBodyBudget)
        if configuration.preload { host.preload() }
    }

    deinit { pool.shutdown() }

    /// A service around the real model file; each forward pass uses `configuration.threads`.
    public convenience init(configuration: ServerConfiguration, modelURL: URL, logger: Logger) {
        let options = RecognizerOptions(threads: configuration.threads, device: configuration.device)
        let host = ModelHost(name: modelURL.deletingPathExtension().lastPathComponent, logger: logger) {
            () throws(RecognizerError) -> any TranscriptionEngine in
            try Recognizer(modelURL: modelURL, options: options)
        }
        self.init(configuration: configuration, host: host, logger: logger)
    }

    // MARK: - Application

    /// The Hummingbird application serving this service on `configuration.host:port`.
    public func application() -> some ApplicationProtocol {
        let http1 = HTTP1Channel.Configuration(
            additionalChannelHandlers: [HTTPFramingHandler(
                maxBodyBytes: self.configuration.maxBodyBytes, headerTimeout: self.configuration.headerTimeoutSeconds,
                connections: self.connections, maxConnections: self.configuration.maxConnections)],
            idleTimeout: .seconds(75))
        return Application(
            router: router(),
            // With `realtime`, HTTP/1 that also upgrades /v1/realtime to WebSocket
            // (Routes/RealtimeRoutes.swift).
            server: configuration.realtime ? realtimeServer(http1: http1) : .http1(configuration: http1),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "vani"),
            logger: logger)
    }

    /// All routes behind the front middleware (request id, API key, errors, access log); the
    /// 404/405 table is read back from what was registered.
    public func router() -> Router<VaniRequestContext> {
        let router = Router(context: VaniRequestContext.self, options: [.autoGenerateHeadEndpoints])
        router.add(middleware: FrontMiddleware(service: self))
        HealthRoutes(service: self).addRoutes(to: router)
        MLflowRoutes(service: self).addRoutes(to: router)
        OpenAIRoutes(service: self).addRoutes(to: router)
        routeTable.record(router.routes.map { (path: $0.path.description, method: $0.method.rawValue) },
                          headForGet: true)
        return router
    }

    /// Serves until SIGTERM or SIGINT, then stops accepting connections and finishes the
    /// requests in flight (Hummingbird's ServiceGroup graceful shutdown).
    public func run() async throws {
        if configuration.oversubscribes() {
            logger.warning("concurrency × threads exceeds the cores: requests will slow each other down", metadata: [
                "concurrency": "\(configuration.concurrency)", "threads": "\(configuration.threads)",
                "cores": "\(ProcessInfo.processInfo.activeProcessorCount)"])
        }
        logger.info("vani serve", metadata: [
            "address": "\(configuration.host):\(configuration.port)", "model": "\(host.name)",
            "preload": "\(configuration.preload)", "concurrency": "\(configuration.concurrency)",
            "threads": "\(configuration.threads)", "queue": "\(configuration.queueCapacity)",
            "timeout_s": "\(configuration.timeoutSeconds)", "max_body_mib": "\(megabytes(configuration.maxBodyBytes))",
            "api_key": "\(configuration.apiKey == nil ? "off" : "on")"])
        try await application().runService()
        logger.info("vani serve stopped: requests in flight finished")
    }
}

/// The methods each registered path answers, recorded once the router is built, for the front
/// middleware's 404 (no such path) versus 405 (path exists, method does not).
final class RouteTable: @unchecked Sendable {
    private let lock = NSLock()
    private var methods: [String: [String]] = [:]

    /// Records the registered routes; with `headForGet`, a GET route answers HEAD too (the
    /// router generates it).
    func record(_ routes: [(path: String, method: String)], headForGet: Bool) {
        var table: [String: Set<String>] = [:]
        for route in routes {
            let path = route.path.hasPrefix("/") ? route.path : "/" + route.path
            table[path, default: []].insert(route.method)
            if headForGet && route.method == "GET" { table[path, default: []].insert("HEAD") }
        }
        lock.lock(); defer { lock.unlock() }
        methods = table.mapValues { $0.sorted() }
    }

    /// The methods `path` answers, nil when no route has that path.
    func allowed(_ path: String) -> [String]? {
        lock.lock(); defer { lock.unlock() }
        return methods[path]
    }

    /// Every registered path.
    var paths: [String] {
        lock.lock(); defer { lock.unlock() }
        return methods.keys.sorted()
    }
}
