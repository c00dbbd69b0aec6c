// `vani serve`: the HTTP door onto the Recognizer (see docs/SERVICE.md).

import ArgumentParser
import ASR
import ASRServer
import Foundation
import Logging

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the HTTP service: /asr, /invocations (MLflow), /v1/audio/transcriptions (OpenAI), /health.",
        discussion: """
            Threads: concurrency × threads should not exceed the cores. Each forward pass runs on \
            --threads threads of Vani's pool (OpenBLAS itself single-threaded). Given neither, the \
            service runs one request per core with one thread each.
            """)

    @Option(help: "Weights file (default: $VANI_MODEL, else Weights/default.safetensors).")
    var model: String?

    @Option(help: "Address to bind.")
    var host = "127.0.0.1"

    @Option(help: "TCP port.")
    var port = 5000

    @Flag(help: "Load the model at start-up (default: on the first request).")
    var preload = false

    @Option(help: "Require this key as 'Authorization: Bearer KEY' or 'X-API-Key' (default: $VANI_API_KEY; /health and /ping stay open).")
    var apiKey: String?

    @Option(help: "Largest request body in MiB (the default holds 10 min of 48 kHz stereo WAV in base64).")
    var maxBodyMb: Double = Double(ServerConfiguration.defaultMaxBodyBytes) / 1_048_576

    @Option(help: "Requests transcribed at once (default: cores / threads).")
    var concurrency: Int?

    @Option(name: [.customLong("threads"), .customLong("blas-threads")],
            help: "Threads per forward pass on Vani's pool (OpenBLAS itself single-threaded; default: cores / concurrency; --blas-threads is the old name).")
    var threads: Int?

    @Option(help: "Where the forward work runs: \(ComputeDevice.allCases.map(\.rawValue).joined(separator: ", ")).")
    var device: ComputeDevice = .cpu

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
        let modelURL = model.map { URL(fileURLWithPath: $0) } ?? Recognizer.defaultModelURL()
        // Loading may be lazy, but a missing file is a mistake to report now, not on the first request.
        guard FileManager.default.fileExists(atPath: modelURL.path) else {
            throw ValidationError(RecognizerError.modelNotFound(path: modelURL.path).description)
        }
        var configuration = ServerConfiguration(
            host: host, port: port, preload: preload, apiKey: apiKey ?? environment["VANI_API_KEY"],
            maxBodyBytes: Int(maxBodyMb * 1_048_576), concurrency: concurrency, threads: threads, device: device,
            queueCapacity: queue, timeoutSeconds: timeout, maxBatchItems: maxBatch)
        configuration.maxConnections = maxConnections
        configuration.headerTimeoutSeconds = headerTimeout
        configuration.minUploadBytesPerSecond = Int(minUploadRate * 1024)
        configuration.realtime = realtime
        let service = ASRService(configuration: configuration, modelURL: modelURL, logger: Logger(label: "vani.serve"))
        try await service.run()
    }
}
