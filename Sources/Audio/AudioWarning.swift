// What a decoder has to say about audio it did decode: the file was cut short, a part of it
// could not be decoded. The audio is transcribed all the same; the caller shows the warning.

import Foundation

/// Something wrong with audio that was decoded all the same (a truncated file gives what is
/// there), with a stable `code` for programs and a `message` for people.
public struct AudioWarning: Sendable, Codable, Equatable, CustomStringConvertible {
    /// A stable machine-readable name: `"truncated"` (the file ends before the audio it
    /// declares, or in the middle of a frame), `"damaged"` (parts of the stream could not be
    /// decoded and were skipped).
    public var code: String
    /// What happened and what was done about it, ending with what the caller can do.
    public var message: String

    /// A warning with its code and message.
    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }

    /// `message`.
    public var description: String { message }

    /// The file holds less than its header declares.
    /// - Parameters:
    ///   - container: what was read, e.g. `"wav"`, `"flac"`, `"mp3"`.
    ///   - expectedSeconds: the length the header declares, nil when it declares none (the
    ///     stream simply stops in the middle of a frame or page).
    ///   - decodedSeconds: the length decoded and transcribed.
    ///   - detail: how the cut was seen, e.g. `"the last frame is incomplete"`.
    public static func truncated(container: String, expectedSeconds: Double?, decodedSeconds: Double,
                                 detail: String? = nil) -> AudioWarning {
        var message = "The \(container) file is truncated"
        if let expectedSeconds {
            message += ": it declares \(seconds(expectedSeconds)) s of audio but holds \(seconds(decodedSeconds)) s"
        }
        if let detail { message += " (\(detail))" }
        message += "; the \(seconds(decodedSeconds)) s present were transcribed. Upload the complete file for the rest."
        return AudioWarning(code: "truncated", message: message)
    }

    /// Parts of the stream could not be decoded and were skipped.
    public static func damaged(container: String, skippedPackets: Int, detail: String) -> AudioWarning {
        AudioWarning(code: "damaged",
                     message: "\(skippedPackets) packet\(skippedPackets == 1 ? "" : "s") of the \(container) stream "
                        + "could not be decoded (\(detail)) and \(skippedPackets == 1 ? "was" : "were") skipped; "
                        + "the rest was transcribed. "
                        + "Re-encode the file if words are missing.")
    }

    private static func seconds(_ s: Double) -> String {
        guard s.isFinite else { return String(s) }
        return String(format: "%.2f", s)
    }
}
