// Looks at the bytes themselves: which decoder to ask first, whether an Ogg stream was cut,
// whether an upload is text rather than audio.

import Foundation

enum Sniff {
    /// True when the bytes start with an ID3v2 tag or a valid MPEG audio frame header (what
    /// libsndfile would hand to libmpg123): these go to FFmpeg's MPEG decoder.
    static func isMPEGAudio(_ b: UnsafeRawBufferPointer) -> Bool {
        if b.count >= 10, b[0] == 0x49, b[1] == 0x44, b[2] == 0x33, b[3] < 0xFF, b[4] < 0xFF { return true }
        guard b.count >= 4, b[0] == 0xFF, b[1] & 0xE0 == 0xE0 else { return false }
        let version = (b[1] >> 3) & 3, layer = (b[1] >> 1) & 3
        let bitrate = b[2] >> 4, rate = (b[2] >> 2) & 3
        return version != 1 && layer != 0 && bitrate != 15 && rate != 3
    }

    /// How an Ogg stream shows it was cut, or nil when it ends as a complete stream does: with a
    /// whole page carrying the end-of-stream flag.
    static func oggCut(_ b: UnsafeRawBufferPointer) -> String? {
        var offset = 0
        var lastFlags: UInt8?
        while offset + 27 <= b.count {
            guard b[offset] == 0x4F, b[offset + 1] == 0x67, b[offset + 2] == 0x67, b[offset + 3] == 0x53 else {
                return nil   // not a plain sequence of pages (junk or another layout): say nothing
            }
            let segments = Int(b[offset + 26])
            guard offset + 27 + segments <= b.count else { return "the last Ogg page is incomplete" }
            var body = 0
            for i in 0..<segments { body += Int(b[offset + 27 + i]) }
            let end = offset + 27 + segments + body
            guard end <= b.count else { return "the last Ogg page is incomplete" }
            lastFlags = b[offset + 5]
            offset = end
        }
        if offset < b.count { return offset + 4 <= b.count ? "the last Ogg page is incomplete" : nil }
        guard let lastFlags else { return nil }
        return lastFlags & 0x04 == 0 ? "the stream ends without its end-of-stream page" : nil
    }

    /// The start of the bytes when they are printable UTF-8 text (a file's name or path, a form
    /// field, a JSON document where audio bytes were expected); nil for binary data.
    static func text(_ b: UnsafeRawBufferPointer) -> String? {
        let head = b.prefix(4096)
        guard !head.isEmpty else { return nil }
        for byte in head where byte < 0x20 && byte != 0x09 && byte != 0x0A && byte != 0x0D { return nil }
        guard let text = String(validating: Array(head), as: UTF8.self) ?? (b.count > 4096 ? String(decoding: head, as: UTF8.self) : nil)
        else { return nil }
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { return nil }
        return trimmed.count > 60 ? String(trimmed.prefix(60)) + "…" : trimmed
    }
}
