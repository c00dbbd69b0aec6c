// How long audio is cut before the model sees it (docs/MODEL.md §6, docs/VAD.md):
//   vad      at pauses found by Silero VAD, into segments of at most `maxSegment` seconds; a
//            stretch of speech with no pause is cut into overlapping windows whose tokens are
//            merged as `windows` merges them. Audio with no speech gives empty text.
//   windows  fixed overlapping windows (ChunkingPolicy), speech or not.
//   off      the whole audio in one pass, as the released wrapper does, up to what the
//            encoder's positional table allows.
// Every piece is computed (features, encoder, decoder) on its own, so memory is bounded by one
// piece, and pieces run in parallel when the recognizer has threads to spare.

import Backend
import Decoding
import Foundation
import TensorModule
import VoiceActivity

/// How long audio is cut into the pieces the model transcribes.
public enum Segmentation: String, Sendable, CaseIterable, Codable {
    /// At pauses (Silero VAD), segments of at most ~20 s; the default above 30 s.
    case vad
    /// Fixed 20 s windows overlapping by 4 s, regardless of speech.
    case windows
    /// The whole audio in one pass (refused beyond the positional table, about 400 s).
    case off
}

/// Why a segmentation could not be applied; each message ends with what to do.
public enum SegmentationError: Error, CustomStringConvertible, Sendable, Equatable {
    /// `off` on audio longer than the encoder can attend over in one pass.
    case tooLongForOnePass(seconds: Double, limit: Double)
    /// `vad` asked for but the voice-activity weights were not loaded (the reason).
    case voiceActivityUnavailable(String)
    /// A segmentation name that is not `vad`, `windows` or `off`.
    case unknown(String)

    /// The message, ending with what to do.
    public var description: String {
        switch self {
        case .tooLongForOnePass(let seconds, let limit):
            return String(format: "the audio is %.1f s long; with segmentation 'off' the model takes at most %.1f s in one pass: use segmentation 'vad' or 'windows'", seconds, limit)
        case .voiceActivityUnavailable(let why):
            return "segmentation 'vad' is not available (\(why)): use 'windows' or install Weights/silero_vad.safetensors"
        case .unknown(let name):
            let shown = name.count > 20 ? String(name.prefix(20)) + "…" : name
            let safe = String(String.UnicodeScalarView(shown.unicodeScalars.map {
                $0.properties.generalCategory == .control ? "?" : $0 }))
            return "unknown segmentation '\(safe)': use vad, windows or off"
        }
    }
}

/// Settings of segmentation by voice activity.
public struct SegmentationPolicy: Sendable, Equatable {
    /// Longest segment (seconds) cut at pauses.
    public var maxSegment: Double = 20
    /// Padded regions closer than this (seconds) are joined into one segment while it stays
    /// under `maxSegment`; a longer pause always ends a segment. 0 (the default): every pause
    /// the detector finds (≥ `detection.minSilence`) ends a segment; the long-form set measured
    /// joining as costing the demo model CER (Tools/training/RESULTS.md, "Long-form audio").
    public var joinGap: Double = 0
    /// How probabilities become speech regions.
    public var detection = SpeechDetection()
    /// Memberwise initialiser.
    public init() {}

    /// The pieces for speech `regions` (seconds) of audio of `count` samples at `rate`: one per
    /// group of regions, and overlapping windows over a region longer than `maxSegment`.
    func pieces(regions: [Range<Double>], count: Int, rate: Int) -> [Piece] {
        var pieces: [Piece] = []
        var group: Range<Double>?
        func sampleRange(_ span: Range<Double>) -> Range<Int> {
            max(0, Int(span.lowerBound * Double(rate)))..<min(count, Int((span.upperBound * Double(rate)).rounded(.up)))
        }
        func flush() {
            if let g = group { pieces.append(Piece(samples: sampleRange(g), keep: -Double.infinity..<Double.infinity)) }
            group = nil
        }
        for region in regions {
            if region.upperBound - region.lowerBound > maxSegment {
                // Nobody paused: a forced cut with overlap, tokens merged by their start time.
                flush()
                var chunking = ChunkingPolicy()
                chunking.maxWindow = maxSegment
                chunking.window = maxSegment
                let span = sampleRange(region)
                let windows = chunking.windows(count: span.count, rate: rate)
                for (i, window) in windows.enumerated() {
                    let offset = Double(span.lowerBound) / Double(rate)
                    let lower = i == 0 ? -Double.infinity : window.keep.lowerBound + offset
                    let upper = i == windows.count - 1 ? Double.infinity : window.keep.upperBound + offset
                    pieces.append(Piece(samples: (window.samples.lowerBound + span.lowerBound)..<(window.samples.upperBound + span.lowerBound),
                                        keep: lower..<upper))
                }
                continue
            }
            if let g = group, region.lowerBound - g.upperBound <= joinGap, region.upperBound - g.lowerBound <= maxSegment {
                group = g.lowerBound..<region.upperBound
            } else {
                flush()
                group = region
            }
        }
        flush()
        return pieces
    }
}

