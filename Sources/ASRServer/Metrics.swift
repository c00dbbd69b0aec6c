// What the service measures, for Prometheus: created through swift-metrics on a factory of the
// service's own (so each service, and each test, has a fresh registry; `vani serve` also
// bootstraps the process-wide MetricsSystem with it, once), exposed by swift-prometheus on
// GET /metrics. Names start with `vani_` and end with their unit; each name always has the same
// label names (swift-prometheus refuses a family that mixes label sets).

import ASR
import CoreMetrics
import Foundation
import Prometheus

/// The service's metrics and the registry that renders them.
public final class ServiceMetrics: Sendable {
    /// The registry `/metrics` renders.
    public let registry: PrometheusCollectorRegistry
    /// The swift-metrics factory over `registry`, with the service's histogram buckets; give it to
    /// `MetricsSystem.bootstrap` to collect other libraries' metrics on the same page.
    public let factory: PrometheusMetricsFactory

    /// Seconds buckets from 5 ms to 10 minutes (requests may run for minutes of audio).
    static let secondsBuckets: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600]
    /// Real-time factor buckets: compute seconds per second of audio.
    static let ratioBuckets: [Double] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5]
    /// Batch sizes, up to the largest `--max-batch` one would set.
    static let batchBuckets: [Double] = [1, 2, 4, 8, 16, 32, 64, 128, 256]

    /// The metric names, in one place (docs/SERVICE.md lists them).
    enum Name {
        static let requests = "vani_requests_total"                    // {endpoint, code}
        static let requestDuration = "vani_request_duration_seconds"   // {endpoint}
        static let queueWait = "vani_queue_wait_seconds"
        static let inflight = "vani_inflight_requests"
        static let queued = "vani_queued_requests"
        static let audioSeconds = "vani_audio_seconds_total"           // {model}
        static let inferenceSeconds = "vani_inference_seconds"         // {model}
        static let realTimeFactor = "vani_real_time_factor_ratio"      // {model}
        static let modelLoadSeconds = "vani_model_load_seconds"        // {model}
        static let modelLoads = "vani_model_loads_total"               // {model, kind, result}
        static let cacheHits = "vani_cache_hits_total"
        static let cacheMisses = "vani_cache_misses_total"
        static let cacheEntries = "vani_cache_entries"
        static let cacheBytes = "vani_cache_bytes"
        static let rejected = "vani_rejected_requests_total"           // {code, reason}
        static let batchItems = "vani_batch_items"
        static let batchSize = "vani_batch_size"                       // requests' items per encoder batch
        static let batchQueue = "vani_batch_queue_seconds"             // an item's wait for its batch
    }

    private let queueWait: CoreMetrics.Timer
    private let inflight: CoreMetrics.Gauge
    private let queued: CoreMetrics.Gauge
    private let cacheHits: CoreMetrics.Counter
    private let cacheMisses: CoreMetrics.Counter
    private let cacheEntries: CoreMetrics.Gauge
    private let cacheBytes: CoreMetrics.Gauge
    private let batchItems: CoreMetrics.Recorder
    private let batchSize: CoreMetrics.Recorder
    private let batchQueue: CoreMetrics.Timer

    /// Metrics on a fresh registry of their own.
    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        var factory = PrometheusMetricsFactory(registry: registry)
        let seconds = Self.secondsBuckets.map { Duration.nanoseconds(Int64(($0 * 1e9).rounded())) }
        factory.defaultDurationHistogramBuckets = seconds
        factory.valueHistogramBuckets = [Name.realTimeFactor: Self.ratioBuckets, Name.batchItems: Self.batchBuckets,
                                         Name.batchSize: Self.batchBuckets]
        self.factory = factory
        queueWait = CoreMetrics.Timer(label: Name.queueWait, factory: factory)
        inflight = CoreMetrics.Gauge(label: Name.inflight, factory: factory)
        queued = CoreMetrics.Gauge(label: Name.queued, factory: factory)
        cacheHits = CoreMetrics.Counter(label: Name.cacheHits, factory: factory)
        cacheMisses = CoreMetrics.Counter(label: Name.cacheMisses, factory: factory)
        cacheEntries = CoreMetrics.Gauge(label: Name.cacheEntries, factory: factory)
        cacheBytes = CoreMetrics.Gauge(label: Name.cacheBytes, factory: factory)
        batchItems = CoreMetrics.Recorder(label: Name.batchItems, factory: factory)
        batchSize = CoreMetrics.Recorder(label: Name.batchSize, factory: factory)
        batchQueue = CoreMetrics.Timer(label: Name.batchQueue, factory: factory)
        // Present from the first scrape, before any request: dashboards see zeros, not gaps.
        inflight.record(0)
        queued.record(0)
        cacheHits.increment(by: 0)
        cacheMisses.increment(by: 0)
    }

    // MARK: - Recording

    /// One answered request: its endpoint (a registered route, or `other`), status and time.
    func request(endpoint: String, code: Int, seconds: Double) {
        CoreMetrics.Counter(label: Name.requests, dimensions: [("endpoint", endpoint), ("code", "\(code)")], factory: factory)
            .increment()
        CoreMetrics.Timer(label: Name.requestDuration, dimensions: [("endpoint", endpoint)], factory: factory)
            .recordSeconds(seconds)
    }

    /// A request refused for load (503) or rate (429); `reason`: `queue_full`, `deadline`,
    /// `rate_limit`, `audio_rate_limit`.
    func rejected(code: Int, reason: String) {
        CoreMetrics.Counter(label: Name.rejected, dimensions: [("code", "\(code)"), ("reason", reason)], factory: factory)
            .increment()
    }

    /// Seconds between a body being ready and a worker starting on it.
    func queueWait(seconds: Double) { queueWait.recordSeconds(seconds) }

    /// One transcription computed (not from the cache): its audio and compute seconds.
    func inference(model: String, audioSeconds: Double, seconds: Double) {
        CoreMetrics.FloatingPointCounter(label: Name.audioSeconds, dimensions: [("model", model)], factory: factory)
            .increment(by: audioSeconds)
        CoreMetrics.Timer(label: Name.inferenceSeconds, dimensions: [("model", model)], factory: factory)
            .recordSeconds(seconds)
        if audioSeconds > 0 {
            CoreMetrics.Recorder(label: Name.realTimeFactor, dimensions: [("model", model)], factory: factory)
                .record(seconds / audioSeconds)
        }
    }

    /// Audio answered from the cache still counts as audio processed.
    func cachedAudio(model: String, audioSeconds: Double) {
        CoreMetrics.FloatingPointCounter(label: Name.audioSeconds, dimensions: [("model", model)], factory: factory)
            .increment(by: audioSeconds)
    }

    func cache(_ status: CacheStatus) {
        switch status {
        case .hit: cacheHits.increment()
        case .miss: cacheMisses.increment()
        }
    }

    /// A load or reload of `model`: its seconds (kept when it succeeded) and outcome.
    func modelLoad(model: String, seconds: Double, reload: Bool, succeeded: Bool) {
        if succeeded {
            CoreMetrics.Gauge(label: Name.modelLoadSeconds, dimensions: [("model", model)], factory: factory).record(seconds)
        }
        CoreMetrics.Counter(label: Name.modelLoads, dimensions: [
            ("model", model), ("kind", reload ? "reload" : "load"), ("result", succeeded ? "ok" : "failed")],
            factory: factory).increment()
    }

    func batch(items: Int) { batchItems.record(items) }

    /// One encoder batch formed by the batch scheduler: its items, and the seconds each waited
    /// in the scheduler (from its submission to the batch's start).
    func batchFormed(items: Int, queueSeconds: [Double]) {
        batchSize.record(items)
        for seconds in queueSeconds { batchQueue.recordSeconds(seconds) }
    }

    // MARK: - Rendering

    /// The Prometheus text exposition, with the gauges read now.
    func render(running: Int, waiting: Int, cache: (entries: Int, bytes: Int)) -> String {
        inflight.record(running)
        queued.record(waiting)
        cacheEntries.record(cache.entries)
        cacheBytes.record(cache.bytes)
        return registry.emitToString()
    }
}
