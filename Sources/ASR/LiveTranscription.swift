// Live transcription of a stream of 16 kHz samples (docs/VAD.md): Silero VAD finds where each
// utterance starts and ends (server-side turn detection); while it grows, the utterance is
// re-decoded every `redecodeEvery` seconds and only text that two consecutive decodes agree on
// is released as a delta; when it ends, the offline transcription of exactly its samples is the
// completed transcript. The realtime WebSocket route and `vani stream` drive this type.

import Foundation
import VoiceActivity

/// What a `LiveTranscriber` reports as audio comes in.
public enum LiveEvent: Sendable, Equatable {
    /// Speech began at this many seconds into the stream (utterance `item`).
    case speechStarted(item: Int, at: Double)
    /// Speech ended at this many seconds into the stream.
    case speechStopped(item: Int, at: Double)
    /// New text judged stable (two consecutive decodes of the growing utterance agree on it).
    case delta(item: Int, text: String)
    /// The authoritative transcript of a finished utterance: the offline transcription of its
    /// samples. `contradicted` is true when it does not begin with the deltas already sent.
    case completed(item: Int, transcript: String, contradicted: Bool)
}

/// Turn-detection and partial-result settings of live transcription.
public struct LiveSettings: Sendable, Equatable {
    /// Speech probability that starts an utterance.
    public var threshold: Float = 0.5
    /// Seconds of silence (probability below `threshold − 0.15`) that end it.
    public var silenceDuration: Double = 0.5
    /// Seconds of audio before the detected start kept in the utterance.
    public var prefixPadding: Double = 0.3
    /// Seconds of new audio between re-decodes of the growing utterance, at least: a re-decode
    /// never starts sooner than twice the previous one took, so a slow model stays real time.
    public var redecodeEvery: Double = 0.2
    /// Seconds of silence kept after the last speech in a turn-detected utterance (at most
    /// `silenceDuration`). The utterance's final decode runs as soon as this much silence has
    /// passed, while the turn detector still waits for `silenceDuration`: the completed
    /// transcript is ready the moment the turn ends (and dropped if speech resumes).
    public var trailingSilence: Double = 0.25
    /// An utterance longer than this (seconds) is ended where it stands.
    public var maxUtterance: Double = 25
    /// Turn detection on; when off, utterances end only by `commit()`.
    public var turnDetection = true
    /// Memberwise initialiser.
    public init() {}
}

/// Live transcription of one stream. Not thread-safe: one owner feeds it in order (it may hand
/// it to another thread between calls, hence `@unchecked Sendable`); every call runs inference
/// on the caller's thread (never call it on an event loop).
public final class LiveTranscriber: @unchecked Sendable {
    /// The model that decodes each utterance.
    public let recognizer: Recognizer
    /// The language decoded.
    public let language: Language
    /// The decoder used.
    public let decoder: DecoderKind
    /// Turn detection and partial results.
    public var settings: LiveSettings
    let vad: SileroVAD

    private var vadState = VoiceActivityState()
    private var pending: [Float] = []          // samples not yet given to the VAD (< 512)
    private var history: [Float] = []          // the last `prefixPadding` seconds before speech
    private var utterance: [Float] = []        // the current utterance's samples
    private var inSpeech = false
    private var silentChunks = 0
    private var sinceDecode = 0
    private var decodeEvery = 0                // samples between re-decodes (adaptive)
    private var speechEnd = 0                  // utterance samples up to the last speech chunk
    private var speculative: (count: Int, text: String)?   // final decode made during the silence
    private var previousDecode: [String] = []  // words of the previous decode
    private var sentWords: [String] = []       // words released as deltas
    private var streamSamples = 0              // samples seen since the start
    private var item = 0
    /// The samples of the last completed utterance (what its transcript was computed from).
    public private(set) var lastUtterance: [Float] = []
    /// Completed utterances, and how many contradicted deltas already sent.
    public private(set) var completedCount = 0, contradictions = 0

    /// A transcriber over `recognizer` in `language` with `decoder`.
    /// - Throws: `.segmentation(.voiceActivityUnavailable)` when the VAD weights are not loaded,
    ///   `.decoderUnavailable`.
    public init(recognizer: Recognizer, language: Language, decoder: DecoderKind = .ctc,
                settings: LiveSettings = LiveSettings()) throws(RecognizerError) {
        guard let vad = recognizer.voiceActivity else {
            throw .segmentation(.voiceActivityUnavailable(recognizer.voiceActivityFailure ?? "no weights"))
        }
        _ = try recognizer.decoder(decoder, for: language)
        self.recognizer = recognizer; self.language = language; self.decoder = decoder
        self.settings = settings; self.vad = vad
    }

    static let rate = Double(SileroVAD.sampleRate)

    /// Feeds 16 kHz mono samples; returns what happened, in order.
    public func append(_ samples: [Float]) -> [LiveEvent] {
        var events: [LiveEvent] = []
        pending += samples
        let chunk = SileroVAD.chunkSamples
        var offset = 0
        while pending.count - offset >= chunk {
            let piece = Array(pending[offset..<offset + chunk])
            offset += chunk
            let p = piece.withUnsafeBufferPointer { vad.process($0.baseAddress!, chunks: 1, state: &vadState)[0] }
            streamSamples += chunk
            events += step(piece, probability: p)
        }
        pending.removeFirst(offset)
        return events
    }

    /// Seconds from a setting, made safe for sample arithmetic: not NaN, within 0...`limit`.
    static func seconds(_ value: Double, limit: Double) -> Double {
        value.isNaN ? 0 : min(max(value, 0), limit)
    }

