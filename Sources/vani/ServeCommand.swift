// `vani serve`: the HTTP door onto the Recognizer (see docs/SERVICE.md).

import ArgumentParser
import ASR
import ASRServer
import CoreMetrics
import Foundation
import Logging

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the HTTP service: /asr, /invocations (MLflow), /v1/audio/transcriptions (OpenAI), /health, and a page to try it at /.",
        discussion: """
            Threads: concurrency × threads should not exceed the cores. Each forward pass runs on \
            --threads threads of Vani's pool (OpenBLAS itself single-threaded). Given neither, the \
            service runs one request per core with one thread each. SIGHUP reloads every loaded model \
            from disk without downtime (as POST /v1/models/{name}/reload does for one); GET /metrics \
            serves Prometheus metrics.
            """)

    @Option(help: ArgumentHelp("Weights file, or NAME=FILE to serve several models (repeat the option); the first is the default (default: $VANI_MODEL, else Weights/default.safetensors).",
                               valueName: "[NAME=]FILE"))
    var model: [String] = []

    @Option(help: ArgumentHelp("The model used when a request names none (default: the first --model).", valueName: "name"))
    var defaultModel: String?

    @Flag(help: "On /v1/audio/transcriptions, answer 404 for a model name that is not loaded instead of using the default.")
    var strictModelNames = false

    @Option(help: "Address to bind.")
    var host = "127.0.0.1"

    @Option(help: "TCP port.")
    var port = 5000

    @Flag(help: "Load the model at start-up (default: on the first request).")
    var preload = false

    @Option(help: "Require this key as 'Authorization: Bearer KEY' or 'X-API-Key' (default: $VANI_API_KEY; /health, /ping and the page stay open).")
    var apiKey: String?

    @Option(help: ArgumentHelp("File of further accepted API keys: one 'KEY' or 'NAME KEY' per line ('#' comments).",
                               valueName: "file"))
    var apiKeysFile: String?

    @Flag(help: "Serve /metrics without an API key.")
    var metricsPublic = false

    @Option(help: ArgumentHelp("Requests per second per API key (or client address without keys), in bursts of as many; more get 429.",
                               valueName: "n"))
    var rateLimit: Double?

    @Option(help: ArgumentHelp("Seconds of audio per minute per API key (or client address); more get 429.", valueName: "seconds"))
    var audioSecondsPerMinute: Double?

    @Flag(help: "Without API keys, count rate limits per X-Forwarded-For address (only behind a proxy you trust).")
    var trustForwardedFor = false

    @Option(help: ArgumentHelp("Allow browsers from this origin (CORS); repeat for several, '*' for any (default: CORS off).",
                               valueName: "origin"))
    var corsOrigin: [String] = []

    @Option(help: ArgumentHelp("Language of requests that name none (default: the language is required).", valueName: "code"))
    var defaultLanguage: String?

    @Option(help: "Longest audio accepted, in seconds (longer gets 422).")
    var maxSeconds: Double = 3600

    @Option(help: "MiB of transcripts kept to answer identical requests from memory (0: no cache).")
    var cacheMb: Double = Double(ServerConfiguration.defaultCacheBytes) / 1_048_576

    @Option(help: "Largest request body in MiB (the default holds 10 min of 48 kHz stereo WAV in base64).")
    var maxBodyMb: Double = Double(ServerConfiguration.defaultMaxBodyBytes) / 1_048_576

    @Option(help: "Requests transcribed at once (default: cores / threads).")
    var concurrency: Int?

    @Option(name: [.customLong("threads"), .customLong("blas-threads")],
            help: "Threads per forward pass on Vani's pool (OpenBLAS itself single-threaded; default: cores / concurrency; --blas-threads is the old name).")
    var threads: Int?

    @Option(help: deviceHelp)
    var device: ComputeDevice = .auto

    @Option(help: precisionHelp)
    var precision: Precision?

    @Option(help: "Most requests waiting beyond those running (default: 16 × concurrency); a request is also refused when its estimated wait would not fit in --timeout.")
    var queue: Int?

    @Option(help: "Open connections at most; one more is answered 503 and closed.")
    var maxConnections = 512

    @Option(help: "Seconds a new connection has to send its first request head (else 408).")
    var headerTimeout: Double = 10

    @Option(help: "Slowest upload accepted after its first 5 s, in KiB/s (else 408).")
    var minUploadRate: Double = 16

    @Option(help: "Seconds allowed for the upload (else 408), and again for waiting and transcribing (else 503).")
    var timeout: Double = 120

    @Flag(help: "Serve live transcription on /v1/realtime (WebSocket; see docs/SERVICE.md for what it changes).")
    var realtime = false

    @Option(help: "Most items in one batch request.")
    var maxBatch = 64

    @Option(help: "Milliseconds a request waits for others to share an encoder batch with (same model and settings, similar length); 0 turns batching off. Answers are the same either way.")
    var batchWaitMs: Double = ServerConfiguration.defaultBatchWaitMs

    @Option(help: "Encoder frames of one batch at most (12.5 per second of audio in the release).")
    var maxBatchFrames: Int = ServerConfiguration.defaultMaxBatchFrames

    @Flag(help: "Do not serve the browser page at / and /ui.")
    var noUi = false

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    @Option(help: "Log format: text or json.")
    var logFormat: String = "text"

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0…65535") }
        guard maxBodyMb > 0 else { throw ValidationError("--max-body-mb must be positive") }
        if let concurrency, concurrency < 1 { throw ValidationError("--concurrency must be at least 1") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        if let queue, queue < 0 { throw ValidationError("--queue must be 0 or more") }
        guard maxConnections >= 1 else { throw ValidationError("--max-connections must be at least 1") }
        guard headerTimeout > 0 else { throw ValidationError("--header-timeout must be positive") }
        guard minUploadRate >= 0 else { throw ValidationError("--min-upload-rate must be 0 or more") }
        guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
        guard maxBatch >= 1 else { throw ValidationError("--max-batch must be at least 1") }
        guard batchWaitMs >= 0, batchWaitMs <= 10_000 else { throw ValidationError("--batch-wait-ms must be 0…10000") }
        guard maxBatchFrames >= 1 else { throw ValidationError("--max-batch-frames must be at least 1") }
        guard maxSeconds > 0 else { throw ValidationError("--max-seconds must be positive") }
        guard cacheMb >= 0 else { throw ValidationError("--cache-mb must be 0 or more") }
        if let rateLimit, rateLimit <= 0 { throw ValidationError("--rate-limit must be positive") }
        if let audioSecondsPerMinute, audioSecondsPerMinute <= 0 {
            throw ValidationError("--audio-seconds-per-minute must be positive")
        }
        let names = try modelFiles().map(\.name)
        guard Set(names).count == names.count else { throw ValidationError("--model: two models have the same name") }
        if let defaultModel, !names.contains(defaultModel) {
            throw ValidationError("--default-model '\(defaultModel)' is not among the models: \(names.joined(separator: ", "))")
        }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level: unknown level '\(logLevel)'") }
        guard ["text", "json"].contains(logFormat) else { throw ValidationError("--log-format must be text or json") }
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        let json = logFormat == "json"
        LoggingSystem.bootstrap { label in
            var handler: any LogHandler = json ? JSONLogHandler(label: label)
                : EscapingLogHandler(StreamLogHandler.standardError(label: label))
            handler.logLevel = level
            return handler
        }
        let environment = ProcessInfo.processInfo.environment
        let files = try modelFiles()
        // Loading may be lazy, but a missing file is a mistake to report now, not on the first request.
        for (_, url) in files where !FileManager.default.fileExists(atPath: url.path) {
            throw ValidationError(RecognizerError.modelNotFound(path: url.path).description)
        }
        var configuration = ServerConfiguration(
            host: host, port: port, preload: preload, apiKey: apiKey ?? environment["VANI_API_KEY"],
            maxBodyBytes: Int(maxBodyMb * 1_048_576), concurrency: concurrency, threads: threads, device: device,
            precision: precision, queueCapacity: queue, timeoutSeconds: timeout, maxBatchItems: maxBatch)
        configuration.maxConnections = maxConnections
        configuration.headerTimeoutSeconds = headerTimeout
        configuration.minUploadBytesPerSecond = Int(minUploadRate * 1024)
        if let apiKeysFile {
            let contents: String
            do { contents = try String(contentsOfFile: apiKeysFile, encoding: .utf8) } catch {
                throw ValidationError("--api-keys-file: cannot read \(apiKeysFile) (\(error.localizedDescription))")
            }
            do {
                for key in try APIKey.parse(file: contents) {
                    guard !configuration.apiKeys.contains(where: { $0.name == key.name || $0.key == key.key }) else {
                        throw ValidationError("--api-keys-file: the key or name '\(key.name)' repeats --api-key")
                    }
                    configuration.apiKeys.append(key)
                }
            } catch let error as APIKeyFileError {
                throw ValidationError("--api-keys-file \(apiKeysFile): \(error)")
            }
        }
        configuration.maxAudioSeconds = maxSeconds
        configuration.cacheBytes = Int(cacheMb * 1_048_576)
        configuration.strictModelNames = strictModelNames
        configuration.metricsPublic = metricsPublic
        configuration.rateLimit = rateLimit
        configuration.audioSecondsPerMinute = audioSecondsPerMinute
        configuration.trustForwardedFor = trustForwardedFor
        configuration.corsOrigins = corsOrigin
        configuration.defaultLanguage = defaultLanguage
        configuration.webUI = !noUi
        configuration.realtime = realtime
        configuration.batchWaitMs = batchWaitMs
        configuration.maxBatchFrames = maxBatchFrames
        // One registry for the process: the service's metrics, and any other library's through
        // swift-metrics, render on the same /metrics page. Bootstrapped once, here.
        let metrics = ServiceMetrics()
        MetricsSystem.bootstrap(metrics.factory)
        let service = ASRService(configuration: configuration, models: files, defaultModel: defaultModel,
                                 metrics: metrics, logger: Logger(label: "vani.serve"))
        try await service.run()
    }

    /// `--model` values as names and files: `NAME=FILE`, or `FILE` named after the file (without
    /// extension); none given: `$VANI_MODEL`, else the bundled default.
    func modelFiles() throws -> [(name: String, url: URL)] {
        guard !model.isEmpty else {
            let url = Recognizer.defaultModelURL()
            return [(url.deletingPathExtension().lastPathComponent, url)]
        }
        return try model.map { value throws -> (name: String, url: URL) in
            // NAME=FILE when the part before '=' looks like a name (no path separator).
            if let equals = value.firstIndex(of: "="), !value[..<equals].contains("/") {
                let name = String(value[..<equals]).trimmingCharacters(in: .whitespaces)
                let path = String(value[value.index(after: equals)...])
                guard !name.isEmpty, !path.isEmpty else { throw ValidationError("--model '\(value)': use NAME=FILE or FILE") }
                return (name, URL(fileURLWithPath: path))
            }
            let url = URL(fileURLWithPath: value)
            return (url.deletingPathExtension().lastPathComponent, url)
        }
    }
}
