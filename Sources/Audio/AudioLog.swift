// Where the audio libraries' own messages go: into swift-log, on the logger of the call that
// is decoding (the service binds its request's logger, so every line carries the request id),
// never straight to the process's stderr.

import CFFmpeg
import Foundation
import Logging

/// The logger that decoding writes to: FFmpeg's messages (through `av_log_set_callback`) and
/// the decoder's own warnings (a truncated file).
///
/// Bind it for a call with `AudioLog.$logger.withValue(requestLogger) { ... }`; it is a task
/// local, and also binds on a plain thread for the duration of the closure, which is where the
/// service's workers decode. Unbound, messages go to a `vani.audio` logger of the process's
/// logging system.
public enum AudioLog {
    /// The logger of the decoding in progress on this task or thread.
    @TaskLocal public static var logger = Logger(label: "vani.audio")

    /// Most library lines one decode may write; the rest are counted in one last line (a
    /// damaged file can make a codec complain about every frame).
    static let maxLibraryLines = 20

    /// Lines left for the current decode, per task/thread (nil outside a decode).
    @TaskLocal static var budget: LineBudget?

    /// Installs the FFmpeg log callback (once per process; idempotent).
    static func installFFmpegCallback() { _ = installed }

    private static let installed: Bool = {
        vani_install_av_log_callback()
        return true
    }()

    /// Runs `body` with a fresh line budget; says how many lines were dropped, if any.
    static func withBudget<T>(_ body: () throws(AudioError) -> T) throws(AudioError) -> T {
        let budget = LineBudget(maxLibraryLines)
        defer {
            let dropped = budget.dropped
            if dropped > 0 {
                logger.notice("further audio library messages suppressed", metadata: ["suppressed": "\(dropped)"])
            }
        }
        let result: Result<T, AudioError> = $budget.withValue(budget) {
            do throws(AudioError) { return .success(try body()) } catch { return .failure(error) }
        }
        return try result.get()
    }

    /// Logs one message from a C library through the bound logger, within the budget.
    static func library(_ library: String, component: String?, level: Logger.Level, _ text: String) {
        let logger = self.logger
        guard level >= logger.logLevel else { return }
        // One log line per message: FFmpeg puts advice on a second line of the same call.
        let line = text.trimmingCharacters(in: .whitespacesAndNewlines)
            .split(whereSeparator: \.isNewline).joined(separator: " ")
        guard !line.isEmpty else { return }
        if let budget, !budget.take() { return }
        var metadata: Logger.Metadata = ["library": "\(library)"]
        if let component { metadata["component"] = "\(component)" }
        logger.log(level: level, "\(line)", metadata: metadata)
    }

    /// A warning about audio that was decoded all the same.
    static func warning(_ warning: AudioWarning, format: String) {
        logger.warning("\(warning.message)", metadata: ["audio_warning": "\(warning.code)", "format": "\(format)"])
    }
}

/// Lines one decode may still log (shared by the C callback's calls on the decoding thread).
final class LineBudget: @unchecked Sendable {
    private let lock = NSLock()
    private var left: Int
    private(set) var dropped = 0
    init(_ lines: Int) { left = lines }
    func take() -> Bool {
        lock.lock(); defer { lock.unlock() }
        if left > 0 { left -= 1; return true }
        dropped += 1
        return false
    }
}

/// FFmpeg's levels (`AV_LOG_*`) as swift-log levels. What FFmpeg calls an error is a fault of
/// the input, not of the server (`notice`); its warnings and notes (timestamps it could not
/// update, durations it estimated) are details (`debug`). What matters to the client reaches it
/// as an `AudioError` or an `AudioWarning`, which is logged at `warning`.
private func level(ffmpeg value: Int32) -> Logger.Level {
    switch value {
    case ...AV_LOG_ERROR: return .notice
    case ...AV_LOG_INFO: return .debug
    default: return .trace
    }
}

/// Where the shim's `av_log` callback sends each formatted line (Sources/CFFmpeg/shim.h).
@_cdecl("vani_audio_log_line")
func vaniAudioLogLine(_ value: Int32, _ line: UnsafePointer<CChar>?, _ component: UnsafePointer<CChar>?) {
    guard let line else { return }
    let level = level(ffmpeg: value)
    guard level >= AudioLog.logger.logLevel else { return }
    AudioLog.library("ffmpeg", component: component.map { String(cString: $0) }, level: level, String(cString: line))
}
