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
import NIOCore

/// Per-request context: Hummingbird's core plus the request id every log line and error carries.
public struct VaniRequestContext: RequestContext {
    /// Hummingbird's own per-request storage.
    public var coreContext: CoreRequestContextStorage
    /// Echoed as `X-Request-Id`; taken from the request's header when it sends a sane one.
    public var requestID: String = ""
    /// The name of the API key the request presented (nil without keys, or on an open path).
    public var apiKeyName: String?
    /// Who rate limits and the response cache count this request against: `key:<name>` with
    /// API keys, else `addr:<address>`; set by the front middleware.
    public var client: String = ""
    /// The connection's peer address (nil when there is no socket, as in router tests).
    public var peerAddress: String?
    /// A context for a new request; the front middleware fills in `requestID` and `client`.
    public init(source: Source) {
        coreContext = .init(source: source)
        peerAddress = source.channel.remoteAddress?.ipAddress
    }
}

/// The speech-recognition HTTP service.
///
/// Build it with a `ModelRegistry` of `ModelHost`s (the real `Recognizer`, or any
/// `TranscriptionEngine`), then serve `application()` (`run()` handles SIGTERM/SIGINT by finishing
/// requests in flight, and SIGHUP by reloading the models).
public final class ASRService: Sendable {
    /// Reported by `/version` and `/health`.
    public static let version = "0.1.0"

    /// Limits, threads and address, fixed at start.
    public let configuration: ServerConfiguration
    /// The models, by name, and the default.
    public let models: ModelRegistry
    /// The default model and its loading state.
    public var host: ModelHost { models.defaultHost }
    /// The metrics `/metrics` renders (a registry of this service's own).
    public let metrics: ServiceMetrics
    let cache: ResponseCache
    let rateLimiter: RateLimiter
    let pool: InferencePool
    /// Gathers requests into encoder batches (BatchScheduler.swift).
    let batcher: BatchScheduler<TranscriptionJob, Result<Transcript, RecognizerError>>
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
    /// Endpoints that rate limits do not count (probes and scrapes).
    static let unlimitedPaths: Set<String> = ["/health", "/ping", "/metrics"]

    /// Starts the worker threads; with `configuration.preload`, starts loading every model too.
    /// `metrics` defaults to a fresh registry of the service's own.
    public init(configuration: ServerConfiguration, models: ModelRegistry, metrics: ServiceMetrics = ServiceMetrics(),
                logger: Logger) {
        self.configuration = configuration
        self.models = models
        self.metrics = metrics
        self.logger = logger
        self.cache = ResponseCache(capacityBytes: configuration.cacheBytes)
        self.rateLimiter = RateLimiter(requestsPerSecond: configuration.rateLimit,
                                       audioSecondsPerMinute: configuration.audioSecondsPerMinute)
        self.pool = InferencePool(workers: configuration.concurrency, queueCapacity: configuration.queueCapacity,
                                  threads: configuration.poolThreads)
        let pool = self.pool
        var admitted: (@Sendable () -> Int)? = nil
        if configuration.batchWaitsForAdmittedOnly { admitted = { pool.load } }
        self.batcher = BatchScheduler(policy: .init(wait: configuration.batchWaitMs / 1000,
                                                    maxBatchFrames: configuration.maxBatchFrames,
                                                    lanes: configuration.concurrency),
                                      admitted: admitted, metrics: metrics)
        self.bodyBudget = BodyBudget(capacity: configuration.effectiveBodyBudget)
        for host in models.hosts {
            host.observe { [metrics] name, seconds, reload, succeeded in
                metrics.modelLoad(model: name, seconds: seconds, reload: reload, succeeded: succeeded)
            }
            if configuration.preload { host.preload() }
        }
    }

    /// A service of one model.
    public convenience init(configuration: ServerConfiguration, host: ModelHost, logger: Logger) {
        self.init(configuration: configuration, models: ModelRegistry(host), logger: logger)
    }

    /// Whether `path` needs an API key (when keys are set): all but the probes, and `/metrics`
    /// unless `--metrics-public`.
    func requiresKey(_ path: String) -> Bool {
        !(isOpen(path) || (configuration.metricsPublic && path == "/metrics"))
    }

    deinit { pool.shutdown() }

    /// A service around the real model file; each forward pass uses `configuration.threads`.
    public convenience init(configuration: ServerConfiguration, modelURL: URL, logger: Logger) {
        self.init(configuration: configuration,
                  models: [(modelURL.deletingPathExtension().lastPathComponent, modelURL)], logger: logger)
    }

