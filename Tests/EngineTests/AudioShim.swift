import Audio
import Foundation

/// 16 kHz mono samples of a fixture file.
enum AudioDecoderShim {
    static func samples(_ url: URL) throws -> [Float] {
        try AudioDecoder.load16kMono(Data(contentsOf: url))
    }
}
