// Settings of the HTTP service: where it listens, how much work it accepts, how it loads the model.

import ASR
import Foundation

/// Everything `vani serve` can set. The defaults fit a small CPU machine.
///
/// The threading rule: `concurrency × threads ≤ cores`. The service runs at most `concurrency`
/// forward passes at a time on its own worker threads, each on `threads` threads of Vani's pool
/// (OpenBLAS itself runs single-threaded); the setting belongs to the service's recognizer and
/// changes nothing process-wide.
public struct ServerConfiguration: Sendable {
    /// Address to bind; loopback unless told otherwise.
    public var host: String
    /// TCP port (0 picks a free one).
    public var port: Int
    /// Load the model at start-up instead of on the first request.
    public var preload: Bool
    /// When set, every endpoint except `/health` and `/ping` needs
    /// `Authorization: Bearer KEY` or `X-API-Key: KEY`.
    public var apiKey: String?
    /// Largest request body accepted, in bytes (larger gets 413).
    public var maxBodyBytes: Int
    /// Forward passes run at once (worker threads).
    public var concurrency: Int
    /// Threads per forward pass (Vani's pool).
    public var threads: Int
    /// Where the forward work runs.
    public var device: ComputeDevice
    /// Most requests waiting beyond those running (an upper bound: a request is admitted only
    /// while its estimated wait fits in `timeoutSeconds`); more get 503 with `Retry-After`.
    public var queueCapacity: Int
    /// Bytes of request bodies held in memory at once (being received, queued or running);
    /// nil: `(concurrency + 2 × concurrency) × maxBodyBytes`, what a full pool held before
    /// bodies were admitted on arrival. More get 503 with `Retry-After`.
    public var bodyBudgetBytes: Int?
    /// An upload slower than this (bytes per second, averaged from its start) after
    /// `uploadGraceSeconds` is cut off with 408: slow clients cannot hold memory or places.
    public var minUploadBytesPerSecond: Int = 16 * 1024
    /// Seconds an upload may take before the minimum rate applies.
    public var uploadGraceSeconds: Double = 5
    /// Seconds a connection has to send a complete request head (else 408 and close).
    public var headerTimeoutSeconds: Double = 10
    /// Open connections at most; one more is answered 503 and closed at once.
    public var maxConnections: Int = 512
    /// Serve `/v1/realtime` (WebSocket). Off by default: with it, connections start on
    /// Hummingbird's WebSocket-upgrade channel, where the framing handler (malformed-HTTP
    /// answers, first-head deadline, connection cap) joins only after the first request head
    /// (docs/SERVICE.md, "Realtime").
    public var realtime = false
    /// Seconds allowed for the upload (else 408), and again for waiting and transcribing (else
    /// 503 `DEADLINE_EXCEEDED`).
    public var timeoutSeconds: Double
    /// Most items in one batch request (`items`, or rows of `/invocations`).
    public var maxBatchItems: Int

    /// Ten minutes of 48 kHz stereo 16-bit WAV is 115.2 MB, 153.6 MB in base64: 160 MiB holds it.
    public static let defaultMaxBodyBytes = 160 * 1024 * 1024

    /// Creates a configuration; `concurrency` and `threads` left nil are derived from `cores`
    /// so that their product does not exceed it (both nil: one thread per request, one request
    /// per core).
    public init(host: String = "127.0.0.1", port: Int = 5000, preload: Bool = false,
                apiKey: String? = nil, maxBodyBytes: Int = ServerConfiguration.defaultMaxBodyBytes,
                concurrency: Int? = nil, threads: Int? = nil, device: ComputeDevice = .cpu, queueCapacity: Int? = nil,
                timeoutSeconds: Double = 120, maxBatchItems: Int = 64,
                cores: Int = ProcessInfo.processInfo.activeProcessorCount) {
        let cores = max(1, cores)
        let (workers, perPass) = Self.split(concurrency: concurrency, threads: threads, cores: cores)
        self.host = host
        self.port = port
        self.preload = preload
        self.apiKey = (apiKey?.isEmpty ?? true) ? nil : apiKey
        self.maxBodyBytes = maxBodyBytes
        self.concurrency = workers
        self.threads = perPass
        self.device = device
        self.queueCapacity = max(0, queueCapacity ?? 16 * workers)
        self.timeoutSeconds = timeoutSeconds
        self.maxBatchItems = max(1, maxBatchItems)
    }

    /// The body budget in force (`bodyBudgetBytes`, or its default).
    public var effectiveBodyBudget: Int {
        bodyBudgetBytes ?? max(maxBodyBytes, 3 * concurrency * maxBodyBytes)
    }

    /// Splits `cores` between requests and threads per request, keeping whichever was given.
    public static func split(concurrency: Int?, threads: Int?, cores: Int) -> (concurrency: Int, threads: Int) {
        let cores = max(1, cores)
        switch (concurrency, threads) {
        case let (c?, b?): return (max(1, c), max(1, b))
        case let (c?, nil): return (max(1, c), max(1, cores / max(1, c)))
        case let (nil, b?): return (max(1, cores / max(1, b)), max(1, b))
        case (nil, nil): return (cores, 1)
        }
    }

    /// True when `concurrency × threads` exceeds `cores` (the service then logs a warning:
    /// oversubscribed threads fight each other and every request gets slower).
    public func oversubscribes(cores: Int = ProcessInfo.processInfo.activeProcessorCount) -> Bool {
        concurrency * threads > max(1, cores)
    }
}
