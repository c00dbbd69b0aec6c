// One JSON object per log line, for log collectors (`vani serve --log-format json`).

import Foundation
import Logging

/// A swift-log handler writing `{"ts", "level", "label", "message", ...metadata}` lines to stderr.
public struct JSONLogHandler: LogHandler {
    /// Metadata added to every line of this logger.
    public var metadata: Logger.Metadata = [:]
    /// Lines below this level are dropped.
    public var logLevel: Logger.Level = .info
    private let label: String

    /// A handler for the logger named `label`.
    public init(label: String) { self.label = label }

    /// One metadata value of this logger.
    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// Writes one JSON line: the logger's and the event's metadata, `ts`, `level`, `label`, `message`.
    public func log(event: LogEvent) {
        var fields: [String: String] = [:]
        for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) { fields[key] = "\(value)" }
        fields["ts"] = Date().formatted(.iso8601)
        fields["level"] = event.level.rawValue
        fields["label"] = label
        fields["message"] = event.message.description
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard var data = try? encoder.encode(fields) else { return }
        data.append(UInt8(ascii: "\n"))
        FileHandle.standardError.write(data)
    }
}

extension ASRService {
    /// Serves until SIGTERM or SIGINT, then stops accepting connections and finishes the
    /// requests in flight (Hummingbird's ServiceGroup graceful shutdown).
    public func run() async throws {
        if configuration.oversubscribes() {
            logger.warning("concurrency × blas-threads exceeds the cores: requests will slow each other down", metadata: [
                "concurrency": "\(configuration.concurrency)", "blas_threads": "\(configuration.blasThreads)",
                "cores": "\(ProcessInfo.processInfo.activeProcessorCount)"])
        }
        logger.info("vani serve", metadata: [
            "address": "\(configuration.host):\(configuration.port)", "model": "\(host.name)",
            "preload": "\(configuration.preload)", "concurrency": "\(configuration.concurrency)",
            "blas_threads": "\(configuration.blasThreads)", "queue": "\(configuration.queueCapacity)",
            "timeout_s": "\(configuration.timeoutSeconds)", "max_body_mib": "\(megabytes(configuration.maxBodyBytes))",
            "api_key": "\(configuration.apiKey == nil ? "off" : "on")", "ui": "\(configuration.webUI ? "on" : "off")"])
        try await application().runService()
        logger.info("vani serve stopped: requests in flight finished")
    }
}