/// One piece of audio the model transcribes on its own: its samples, and the time span (seconds
/// on the whole file's axis) whose tokens it keeps.
struct Piece: Sendable, Equatable {
    var samples: Range<Int>
    var keep: Range<Double>
}

/// A finished segment, reported in order while a long file is transcribed.
public struct SegmentUpdate: Sendable {
    /// Index of the segment (0-based) and how many there are.
    public var index: Int, count: Int
    /// Seconds on the whole file's axis.
    public var start: Double, end: Double
    /// The segment's text.
    public var text: String
    /// Its tokens (times on the whole file's axis).
    public var tokens: [TokenTiming]

    /// Memberwise initialiser.
    public init(index: Int, count: Int, start: Double, end: Double, text: String, tokens: [TokenTiming]) {
        self.index = index; self.count = count; self.start = start; self.end = end; self.text = text; self.tokens = tokens
    }
}

extension Recognizer {
    /// The segmentation `name` names (`vad`, `windows`, `off`).
    /// - Throws: `.segmentation(.unknown)`.
    public func segmentation(_ name: String) throws(RecognizerError) -> Segmentation {
        guard let value = Segmentation(rawValue: name.lowercased()) else { throw .segmentation(.unknown(name)) }
        return value
    }

    /// Longest audio (seconds) the encoder takes in one pass: its positional table covers
    /// relative distances up to rows / 2 frames (∞ when the model computes its own table).
    public var onePassLimit: Double {
        let rows = config.encoder.posEmbRows
        guard rows > 0 else { return .infinity }
        return Double((rows + 1) / 2 - 1) * config.frameDuration
    }

    /// The pieces of `samples` under `segmentation` (nil: whole up to `chunking.maxWindow`
    /// seconds, then `vad` when the detector is loaded, else `windows`).
    func plan(_ samples: [Float], segmentation: Segmentation?) throws(RecognizerError) -> [Piece] {
        let rate = config.frontend.sampleRate
        let seconds = Double(samples.count) / Double(rate)
        let whole = [Piece(samples: 0..<samples.count, keep: -Double.infinity..<Double.infinity)]
        guard let chosen = segmentation ?? options.segmentation else {
            // The default: whole up to 30 s (exactly the released wrapper), else at pauses.
            if seconds <= options.chunking.maxWindow { return whole }
            return try plan(samples, segmentation: voiceActivity == nil ? .windows : .vad)
        }
        switch chosen {
        case .off:
            guard seconds <= onePassLimit else { throw .segmentation(.tooLongForOnePass(seconds: seconds, limit: onePassLimit)) }
            return whole
        case .windows:
            return options.chunking.windows(count: samples.count, rate: rate).map { Piece(samples: $0.samples, keep: $0.keep) }
        case .vad:
            guard let vad = voiceActivity else {
                throw .segmentation(.voiceActivityUnavailable(voiceActivityFailure ?? "no weights"))
            }
            guard rate == SileroVAD.sampleRate else {
                throw .segmentation(.voiceActivityUnavailable("the model's rate is \(rate) Hz, Silero VAD's 16000 Hz"))
            }
            let probabilities = vad.probabilities(samples)
            let regions = options.segmentationPolicy.detection.regions(probabilities, duration: seconds)
            return options.segmentationPolicy.pieces(regions: regions, count: samples.count, rate: rate)
        }
    }

