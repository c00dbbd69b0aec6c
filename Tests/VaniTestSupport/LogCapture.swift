// A swift-log handler that keeps what is logged, for tests of where log lines go.

import Foundation
import Logging

/// One captured log line: level, message and metadata (the logger's and the event's).
public struct CapturedLine: Sendable, CustomStringConvertible {
    /// The line's level.
    public var level: Logger.Level
    /// The message.
    public var message: String
    /// The logger's metadata merged with the event's, as strings.
    public var metadata: [String: String]
    /// `level message metadata`.
    public var description: String { "\(level) \(message) \(metadata.sorted { $0.key < $1.key })" }
}

/// Keeps every line logged through `logger` (thread-safe).
public final class LogCapture: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [CapturedLine] = []

    /// An empty capture.
    public init() {}

    /// A logger writing into this capture, at `level` and above.
    public func logger(label: String = "vani.test.capture", level: Logger.Level = .trace) -> Logger {
        var logger = Logger(label: label) { _ in Handler(capture: self) }
        logger.logLevel = level
        return logger
    }

    /// Everything captured so far.
    public var lines: [CapturedLine] {
        lock.lock(); defer { lock.unlock() }
        return stored
    }

    fileprivate func append(_ line: CapturedLine) {
        lock.lock(); stored.append(line); lock.unlock()
    }

    private struct Handler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            var fields: [String: String] = [:]
            for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) { fields[key] = "\(value)" }
            capture.append(CapturedLine(level: event.level, message: event.message.description, metadata: fields))
        }
    }
}
