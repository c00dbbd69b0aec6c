// Identical requests answered from memory: the same decoded audio (a SHA-256 of the samples, so
// a WAV and its FLAC copy meet), the same weights, language, decoder and every setting that
// changes the answer, from the same API key. Least recently used entries go first once the
// transcripts exceed `--cache-mb`.

import ASR
import Crypto
import Foundation

/// Everything that decides a transcript. A setting that changes answers (precision,
/// segmentation) is one more field here, and nothing else changes.
struct CacheKey: Hashable, Sendable {
    /// The API key's name ("" without keys): answers are never shared across keys.
    var client: String
    /// The weights: the file's digest, else the host's name and load generation.
    var model: String
    /// The engine's settings beyond the weights (chunking, device; `answerSettings`).
    var settings: String
    /// The language code.
    var language: String
    /// CTC or RNN-T.
    var decoder: DecoderKind
    /// Room for the weights' precision once there is a choice (fp32 today).
    var precision = ""
    /// Room for a segmentation option once there is one (the engine's own windows today).
    var segmentation = ""
    /// SHA-256 of the decoded samples (mono, the model's rate, as `Float` bytes): 32 bytes.
    var audio: [UInt8]

    static func hash(samples: [Float]) -> [UInt8] {
        Array(samples.withUnsafeBytes { SHA256.hash(data: $0) })
    }
}

/// Whether an answer came from the cache, for `X-Cache` and batch items' `cache` field.
enum CacheStatus: String, Sendable {
    case hit = "HIT"
    case miss = "MISS"
}

/// A least-recently-used map from `CacheKey` to `Transcript`, bounded in bytes. Thread-safe.
final class ResponseCache: @unchecked Sendable {
    private struct Node {
        var key: CacheKey
        var value: Transcript
        var bytes: Int
        var newer: Int?
        var older: Int?
    }

    /// The most bytes of transcripts kept; 0 disables the cache.
    let capacityBytes: Int
    private let lock = NSLock()
    private var index: [CacheKey: Int] = [:]
    private var nodes: [Node] = []
    private var freeSlots: [Int] = []
    private var newest: Int?
    private var oldest: Int?
    private var usedBytes = 0

    init(capacityBytes: Int) { self.capacityBytes = max(0, capacityBytes) }

    var isEnabled: Bool { capacityBytes > 0 }

    /// Entries and bytes held now.
    var usage: (entries: Int, bytes: Int) {
        lock.lock(); defer { lock.unlock() }
        return (index.count, usedBytes)
    }

    /// The transcript stored under `key`, now the most recently used.
    func value(for key: CacheKey) -> Transcript? {
        lock.lock(); defer { lock.unlock() }
        guard let slot = index[key] else { return nil }
        unlink(slot)
        pushNewest(slot)
        return nodes[slot].value
    }

    /// Stores `value`, evicting the least recently used entries until it fits; a value larger
    /// than the whole cache is not stored.
    func insert(_ value: Transcript, for key: CacheKey) {
        let bytes = Self.size(of: value)
        guard bytes <= capacityBytes else { return }
        lock.lock(); defer { lock.unlock() }
        if let slot = index[key] {
            usedBytes += bytes - nodes[slot].bytes
            nodes[slot].value = value
            nodes[slot].bytes = bytes
            unlink(slot)
            pushNewest(slot)
        } else {
            let node = Node(key: key, value: value, bytes: bytes)
            let slot: Int
            if let free = freeSlots.popLast() { nodes[free] = node; slot = free } else { nodes.append(node); slot = nodes.count - 1 }
            index[key] = slot
            usedBytes += bytes
            pushNewest(slot)
        }
        while usedBytes > capacityBytes, let victim = oldest {
            unlink(victim)
            index[nodes[victim].key] = nil
            usedBytes -= nodes[victim].bytes
            // Drop the transcript now; the slot is reused by the next insert.
            nodes[victim].value = Transcript(text: "", language: "", decoder: .ctc, duration: 0, confidence: 0, tokens: [])
            freeSlots.append(victim)
        }
    }

    /// An estimate of the memory an entry holds: strings, tokens and the key.
    static func size(of transcript: Transcript) -> Int {
        let tokens = transcript.tokens.reduce(0) { $0 + $1.text.utf8.count + 64 }
        return 256 + transcript.text.utf8.count + transcript.language.utf8.count + tokens
    }

    // MARK: - The recency list (callers hold the lock)

    private func unlink(_ slot: Int) {
        let (newer, older) = (nodes[slot].newer, nodes[slot].older)
        if let newer { nodes[newer].older = older } else { newest = older }
        if let older { nodes[older].newer = newer } else { oldest = newer }
        nodes[slot].newer = nil
        nodes[slot].older = nil
    }

