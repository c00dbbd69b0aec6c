// Builds WAV bytes in the tests, so each header field can be made to lie on purpose.

import Foundation

struct WAVBuilder {
    var formatTag: UInt16 = 1        // 1 PCM, 3 IEEE float, 0xFFFE extensible
    var channels: UInt16 = 1
    var sampleRate: UInt32 = 16000
    var bitsPerSample: UInt16 = 16
    var payload = Data()
    /// When set, the data chunk's size field says this instead of the payload's size.
    var dataSizeOverride: UInt32?
    var riffSizeOverride: UInt32?

    var blockAlign: UInt16 { channels &* ((bitsPerSample &+ 7) / 8) }

    static func pcm16(_ samples: [Int16], channels: UInt16 = 1, rate: UInt32 = 16000) -> WAVBuilder {
        var b = WAVBuilder(channels: channels, sampleRate: rate)
        for s in samples { b.payload.append(le: UInt16(bitPattern: s)) }
        return b
    }

    static func float32(_ samples: [Float], rate: UInt32 = 16000) -> WAVBuilder {
        var b = WAVBuilder(formatTag: 3, sampleRate: rate, bitsPerSample: 32)
        for s in samples { b.payload.append(le: s.bitPattern) }
        return b
    }

    var data: Data {
        var fmt = Data()
        fmt.append(le: formatTag)
        fmt.append(le: channels)
        fmt.append(le: sampleRate)
        fmt.append(le: sampleRate &* UInt32(blockAlign))
        fmt.append(le: blockAlign)
        fmt.append(le: bitsPerSample)
        var body = Data("WAVE".utf8)
        body.append(Data("fmt ".utf8)); body.append(le: UInt32(fmt.count)); body.append(fmt)
        body.append(Data("data".utf8)); body.append(le: dataSizeOverride ?? UInt32(payload.count))
        body.append(payload)
        var out = Data("RIFF".utf8)
        out.append(le: riffSizeOverride ?? UInt32(body.count))
        out.append(body)
        return out
    }
}

extension Data {
    mutating func append<T: FixedWidthInteger>(le value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }
}

/// A 440 Hz tone as 16-bit samples.
func tone16(_ count: Int, rate: Double = 16000) -> [Int16] {
    (0..<count).map { Int16((sin(2 * Double.pi * 440 * Double($0) / rate) * 10000).rounded()) }
}
