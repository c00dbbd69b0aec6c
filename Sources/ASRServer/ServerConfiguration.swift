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
    /// The accepted API keys with their names (`--api-key`, `--api-keys-file`). When any is set,
    /// every endpoint except `/health` and `/ping` (and `/metrics` with `metricsPublic`) needs
    /// `Authorization: Bearer KEY` or `X-API-Key: KEY` with one of them.
    public var apiKeys: [APIKey] = []
    /// The key of `--api-key` (named `api-key`), one of `apiKeys`; setting it replaces that entry.
    public var apiKey: String? {
        get { apiKeys.first { $0.name == APIKey.primaryName }?.key }
        set {
            apiKeys.removeAll { $0.name == APIKey.primaryName }
            if let newValue, !newValue.isEmpty { apiKeys.insert(APIKey(name: APIKey.primaryName, key: newValue), at: 0) }
        }
    }
    /// Largest request body accepted, in bytes (larger gets 413).
    public var maxBodyBytes: Int
    /// Forward passes run at once (worker threads).
    public var concurrency: Int
    /// Threads per forward pass (Vani's pool).
    public var threads: Int
    /// Where the forward work runs.
    public var device: ComputeDevice
    /// The precision of the encoder's weight products (nil: as the model file stores them, fp32
    /// for the release's files).
    public var precision: Precision?
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
    /// Longest audio accepted, in seconds (longer gets 422 while it is decoded).
    public var maxAudioSeconds: Double = 3600
    /// Bytes of transcripts the response cache keeps (least recently used go first); 0 turns it off.
    public var cacheBytes: Int = ServerConfiguration.defaultCacheBytes
    /// On `/v1/audio/transcriptions`, an unknown `model` is 404 instead of meaning the default.
    public var strictModelNames = false
    /// `/metrics` answers without an API key.
    public var metricsPublic = false
    /// Requests per second allowed per API key (or client address without keys), in bursts of as
    /// many; nil: no limit.
    public var rateLimit: Double?
    /// Seconds of audio per minute allowed per API key (or client address); nil: no limit.
    public var audioSecondsPerMinute: Double?
    /// Without API keys, rate limits count per address: with this, the last address of
    /// `X-Forwarded-For` (the one the proxy in front added) instead of the connection's.
    public var trustForwardedFor = false
    /// Origins allowed by CORS (`*` for any); empty: no CORS headers at all.
    public var corsOrigins: [String] = []
    /// The language of requests that name none (OpenAI clients often omit it); nil: required.
    public var defaultLanguage: String?
    /// Milliseconds a request waits for others to share an encoder batch with
    /// (`--batch-wait-ms`, BatchScheduler.swift); 0 turns batching off.
    public var batchWaitMs: Double = ServerConfiguration.defaultBatchWaitMs
    /// Encoder frames of one batch at most (`--max-batch-frames`; 12.5 frames per second of
    /// audio in the release): bounds a batch's memory and its latency.
    public var maxBatchFrames: Int = ServerConfiguration.defaultMaxBatchFrames
    /// 5 ms: short next to a forward pass, long enough to gather requests that arrive together.
    public static let defaultBatchWaitMs = 5.0
    /// 1024 frames: sixteen 5 s clips, or 80 s of audio.
    public static let defaultMaxBatchFrames = 1024
    /// A batch starts without waiting out `batchWaitMs` once every admitted request has reached
    /// the scheduler (none other is on its way); tests turn this off to make a batch form only
    /// when it is full.
    var batchWaitsForAdmittedOnly = true
    /// Worker threads per forward-pass slot when batching is on: they decode audio and wait in
    /// the scheduler, so that up to this many admitted requests per slot can gather into one batch.
    public static let batchGatherers = 8

    /// Threads of the worker pool: `concurrency`, or `concurrency × batchGatherers` with batching
    /// on (still at most `concurrency` forward passes at once: the scheduler's lanes). Admission
    /// counts places as before: `concurrency` running plus `queueCapacity` waiting.
    public var poolThreads: Int { batchWaitMs > 0 ? concurrency * Self.batchGatherers : concurrency }

    /// 64 MiB of transcripts: tens of thousands of answers.
    public static let defaultCacheBytes = 64 * 1024 * 1024
    /// Serve the browser page at `/` and `/ui` (on by default; `vani serve --no-ui` turns it off).
    public var webUI = true

    /// Ten minutes of 48 kHz stereo 16-bit WAV is 115.2 MB, 153.6 MB in base64: 160 MiB holds it.
    public static let defaultMaxBodyBytes = 160 * 1024 * 1024

    /// Creates a configuration; `concurrency` and `threads` left nil are derived from `cores`
    /// so that their product does not exceed it (both nil: one thread per request, one request
    /// per core).
    public init(host: String = "127.0.0.1", port: Int = 5000, preload: Bool = false,
                apiKey: String? = nil, maxBodyBytes: Int = ServerConfiguration.defaultMaxBodyBytes,
                concurrency: Int? = nil, threads: Int? = nil, device: ComputeDevice = .cpu,
                precision: Precision? = nil, queueCapacity: Int? = nil,
                timeoutSeconds: Double = 120, maxBatchItems: Int = 64,
                cores: Int = ProcessInfo.processInfo.activeProcessorCount) {
        let cores = max(1, cores)
        let (workers, perPass) = Self.split(concurrency: concurrency, threads: threads, cores: cores)
        self.host = host
        self.port = port
        self.preload = preload
        self.maxBodyBytes = maxBodyBytes
        self.concurrency = workers
        self.threads = perPass
        self.device = device
        self.precision = precision
        self.queueCapacity = max(0, queueCapacity ?? 16 * workers)
        self.timeoutSeconds = timeoutSeconds
        self.maxBatchItems = max(1, maxBatchItems)
        self.apiKey = apiKey
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

/// An accepted API key and the name it is known by in logs, metrics, rate limits and the
/// response cache (the key itself is never logged).
public struct APIKey: Sendable, Equatable {
    /// The name (`api-key` for `--api-key`; from the keys file, else `key-<line>`).
    public var name: String
    /// The secret the client sends.
    public var key: String
    /// The name of the `--api-key` key.
    public static let primaryName = "api-key"

    /// A key and its name.
    public init(name: String, key: String) { self.name = name; self.key = key }

    /// Reads an `--api-keys-file`: one key per line, `KEY` or `NAME KEY` (whitespace between);
    /// blank lines and lines starting with `#` are skipped.
    /// - Throws: a message naming the line, for a line with more than two fields, or a name or
    ///   key given twice.
    public static func parse(file contents: String) throws(APIKeyFileError) -> [APIKey] {
        var keys: [APIKey] = []
        for (index, raw) in contents.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !line.isEmpty, !line.hasPrefix("#") else { continue }
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            let key: APIKey
            switch fields.count {
            case 1: key = APIKey(name: "key-\(index + 1)", key: fields[0])
            case 2: key = APIKey(name: fields[0], key: fields[1])
            default: throw APIKeyFileError(line: index + 1, reason: "expected 'KEY' or 'NAME KEY', found \(fields.count) fields")
            }
            if keys.contains(where: { $0.name == key.name }) {
                throw APIKeyFileError(line: index + 1, reason: "the name '\(key.name)' is used twice")
            }
            if keys.contains(where: { $0.key == key.key }) {
                throw APIKeyFileError(line: index + 1, reason: "this key is listed twice")
            }
            keys.append(key)
        }
        return keys
    }
}

/// A line of an API keys file that could not be read.
public struct APIKeyFileError: Error, CustomStringConvertible, Sendable {
    /// 1-based line number.
    public var line: Int
    /// What is wrong with it.
    public var reason: String
    /// "line N: reason; the file holds one 'KEY' or 'NAME KEY' per line".
    public var description: String { "line \(line): \(reason); the file holds one 'KEY' or 'NAME KEY' per line" }
}
