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

    /// How a container shows that the file was cut, when it states its own length or frame
    /// sizes: an Ogg page, an MPEG audio frame or an MP4 box running past the end, an ASF header
    /// or a Matroska segment declaring more bytes than the file holds, an Ogg stream without its
    /// end-of-stream page. Nil when the bytes show no cut (or are not one of these).
    static func containerCut(_ b: UnsafeRawBufferPointer) -> String? {
        if b.count >= 4, b[0] == 0x4F, b[1] == 0x67, b[2] == 0x67, b[3] == 0x53 { return oggCut(b) }
        if isMPEGAudio(b) { return mpegCut(b) }
        if b.count >= 16, Array(b[0..<16]) == asfHeaderGUID { return asfCut(b) }
        if b.count >= 8, b[4] == 0x66, b[5] == 0x74, b[6] == 0x79, b[7] == 0x70 { return mp4Cut(b) }   // ....ftyp
        if b.count >= 4, b[0] == 0x1A, b[1] == 0x45, b[2] == 0xDF, b[3] == 0xA3 { return matroskaCut(b) }
        return nil
    }

    // MARK: - MPEG audio

    /// The cut of an MPEG audio stream: a last frame shorter than its header says.
    static func mpegCut(_ b: UnsafeRawBufferPointer) -> String? {
        var offset = 0
        while offset + 10 <= b.count, b[offset] == 0x49, b[offset + 1] == 0x44, b[offset + 2] == 0x33 {
            let size = (Int(b[offset + 6] & 0x7F) << 21) | (Int(b[offset + 7] & 0x7F) << 14)
                | (Int(b[offset + 8] & 0x7F) << 7) | Int(b[offset + 9] & 0x7F)
            offset += 10 + size + (b[offset + 5] & 0x10 != 0 ? 10 : 0)
        }
        var frames = 0
        while offset + 4 <= b.count {
            // Anything that is not a frame (a trailing ID3v1/APE tag, junk a decoder resyncs
            // over) ends the walk without a verdict.
            guard let length = mpegFrameLength(b, at: offset) else { return nil }
            if offset + length > b.count {
                return frames > 0 ? "the last MPEG audio frame holds \(b.count - offset) of its \(length) bytes" : nil
            }
            offset += length
            frames += 1
        }
        if offset < b.count, frames > 0, b[offset] == 0xFF {
            return "the file ends inside the header of an MPEG audio frame"
        }
        return nil
    }

    /// The length in bytes of the MPEG audio frame whose header is at `o`, nil when there is
    /// no valid header there (free-format frames included: their length is not in the header).
    static func mpegFrameLength(_ b: UnsafeRawBufferPointer, at o: Int) -> Int? {
        guard o + 4 <= b.count, b[o] == 0xFF, b[o + 1] & 0xE0 == 0xE0 else { return nil }
        let version = Int((b[o + 1] >> 3) & 3), layer = Int((b[o + 1] >> 1) & 3)
        let bitrateIndex = Int(b[o + 2] >> 4), rateIndex = Int((b[o + 2] >> 2) & 3), padding = Int((b[o + 2] >> 1) & 1)
        guard version != 1, layer != 0, bitrateIndex != 0, bitrateIndex != 15, rateIndex != 3 else { return nil }
        let mpeg1 = version == 3
        let rate = [44100, 48000, 32000][rateIndex] >> (version == 3 ? 0 : version == 2 ? 1 : 2)
        let kbps: [Int]
        switch (mpeg1, layer) {
        case (true, 3): kbps = [0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448]
        case (true, 2): kbps = [0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384]
        case (true, _): kbps = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320]
        case (false, 3): kbps = [0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256]
        case (false, _): kbps = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160]
        }
        let bitrate = kbps[bitrateIndex] * 1000
        switch layer {
        case 3: return (12 * bitrate / rate + padding) * 4                   // Layer I
        case 2: return 144 * bitrate / rate + padding                        // Layer II
        default: return (mpeg1 ? 144 : 72) * bitrate / rate + padding         // Layer III
        }
    }

    // MARK: - ASF, MP4, Matroska

    static let asfHeaderGUID: [UInt8] = [0x30, 0x26, 0xB2, 0x75, 0x8E, 0x66, 0xCF, 0x11,
                                         0xA6, 0xD9, 0x00, 0xAA, 0x00, 0x62, 0xCE, 0x6C]
    static let asfFilePropertiesGUID: [UInt8] = [0xA1, 0xDC, 0xAB, 0x8C, 0x47, 0xA9, 0xCF, 0x11,
                                                 0x8E, 0xE4, 0x00, 0xC0, 0x0C, 0x20, 0x53, 0x65]

    /// ASF (WMA): the File Properties object states the file's size.
    static func asfCut(_ b: UnsafeRawBufferPointer) -> String? {
        guard b.count >= 30 else { return nil }
        let headerEnd = min(b.count, Int(min(le64(b, 16), UInt64(b.count))))
        var offset = 30
        while offset + 24 <= headerEnd {
            let size = Int(min(le64(b, offset + 16), UInt64(Int.max / 2)))
            if Array(b[offset..<(offset + 16)]) == asfFilePropertiesGUID, offset + 48 <= b.count {
                let declared = le64(b, offset + 40)
                return declared > UInt64(b.count) ? "the ASF header declares \(declared) bytes, the file holds \(b.count)" : nil
            }
            guard size >= 24 else { return nil }
            offset += size
        }
        return nil
    }

    /// MP4/MOV/3GP: a top-level box running past the end of the file.
    static func mp4Cut(_ b: UnsafeRawBufferPointer) -> String? {
        var offset = 0
        while offset + 8 <= b.count {
            var size = UInt64(be32(b, offset))
            let type = String(decoding: b[(offset + 4)..<(offset + 8)], as: UTF8.self)
            if size == 1 {
                guard offset + 16 <= b.count else { return "the file ends inside the header of its '\(type)' box" }
                size = be64(b, offset + 8)
            } else if size == 0 {
                return nil   // "to the end of the file"
            }
            guard size >= 8 else { return nil }
            if UInt64(offset) + size > UInt64(b.count) {
                return "its '\(type)' box declares \(size) bytes, \(b.count - offset) are present"
            }
            offset += Int(size)
        }
        return nil
    }

    /// Matroska/WebM: a Segment of known size running past the end (MediaRecorder writes an
    /// unknown size, which says nothing).
    static func matroskaCut(_ b: UnsafeRawBufferPointer) -> String? {
        var offset = 4
        guard let (headerSize, headerLength, _) = vint(b, at: offset) else { return nil }
        offset += headerLength + Int(min(headerSize, UInt64(b.count)))
        guard offset + 4 <= b.count, b[offset] == 0x18, b[offset + 1] == 0x53, b[offset + 2] == 0x80, b[offset + 3] == 0x67,
              let (size, length, unknown) = vint(b, at: offset + 4), !unknown else { return nil }
        let end = UInt64(offset + 4 + length) + size
        return end > UInt64(b.count) ? "its Segment declares \(size) bytes, \(b.count - offset - 4 - length) are present" : nil
    }

    /// An EBML variable-length integer: value, length in bytes, and whether it is the reserved
    /// "unknown size" (all value bits set).
    static func vint(_ b: UnsafeRawBufferPointer, at o: Int) -> (UInt64, Int, Bool)? {
        guard o < b.count, b[o] != 0 else { return nil }
        let length = b[o].leadingZeroBitCount + 1
        guard o + length <= b.count else { return nil }
        var value = UInt64(b[o] & (0xFF >> length))
        var allOnes = value == UInt64(0xFF >> length)
        for i in 1..<length {
            value = value << 8 | UInt64(b[o + i])
            allOnes = allOnes && b[o + i] == 0xFF
        }
        return (value, length, allOnes)
    }

    static func be32(_ b: UnsafeRawBufferPointer, _ o: Int) -> UInt32 {
        UInt32(b[o]) << 24 | UInt32(b[o + 1]) << 16 | UInt32(b[o + 2]) << 8 | UInt32(b[o + 3])
    }
    static func be64(_ b: UnsafeRawBufferPointer, _ o: Int) -> UInt64 {
        UInt64(be32(b, o)) << 32 | UInt64(be32(b, o + 4))
    }
    static func le64(_ b: UnsafeRawBufferPointer, _ o: Int) -> UInt64 {
        (0..<8).reduce(UInt64(0)) { $0 | UInt64(b[o + $1]) << (8 * $1) }
    }

    // MARK: - Ogg

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