    /// A service around named model files (`--model NAME=FILE`), the first (or `defaultModel`)
    /// being the default; each forward pass uses `configuration.threads`. Metrics go to `metrics`.
    public convenience init(configuration: ServerConfiguration, models files: [(name: String, url: URL)],
                            defaultModel: String? = nil, metrics: ServiceMetrics = ServiceMetrics(), logger: Logger) {
        let options = RecognizerOptions(maxAudioSeconds: configuration.maxAudioSeconds, threads: configuration.threads,
                                        device: configuration.device, precision: configuration.precision)
        let hosts = files.map { name, url in
            ModelHost(name: name, file: url, logger: logger) { () throws(RecognizerError) -> any TranscriptionEngine in
                let recognizer = try Recognizer(modelURL: url, options: options)
                if let note = recognizer.precisionNote { logger.notice("\(note)") }
                return recognizer
            }
        }
        self.init(configuration: configuration, models: ModelRegistry(hosts: hosts, defaultName: defaultModel),
                  metrics: metrics, logger: logger)
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
        router.add(middleware: EdgeMiddleware(service: self))
        router.add(middleware: FrontMiddleware(service: self))
        router.add(middleware: RateLimitMiddleware(service: self))
        HealthRoutes(service: self).addRoutes(to: router)
        MLflowRoutes(service: self).addRoutes(to: router)
        OpenAIRoutes(service: self).addRoutes(to: router)
        if configuration.webUI { WebUIRoutes(service: self).addRoutes(to: router) }
        routeTable.record(router.routes.map { (path: $0.path.description, method: $0.method.rawValue) },
                          headForGet: true)
        return router
    }

    /// Serves until SIGTERM or SIGINT, then stops accepting connections and finishes the
    /// requests in flight (Hummingbird's ServiceGroup graceful shutdown). SIGHUP reloads every
    /// loaded model from disk, one at a time, without stopping.
    public func run() async throws {
        let hangup = reloadOnHangup()
        defer { hangup.cancel() }
        if configuration.oversubscribes() {
            logger.warning("concurrency × threads exceeds the cores: requests will slow each other down", metadata: [
                "concurrency": "\(configuration.concurrency)", "threads": "\(configuration.threads)",
                "cores": "\(ProcessInfo.processInfo.activeProcessorCount)"])
        }
        logger.info("vani serve", metadata: [
            "address": "\(configuration.host):\(configuration.port)", "model": "\(models.names.joined(separator: ","))",
            "default_model": "\(host.name)", "cache_mib": "\(megabytes(configuration.cacheBytes))",
            "max_audio_s": "\(configuration.maxAudioSeconds)",
            "preload": "\(configuration.preload)", "concurrency": "\(configuration.concurrency)",
            "threads": "\(configuration.threads)", "queue": "\(configuration.queueCapacity)",
            "precision": "\(configuration.precision?.rawValue ?? "as stored")",
            "timeout_s": "\(configuration.timeoutSeconds)", "max_body_mib": "\(megabytes(configuration.maxBodyBytes))",
            "api_keys": "\(configuration.apiKeys.count)",
            "rate_limit": "\(configuration.rateLimit.map { "\($0)/s" } ?? "off")",
            "audio_seconds_per_minute": "\(configuration.audioSecondsPerMinute.map { "\($0)" } ?? "off")",
            "ui": "\(configuration.webUI ? "on" : "off")",
            "batch_wait_ms": "\(configuration.batchWaitMs)", "max_batch_frames": "\(configuration.maxBatchFrames)"])
        try await application().runService()
        logger.info("vani serve stopped: requests in flight finished")
    }

    /// SIGHUP → `models.reloadAll` on a thread of its own (a second SIGHUP during a reload
    /// reloads again after it).
    func reloadOnHangup() -> any DispatchSourceSignal {
        signal(SIGHUP, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        source.setEventHandler { [models, logger] in
            logger.notice("SIGHUP: reloading models from disk")
            let thread = Thread { models.reloadAll(logger: logger) }
            thread.name = "vani-model-reload"
            thread.stackSize = 8 << 20
            thread.start()
        }
        source.resume()
        return source
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
        guard let pattern = pattern(for: path) else { return nil }
        lock.lock(); defer { lock.unlock() }
        return methods[pattern]
    }

    /// The registered route `path` falls under (`/v1/models/{name}` for `/v1/models/x`), nil
    /// when none: a bounded set of values for the metrics' `endpoint` label.
    func pattern(for path: String) -> String? {
        lock.lock(); defer { lock.unlock() }
        if methods[path] != nil { return path }
        let segments = path.split(separator: "/", omittingEmptySubsequences: true)
        return methods.keys.sorted().first { pattern in
            let parts = pattern.split(separator: "/", omittingEmptySubsequences: true)
            guard parts.count == segments.count, parts.contains(where: { $0.hasPrefix("{") }) else { return false }
            return zip(parts, segments).allSatisfy { $0.hasPrefix("{") && $0.hasSuffix("}") || $0 == $1 }
        }
    }

    /// Every registered path.
    var paths: [String] {
        lock.lock(); defer { lock.unlock() }
        return methods.keys.sorted()
    }
}