    /// Transcribes validated samples piece by piece (features of one piece at a time → the
    /// backend → tokens kept by their piece, on the whole file's time axis) → text. Pieces run
    /// in parallel on single-threaded backends when the recognizer has more than one thread and
    /// the backend is the CPU; `onSegment` sees each finished piece in order.
    func transcribePieces(_ samples: [Float], pieces: [Piece], language: Language, decoder: Decoder,
                          warnings: [AudioWarning] = [],
                          onSegment: (@Sendable (SegmentUpdate) -> Void)? = nil,
                          isCancelled: (@Sendable () -> Bool)? = nil) -> Transcript {
        let rate = config.frontend.sampleRate
        let threads = options.threads > 0 ? options.threads : Parallel.threads
        let workers = backend.device == .cpu ? max(1, min(pieces.count, threads)) : 1
        let pieceBackend: any InferenceBackend = workers > 1 ? CPUBackend(model: model, threads: 1) : backend
        let run = PieceRun(count: pieces.count, isCancelled: isCancelled)
        let frameDuration = config.frameDuration
        let work = { @Sendable (index: Int) -> [TokenTiming] in
            let piece = pieces[index]
            let features = self.frontend.features(pieces.count == 1 && piece.samples == samples.indices
                                                  ? samples : Array(samples[piece.samples]))
            let decoded = pieceBackend.recognize([features], decoder: decoder)[0]
            let offset = Double(piece.samples.lowerBound) / Double(rate)
            var tokens: [TokenTiming] = []
            for i in decoded.ids.indices {
                let start = offset + Double(decoded.startFrames[i]) * frameDuration
                guard piece.keep.contains(start) else { continue }
                let end = offset + Double(decoded.endFrames[i] + 1) * frameDuration
                tokens.append(TokenTiming(text: language.vocabulary.text(of: decoded.ids[i]), id: decoded.ids[i],
                                          start: start, end: end, logProb: decoded.logProbs[i]))
            }
            return tokens
        }
        let report = { @Sendable (index: Int, tokens: [TokenTiming]) in
            guard let onSegment else { return }
            let piece = pieces[index]
            onSegment(SegmentUpdate(index: index, count: pieces.count,
                                    start: Double(piece.samples.lowerBound) / Double(rate),
                                    end: Double(piece.samples.upperBound) / Double(rate),
                                    text: language.vocabulary.detokenize(tokens.map(\.id)), tokens: tokens))
        }
        if workers == 1 {
            while let index = run.take() { run.finish(index, work(index), report: report) }
        } else {
            DispatchQueue.concurrentPerform(iterations: workers) { _ in
                Parallel.withThreads(1) {
                    while let index = run.take() { run.finish(index, work(index), report: report) }
                }
            }
        }
        let tokens = run.tokens
        let confidence = tokens.isEmpty ? 0 : tokens.reduce(0) { $0 + Double($1.logProb) } / Double(tokens.count)
        return Transcript(text: language.vocabulary.detokenize(tokens.map(\.id)), language: language.code,
                          decoder: decoder.kind, duration: Double(samples.count) / Double(rate),
                          confidence: confidence, tokens: tokens, warnings: warnings)
    }
}

/// The pieces of one transcription shared by its workers: the next piece to take, results by
/// index, and in-order reporting of finished pieces.
final class PieceRun: @unchecked Sendable {
    private let lock = NSLock()
    private var next = 0
    private var reported = 0
    private var results: [[TokenTiming]?]

    private let isCancelled: (@Sendable () -> Bool)?

    init(count: Int, isCancelled: (@Sendable () -> Bool)? = nil) {
        results = Array(repeating: nil, count: count)
        self.isCancelled = isCancelled
    }

    /// The next piece to transcribe; nil when all are taken or the caller cancelled.
    func take() -> Int? {
        if isCancelled?() == true { return nil }
        lock.lock(); defer { lock.unlock() }
        guard next < results.count else { return nil }
        next += 1
        return next - 1
    }

    /// Stores a result and reports every finished piece not yet reported, in order (under the
    /// lock, so reports never interleave).
    func finish(_ index: Int, _ tokens: [TokenTiming], report: (Int, [TokenTiming]) -> Void) {
        lock.lock(); defer { lock.unlock() }
        results[index] = tokens
        while reported < results.count, let done = results[reported] {
            report(reported, done)
            reported += 1
        }
    }

    var tokens: [TokenTiming] {
        lock.lock(); defer { lock.unlock() }
        return results.flatMap { $0 ?? [] }
    }
}
