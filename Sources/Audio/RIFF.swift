// Just enough RIFF walking to tell a truncated WAV from a complete one: libsndfile quietly
// shortens a `data` chunk that runs past the end of the file, which would hide a cut upload.

import CSndfile
import Foundation

enum RIFF {
    /// The byte count the `data` chunk header promises, or nil when the bytes are not a
    /// RIFF/WAVE file, have no `data` chunk header, or carry a streaming placeholder size
    /// (0 or 0xFFFFFFFF: written before the length was known, so it promises nothing).
    static func promisedDataBytes(_ bytes: UnsafeRawBufferPointer) -> Int? {
        guard bytes.count >= 12, tag(bytes, 0) == "RIFF", tag(bytes, 8) == "WAVE" else { return nil }
        var offset = 12
        while offset + 8 <= bytes.count {
            let size = Int(u32(bytes, offset + 4))
            if tag(bytes, offset) == "data" {
                return size == 0 || size == 0xFFFF_FFFF || size == 0x7FFF_FFFF ? nil : size
            }
            offset += 8 + size + (size & 1)  // chunks are padded to even length
        }
        return nil
    }

    /// A copy of a RIFF/WAVE file whose `data` chunk size is 0 but which has bytes after
    /// that header (a streaming writer never came back to fill in the size) with the size
    /// set to the bytes present; nil when no patch is needed. libsndfile reads such a file as
    /// empty, sox and most players read to the end.
    static func patchedZeroDataSize(_ data: Data) -> Data? {
        let position: Int? = data.withUnsafeBytes { bytes in
            guard bytes.count >= 12, tag(bytes, 0) == "RIFF", tag(bytes, 8) == "WAVE" else { return nil }
            var offset = 12
            while offset + 8 <= bytes.count {
                let size = Int(u32(bytes, offset + 4))
                if tag(bytes, offset) == "data" {
                    return size == 0 && bytes.count > offset + 8 ? offset + 4 : nil
                }
                offset += 8 + size + (size & 1)
            }
            return nil
        }
        guard let position else { return nil }
        let size = UInt32(clamping: data.count - (position + 4))
        var patched = Data(data)
        withUnsafeBytes(of: size.littleEndian) { bytes in
            patched.replaceSubrange((patched.startIndex + position)..<(patched.startIndex + position + 4),
                                    with: bytes)
        }
        return patched
    }

    /// True when a RIFF/WAVE file's `fmt ` chunk names MPEG audio (format tags 0x0050, 0x0055):
    /// libsndfile would decode it through libmpg123, so it goes to FFmpeg.
    static func holdsMPEG(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard bytes.count >= 12, tag(bytes, 0) == "RIFF", tag(bytes, 8) == "WAVE" else { return false }
        var offset = 12
        while offset + 10 <= bytes.count {
            let size = Int(u32(bytes, offset + 4))
            if tag(bytes, offset) == "fmt " {
                let formatTag = UInt16(bytes[offset + 8]) | UInt16(bytes[offset + 9]) << 8
                return formatTag == 0x0050 || formatTag == 0x0055
            }
            offset += 8 + size + (size & 1)
        }
        return false
    }

    /// Bytes per frame of a fixed-size PCM/float encoding, or 0 when frames have no fixed size.
    static func bytesPerFrame(_ format: Int, channels: Int) -> Int {
        let major = format & SF_FORMAT_TYPEMASK
        guard major == SF_FORMAT_WAV || major == SF_FORMAT_WAVEX else {
            return 0
        }
        let width: Int
        switch format & SF_FORMAT_SUBMASK {
        case SF_FORMAT_PCM_U8, SF_FORMAT_PCM_S8: width = 1
        case SF_FORMAT_PCM_16: width = 2
        case SF_FORMAT_PCM_24: width = 3
        case SF_FORMAT_PCM_32, SF_FORMAT_FLOAT: width = 4
        case SF_FORMAT_DOUBLE: width = 8
        default: return 0
        }
        return width * channels
    }

    private static func tag(_ b: UnsafeRawBufferPointer, _ at: Int) -> String {
        String(decoding: b[at..<(at + 4)], as: UTF8.self)
    }

    private static func u32(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt32 {
        UInt32(b[at]) | UInt32(b[at + 1]) << 8 | UInt32(b[at + 2]) << 16 | UInt32(b[at + 3]) << 24
    }
}