    private func step(_ piece: [Float], probability p: Float) -> [LiveEvent] {
        var events: [LiveEvent] = []
        let silenceDuration = Self.seconds(settings.silenceDuration, limit: 60)
        let maxUtterance = Self.seconds(settings.maxUtterance, limit: 3600)
        if !inSpeech {
            history += piece
            let keep = Int(Self.seconds(settings.prefixPadding, limit: 10) * Self.rate) + piece.count
            if history.count > keep { history.removeFirst(history.count - keep) }
            guard settings.turnDetection ? p >= settings.threshold : true else { return events }
            inSpeech = true
            utterance = history
            history = []
            silentChunks = 0
            sinceDecode = 0
            decodeEvery = Int(max(Self.seconds(settings.redecodeEvery, limit: 60), 0.05) * Self.rate)
            speechEnd = utterance.count
            speculative = nil
            previousDecode = []
            sentWords = []
            events.append(.speechStarted(item: item, at: max(0, Double(streamSamples) / Self.rate - Double(utterance.count) / Self.rate)))
            return events
        }
        utterance += piece
        sinceDecode += piece.count
        if settings.turnDetection {
            silentChunks = p < settings.threshold - 0.15 ? silentChunks + 1 : 0
            if silentChunks == 0 { speechEnd = utterance.count; speculative = nil }
            let silence = Double(silentChunks * piece.count) / Self.rate
            let trailing = Int(min(Self.seconds(settings.trailingSilence, limit: 60), silenceDuration) * Self.rate)
            if silentChunks > 0, speculative == nil, utterance.count - speechEnd >= trailing {
                // The turn may be over: decode it now, while the detector waits for the rest.
                let count = speechEnd + trailing
                speculative = (count, decodeFinal(Array(utterance[..<count])))
            }
            if silence >= silenceDuration {
                events.append(.speechStopped(item: item, at: Double(streamSamples) / Self.rate))
                events += finishUtterance(decoded: speculative)
                return events
            }
        }
        // The cap holds with or without turn detection (without it, only `commit` ends an
        // utterance otherwise).
        if Double(utterance.count) / Self.rate >= maxUtterance {
            events.append(.speechStopped(item: item, at: Double(streamSamples) / Self.rate))
            events += finishUtterance()
            return events
        }
        if sinceDecode >= decodeEvery, silentChunks == 0 || speculative == nil {
            sinceDecode = 0
            let started = ContinuousClock.now
            events += redecode()
            let took = started.duration(to: .now)
            let seconds = Double(took.components.seconds) + Double(took.components.attoseconds) * 1e-18
            decodeEvery = Int(max(Self.seconds(settings.redecodeEvery, limit: 60), 0.05, 2 * seconds) * Self.rate)
        }
        return events
    }

    /// Re-decodes the growing utterance and releases the words two consecutive decodes agree on
    /// (all but the last word of their common prefix, which may still change).
    private func redecode() -> [LiveEvent] {
        guard let text = try? recognizer.transcribe(samples: utterance, language: language, decoder: decoder,
                                                    segmentation: .off).text else { return [] }
        let words = text.split(separator: " ").map(String.init)
        var common = 0
        while common < min(words.count, previousDecode.count), words[common] == previousDecode[common] { common += 1 }
        previousDecode = words
        let stable = min(common, words.count - 1)
        guard stable > sentWords.count, Array(words.prefix(sentWords.count)) == sentWords else { return [] }
        let new = Array(words[sentWords.count..<stable])
        sentWords += new
        let delta = (sentWords.count == new.count ? "" : " ") + new.joined(separator: " ")
        return [.delta(item: item, text: delta)]
    }

    /// The offline transcription of `samples` ("" below 25 ms).
    private func decodeFinal(_ samples: [Float]) -> String {
        let minimum = Int(0.025 * Self.rate)
        guard samples.count >= minimum else { return "" }
        return (try? recognizer.transcribe(samples: samples, language: language, decoder: decoder,
                                           segmentation: .off).text) ?? ""
    }

    /// Ends the current utterance (turn detection or `commit`): its offline transcription. With
    /// `decoded`, the utterance is its first `count` samples (speech and `trailingSilence`),
    /// already transcribed as `text`; without, all of it is transcribed now.
    private func finishUtterance(decoded: (count: Int, text: String)? = nil) -> [LiveEvent] {
        defer {
            inSpeech = false; utterance = []; history = []; item += 1; speculative = nil
        }
        let samples = decoded.map { Array(utterance[..<$0.count]) } ?? utterance
        lastUtterance = samples
        let text = decoded?.text ?? decodeFinal(samples)
        let sent = sentWords.joined(separator: " ")
        let contradicted = !sent.isEmpty && !(text == sent || text.hasPrefix(sent + " "))
        completedCount += 1
        if contradicted { contradictions += 1 }
        return [.completed(item: item, transcript: text, contradicted: contradicted)]
    }

    /// Ends the utterance in progress now (`input_audio_buffer.commit`), or makes one of the
    /// audio buffered since the last (without turn detection, everything since the last commit).
    public func commit() -> [LiveEvent] {
        if !inSpeech {
            guard !history.isEmpty || !pending.isEmpty else { return [] }
            utterance = history
            inSpeech = true
            sentWords = []
        }
        utterance += pending
        pending = []
        return finishUtterance()
    }

    /// Drops buffered audio (`input_audio_buffer.clear`) without transcribing it.
    public func clear() {
        pending = []; history = []; utterance = []; inSpeech = false; sentWords = []; previousDecode = []
        speculative = nil
    }

    /// True while an utterance is in progress.
    public var isInSpeech: Bool { inSpeech }
}