    private func pushNewest(_ slot: Int) {
        nodes[slot].older = newest
        nodes[slot].newer = nil
        if let newest { nodes[newest].newer = slot }
        newest = slot
        if oldest == nil { oldest = slot }
    }
}

extension ASRService {
    /// An item's audio on its way to an answer: from the cache, or to be computed.
    enum PreparedAnswer {
        /// The same samples were transcribed the same way for the same key.
        case hit(Transcript)
        /// To be computed; then stored under `key` (nil: the cache is off).
        case miss(PreparedAudio, key: CacheKey?)
    }

    /// One item's transcript: decode, charge the audio to the client's rate limit, then the
    /// cache or the engine (through the batch scheduler, BatchScheduler.swift) and the cache
    /// after it. Runs on a worker thread. nil when the request's deadline passed or it was
    /// cancelled before its batch ran (its client has its answer already).
    /// - Throws: the engine's `RecognizerError` (audio refused, decoder missing).
    func answer(_ item: TranscriptionRequest, language: Language, model: LoadedModel, scope: Scope,
                onSegment: (@Sendable (SegmentUpdate) -> Void)? = nil,
                isCancelled: (@Sendable () -> Bool)? = nil) throws(RecognizerError) -> (transcript: Transcript, cache: CacheStatus)? {
        switch try prepareAnswer(item, language: language, model: model, scope: scope) {
        case .hit(let transcript):
            // A streamed answer from the cache is one segment: the whole text.
            onSegment?(SegmentUpdate(index: 0, count: 1, start: 0, end: transcript.duration, text: transcript.text,
                                     tokens: transcript.tokens))
            return (transcript, .hit)
        case .miss(let audio, let key):
            let started = ContinuousClock.now
            let transcript: Transcript
            if onSegment == nil, isBatchable(item, audio: audio, model: model) {
                let job = TranscriptionJob(engine: model.engine, audio: audio, language: language, decoder: item.decoder)
                guard let outcome = scheduledTranscripts([job], model: model, scope: scope)[0] else { return nil }
                transcript = try outcome.get()
            } else {
                // Alone, on a compute lane like a batch (at most --concurrency passes at once).
                let solo = try batcher.runAlone(isCancelled: { isCancelled?() ?? false }) { () throws(RecognizerError) -> Transcript in
                    try model.engine.transcribe(decoded: audio, language: language, decoder: item.decoder,
                                                segmentation: item.segmentation, onSegment: onSegment,
                                                isCancelled: isCancelled)
                }
                guard let solo else { return nil }
                transcript = solo
            }
            // A cancelled run holds only the segments done before it stopped: never cached.
            finishAnswer(transcript, key: isCancelled?() == true ? nil : key, model: model,
                         seconds: (ContinuousClock.now - started).seconds)
            return (transcript, .miss)
        }
    }

    /// Whether an item goes through the batch scheduler: audio that runs whole (up to
    /// `ChunkingPolicy.maxWindow`, 30 s) with the default segmentation. Longer audio, or a
    /// segmentation of its own, runs alone (its segments in parallel, stopping between them
    /// when cancelled).
    func isBatchable(_ item: TranscriptionRequest, audio: PreparedAudio, model: LoadedModel) -> Bool {
        item.segmentation == nil
            && Double(audio.samples.count) <= ChunkingPolicy().maxWindow * Double(max(1, model.engine.info.sampleRate))
    }

    /// The first half of `answer`: decode, charge the rate limit, look in the cache.
    /// - Throws: `.audio` when the audio is refused.
    func prepareAnswer(_ item: TranscriptionRequest, language: Language, model: LoadedModel,
                       scope: Scope) throws(RecognizerError) -> PreparedAnswer {
        let audio = try model.engine.decodeAudio(item.audio)
        let samples = audio.samples
        let rate = Double(max(1, model.engine.info.sampleRate))
        rateLimiter.charge(audioSeconds: Double(samples.count) / rate, to: scope.client)
        let key = cache.isEnabled
            ? CacheKey(client: scope.apiKeyName ?? "", model: model.identity, settings: model.engine.answerSettings
                           + (item.segmentation.map { " request-segmentation=\($0.rawValue)" } ?? ""),
                       language: language.code, decoder: item.decoder, audio: CacheKey.hash(samples: samples))
            : nil
        if let key, let hit = cache.value(for: key) {
            metrics.cache(.hit)
            metrics.cachedAudio(model: model.name, audioSeconds: hit.duration)
            return .hit(hit)
        }
        return .miss(audio, key: key)
    }

    /// The second half of `answer` for a computed transcript: its metrics, and the cache.
    func finishAnswer(_ transcript: Transcript, key: CacheKey?, model: LoadedModel, seconds: Double) {
        metrics.inference(model: model.name, audioSeconds: transcript.duration, seconds: seconds)
        if let key {
            metrics.cache(.miss)
            cache.insert(transcript, for: key)
        }
    }
}
