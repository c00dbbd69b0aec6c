// Several requests' audio through one batched encoder pass (issue 16): the service's batch
// scheduler gathers requests that arrive together and hands them here. Each item gets exactly
// the transcript it gets alone (`transcribe(decoded:language:decoder:)`): the CPU backend's
// batched encoder is bit-exact per utterance, and each item is decoded with its own language's
// decoder.

import Audio
import Decoding
import Foundation

extension Recognizer {
    /// One item of a batch: validated audio (from `decodeAudio`), its language and decoder.
    public struct BatchItem: Sendable {
        /// Audio from `decodeAudio(_:)`.
        public var audio: PreparedAudio
        /// The resolved language.
        public var language: Language
        /// The decoder to use.
        public var decoder: DecoderKind

        /// Memberwise initialiser.
        public init(audio: PreparedAudio, language: Language, decoder: DecoderKind) {
            self.audio = audio; self.language = language; self.decoder = decoder
        }
    }

    /// Encoder frames for `samples` samples at the model's rate (a batch's size in work).
    public func encoderFrames(samples: Int) -> Int {
        model.encoder.outputLength(samples / max(1, config.frontend.hopLength) + 1)
    }

    /// Transcribes several items at once: every item whose audio runs whole (not cut into
    /// windows) goes through one batched encoder pass; longer ones run alone. An item whose
    /// decoder the model lacks fails alone.
    public func transcribe(batch items: [BatchItem]) -> [Result<Transcript, RecognizerError>] {
        var results = [Result<Transcript, RecognizerError>?](repeating: nil, count: items.count)
        var whole: [(index: Int, decoder: Decoder)] = []
        for (index, item) in items.enumerated() {
            let decoder: Decoder
            do { decoder = try self.decoder(item.decoder, for: item.language) } catch {
                results[index] = .failure(error)
                continue
            }
            // One piece covering the whole audio (the default up to 30 s): batched. Anything
            // cut into segments runs alone, as `transcribe(decoded:…)` runs it.
            let samples = item.audio.samples
            do {
                let pieces = try plan(samples, segmentation: nil)
                if pieces.count == 1, pieces[0].samples == samples.indices {
                    whole.append((index, decoder))
                } else {
                    results[index] = .success(transcribePieces(samples, pieces: pieces, language: item.language,
                                                               decoder: decoder, warnings: item.audio.warnings))
                }
            } catch {
                results[index] = .failure(error)
            }
        }
        if !whole.isEmpty {
            let encoded = backend.encode(whole.map { frontend.features(items[$0.index].audio.samples) })
            for ((index, decoder), encoded) in zip(whole, encoded) {
                let item = items[index]
                let tokens = decoder.decode(encoded.pointer, frames: encoded.shape[0])
                let count = item.audio.samples.count
                results[index] = .success(transcript(count, windows: [(0..<count, 0..<Double.infinity)],
                                                     decoded: [tokens], language: item.language, decoder: decoder,
                                                     warnings: item.audio.warnings))
            }
        }
        return results.map { $0! }
    }
}
