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

/// Wraps a text log handler so that a client's value can never forge a log line: control
/// characters in the message and in metadata values are written as escapes (`\n` → `\\n`).
/// The JSON handler needs no wrapping (its encoder escapes them).
public struct EscapingLogHandler: LogHandler {
    private var wrapped: any LogHandler

    /// Wraps `handler`.
    public init(_ handler: any LogHandler) { wrapped = handler }

    /// See `LogHandler`.
    public var logLevel: Logger.Level {
        get { wrapped.logLevel }
        set { wrapped.logLevel = newValue }
    }

    /// See `LogHandler`.
    public var metadata: Logger.Metadata {
        get { wrapped.metadata }
        set { wrapped.metadata = newValue }
    }

    /// See `LogHandler`.
    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { wrapped[metadataKey: key] }
        set { wrapped[metadataKey: key] = newValue }
    }

    /// Logs with control characters escaped in the message and every metadata value.
    public func log(event: LogEvent) {
        var event = event
        event.message = "\(escapingControlCharacters(event.message.description))"
        event.metadata = event.metadata.map { $0.mapValues(Self.escape) }
        wrapped.log(event: event)
    }

    static func escape(_ value: Logger.MetadataValue) -> Logger.MetadataValue {
        switch value {
        case .string(let s): return .string(escapingControlCharacters(s))
        case .stringConvertible(let c): return .string(escapingControlCharacters(c.description))
        case .array(let values): return .array(values.map(escape))
        case .dictionary(let values): return .dictionary(values.mapValues(escape))
        }
    }
}
