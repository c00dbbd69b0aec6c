// Dynamic batching (issue 16): requests that arrive within `--batch-wait-ms` of each other and
// ask for the same model and answer settings run through one batched encoder pass, grouped by
// length bucket and bounded by `--max-batch-frames` encoder frames. Each item gets exactly the
// answer it gets alone (the CPU encoder's batch is bit-exact per utterance, each item decoded
// with its own decoder), so batching changes throughput and latency, never an answer.
//
// How it runs: the pool's worker threads (more of them than compute lanes when batching is on,
// so that requests can gather) decode each request's audio and submit its transcription here,
// then wait. A waiting thread becomes the leader of a group once the group's oldest item has
// waited the window, or the group holds `maxBatchFrames`, or every request the pool has admitted
// is already in here (nobody else to wait for), and a compute lane is free: it takes
// the group's items in arrival order up to `maxBatchFrames`, runs them at once, hands every
// item its own result and wakes the others. At most `lanes` (`--concurrency`) batches run at a
// time, each on `--threads` threads, so concurrency × threads ≤ cores still holds. Items whose
// request is already answered (deadline) or gone (cancelled) are dropped before a batch forms
// and never slow the others down; an error in one item is that item's alone.

import ASR
import Foundation

/// Gathers jobs into batches; generic so the policy is testable without a model.
final class BatchScheduler<Job: Sendable, Output: Sendable>: @unchecked Sendable {
    /// How batches form.
    struct Policy: Sendable, Equatable {
        /// Seconds a group's oldest item waits for company; 0: no batching (each job runs alone,
        /// on the submitting thread).
        var wait: Double
        /// Encoder frames of one batch at most (a larger single item runs alone).
        var maxBatchFrames: Int
        /// Batches running at once.
        var lanes: Int

        /// Whether jobs are batched at all.
        var isOn: Bool { wait > 0 }
    }

    /// One job with the key of the jobs it may run with and its size in encoder frames.
    struct Submission: Sendable {
        var job: Job
        var key: String
        var frames: Int
    }

    /// What a batch reports when it starts: its jobs, frames and each job's seconds in the queue.
    typealias Observer = @Sendable (_ items: Int, _ frames: Int, _ queueSeconds: [Double]) -> Void
    /// Runs a batch: one output per job, in order.
    typealias Runner = @Sendable ([Job]) -> [Output]

    let policy: Policy
    private let runner: Runner
    private let observer: Observer?
    private let condition = NSCondition()
    private var pending: [Entry] = []
    private var busyLanes = 0
    /// Requests inside `run` now (waiting, or in a running batch).
    private var inside = 0
    /// How many requests may still come (the pool's admitted requests, counting those inside);
    /// nil: unknown, always wait the window.
    private let admitted: (@Sendable () -> Int)?

    private final class Entry {
        let submission: Submission
        let group: String
        let arrived: ContinuousClock.Instant
        let isCancelled: @Sendable () -> Bool
        var taken = false
        var finished = false
        var output: Output?
        init(_ submission: Submission, group: String, isCancelled: @escaping @Sendable () -> Bool) {
            self.submission = submission
            self.group = group
            self.arrived = .now
            self.isCancelled = isCancelled
        }
    }

    /// - Parameter admitted: the requests that may still submit jobs, those inside included (the
    ///   pool's load): when every one of them is inside, nobody else is on the way and a group
    ///   starts without waiting out the window. nil: always wait the window.
    init(policy: Policy, admitted: (@Sendable () -> Int)? = nil, observer: Observer? = nil,
         runner: @escaping Runner) {
        self.admitted = admitted
        var policy = policy
        policy.wait = max(0, policy.wait)
        policy.maxBatchFrames = max(1, policy.maxBatchFrames)
        policy.lanes = max(1, policy.lanes)
        self.policy = policy
        self.runner = runner
        self.observer = observer
    }

    /// The length bucket of an item of `frames` encoder frames: half-octaves, so a batch's items
    /// differ by at most √2 in length.
    static func bucket(frames: Int) -> Int {
        Int((2 * log2(Double(max(1, frames)))).rounded(.down))
    }

    /// Runs `submissions` (in batches with others' jobs when the policy is on) and returns their
    /// outputs in order; nil for a job dropped because `isCancelled` said so before it ran.
    /// Blocks the calling thread (a worker's), which may run batches of other requests meanwhile.
    func run(_ submissions: [Submission], isCancelled: @escaping @Sendable () -> Bool = { false }) -> [Output?] {
        guard policy.isOn else {
            return submissions.map { submission in
                if isCancelled() { return nil }
                observer?(1, submission.frames, [0])
                return runner([submission.job])[0]
            }
        }
        let entries = submissions.map {
            Entry($0, group: "\(Self.bucket(frames: $0.frames))|\($0.key)", isCancelled: isCancelled)
        }
        condition.lock()
        pending.append(contentsOf: entries)
        inside += 1
        condition.broadcast()
        while !entries.allSatisfy(\.finished) {
            // A request that went away takes its jobs back unless they already run.
            if isCancelled(), !entries.contains(where: { $0.taken && !$0.finished }) {
                pending.removeAll { entry in entries.contains { $0 === entry } }
                for entry in entries where !entry.finished { entry.finished = true }
                break
            }
            let now = ContinuousClock.now
            if busyLanes < policy.lanes, let batch = takeReadyBatch(now: now) {
                busyLanes += 1
                condition.unlock()
                let queued = batch.map { (now - $0.arrived).seconds }
                observer?(batch.count, batch.reduce(0) { $0 + $1.submission.frames }, queued)
                let outputs = runner(batch.map(\.submission.job))
                precondition(outputs.count == batch.count, "a batch runner returned \(outputs.count) outputs for \(batch.count) jobs")
                condition.lock()
                for (entry, output) in zip(batch, outputs) {
                    entry.output = output
                    entry.finished = true
                }
                busyLanes -= 1
                condition.broadcast()
                continue
            }
            // Sleep until the earliest group is due (or a batch finishes, or an item arrives);
            // wake at least every 50 ms to see whether the request is still wanted. With every
            // lane busy only a finishing batch (its broadcast) can change anything.
            let due = busyLanes < policy.lanes
                ? pending.map { $0.arrived + .seconds(policy.wait) }.min() ?? now + .milliseconds(50)
                : now + .milliseconds(50)
            let sleep = max(0.0005, min(0.05, (due - now).seconds))
            _ = condition.wait(until: Date(timeIntervalSinceNow: sleep))
        }
        inside -= 1
        condition.unlock()
        return entries.map(\.output)
    }

    /// Runs `work` alone on a compute lane (long audio, a request's own segmentation, streamed
    /// answers, live transcription): it waits for a free lane as a batch does, so at most
    /// `lanes` forward passes run at once whatever their kind. nil when `isCancelled` says so
    /// before a lane is free. With the policy off it runs at once (the pool's own concurrency
    /// bounds it).
    func runAlone<T, E: Error>(isCancelled: @Sendable () -> Bool = { false },
                               _ work: () throws(E) -> T) throws(E) -> T? {
        guard policy.isOn else { return try work() }
        condition.lock()
        inside += 1          // not on its way to submit batch jobs: nobody to wait for
        condition.broadcast()
        while busyLanes >= policy.lanes {
            if isCancelled() {
                inside -= 1
                condition.unlock()
                return nil
            }
            _ = condition.wait(until: Date(timeIntervalSinceNow: 0.05))
        }
        busyLanes += 1
        condition.unlock()
        defer {
            condition.lock()
            busyLanes -= 1
            inside -= 1
            condition.broadcast()
            condition.unlock()
        }
        return try work()
    }

    /// The oldest due group's batch, taken out of `pending` (cancelled items dropped on the
    /// way); nil when no group is due. A group is due when its oldest item has waited the window
    /// or it holds `maxBatchFrames`. Caller holds the lock.
    private func takeReadyBatch(now: ContinuousClock.Instant) -> [Entry]? {
        pending.removeAll { entry in
            guard entry.isCancelled() else { return false }
            entry.finished = true
            return true
        }
        var frames: [String: Int] = [:]
        for entry in pending { frames[entry.group, default: 0] += entry.submission.frames }
        // pending is in arrival order: the first entry of a due group is its oldest.
        // Nobody else on the way (every admitted request is in here): no reason to wait.
        let allIn = admitted.map { $0() <= inside } ?? false
        guard let first = pending.first(where: {
            allIn || now - $0.arrived >= .seconds(policy.wait) || frames[$0.group, default: 0] >= policy.maxBatchFrames
        }) else { return nil }
        var batch: [Entry] = []
        var total = 0
        for entry in pending where entry.group == first.group {
            if !batch.isEmpty && total + entry.submission.frames > policy.maxBatchFrames { break }
            batch.append(entry)
            total += entry.submission.frames
        }
        for entry in batch { entry.taken = true }
        pending.removeAll { $0.taken }
        return batch
    }
}

// MARK: - The service's use of it

/// A transcription job of the service: the engine that runs it and what it transcribes.
struct TranscriptionJob: Sendable {
    var engine: any TranscriptionEngine
    var audio: PreparedAudio
    var language: Language
    var decoder: DecoderKind
}

/// An engine that transcribes several items at once (`Recognizer`: one batched encoder pass);
/// engines without it run a batch's items one after the other.
protocol BatchTranscriptionEngine: TranscriptionEngine {
    /// Encoder frames of `samples` samples (a job's size for `--max-batch-frames`).
    func encoderFrames(samples: Int) -> Int
    /// Each item's transcript, exactly as `transcribe(decoded:language:decoder:)` gives it.
    func transcribe(batch: [Recognizer.BatchItem]) -> [Result<Transcript, RecognizerError>]
}

extension Recognizer: BatchTranscriptionEngine {}

extension BatchScheduler where Job == TranscriptionJob, Output == Result<Transcript, RecognizerError> {
    /// The service's scheduler: `policy`, batch sizes and queue times to `metrics`.
    convenience init(policy: Policy, admitted: (@Sendable () -> Int)?, metrics: ServiceMetrics) {
        self.init(policy: policy, admitted: admitted, observer: { items, _, queued in
            metrics.batchFormed(items: items, queueSeconds: queued)
        }, runner: { jobs in
            guard let engine = jobs.first?.engine as? any BatchTranscriptionEngine, jobs.count > 1 else {
                return jobs.map { job in
                    Result { () throws(RecognizerError) in
                        try job.engine.transcribe(decoded: job.audio, language: job.language, decoder: job.decoder)
                    }
                }
            }
            return engine.transcribe(batch: jobs.map {
                Recognizer.BatchItem(audio: $0.audio, language: $0.language, decoder: $0.decoder)
            })
        })
    }
}

extension ASRService {
    /// Transcribes decoded items of one request through the batch scheduler (alone, in order,
    /// when batching is off): the engine's answers, or `.timeout` for items dropped because the
    /// request's deadline passed or it was cancelled.
    func scheduledTranscripts(_ jobs: [TranscriptionJob], model: LoadedModel,
                              scope: Scope) -> [Result<Transcript, RecognizerError>?] {
        let key = "\(model.identity) \(model.engine.answerSettings)"
        let submissions = jobs.map { job in
            let frames = (job.engine as? any BatchTranscriptionEngine)?.encoderFrames(samples: job.audio.samples.count)
                ?? max(1, job.audio.samples.count * 25 / max(1, 2 * job.engine.info.sampleRate))   // 12.5 per second
            return BatchScheduler<TranscriptionJob, Result<Transcript, RecognizerError>>.Submission(
                job: job, key: key, frames: frames)
        }
        let deadline = scope.deadline
        return batcher.run(submissions, isCancelled: { deadline?.isExpired ?? false })
    }
}

extension ASRService {
    /// A batch request's items (`/asr` `items`, `/invocations` rows) through the scheduler at
    /// once, so they share batches with each other and with other requests: each item's
    /// MLflow-shaped result as `result(_:model:scope:inBatch:)` gives it alone (the processing
    /// time is the batch's).
    func scheduledResults(_ items: [ParsedItem], model: LoadedModel, scope: Scope,
                          inBatch: Bool) -> [Result<(result: TranscriptionResult, cache: CacheStatus), APIError>] {
        let started = ContinuousClock.now
        // The client's error for an engine error, logged when it is the server's fault (as `transcribe`).
        func mapped(_ error: RecognizerError) -> APIError {
            if let client = APIError.from(error) { return client }
            scope.logger.error("transcription failed", metadata: ["error": "\(error)"])
            return .internalError(requestID: scope.requestID)
        }
        // 1. Each item decoded and looked up in the cache, its audio messages in this request's log.
        typealias Prepared = (item: TranscriptionRequest, language: Language, answer: PreparedAnswer)
        var prepared: [Result<Prepared, APIError>] = []
        for parsed in items {
            switch parsed {
            case .failure(let error):
                prepared.append(.failure(error))
            case .success(let item):
                prepared.append(AudioLog.$logger.withValue(scope.logger) { () -> Result<Prepared, APIError> in
                    do throws(RecognizerError) {
                        let language = try model.engine.language(item.language)
                        let answer = try prepareAnswer(item, language: language, model: model, scope: scope)
                        return .success((item, language, answer))
                    } catch { return .failure(mapped(error)) }
                })
            }
        }
        // 2. The misses, submitted together.
        var jobs: [TranscriptionJob] = []
        var jobOf: [Int: Int] = [:]
        for (index, entry) in prepared.enumerated() {
            guard case .success(let p) = entry, case .miss(let audio, _) = p.answer,
                  isBatchable(p.item, audio: audio, model: model) else { continue }
            jobOf[index] = jobs.count
            jobs.append(TranscriptionJob(engine: model.engine, audio: audio, language: p.language, decoder: p.item.decoder))
        }
        let outcomes = jobs.isEmpty ? [] : scheduledTranscripts(jobs, model: model, scope: scope)
        let seconds = (ContinuousClock.now - started).seconds
        // 3. Results in order; computed transcripts counted and cached.
        var results: [Result<(result: TranscriptionResult, cache: CacheStatus), APIError>] = []
        var soloSeconds: [Int: Double] = [:]
        for (index, entry) in prepared.enumerated() {
            let p: Prepared
            switch entry {
            case .failure(let error): results.append(.failure(error)); continue
            case .success(let value): p = value
            }
            let answered: Result<(transcript: Transcript, cache: CacheStatus), APIError>
            switch p.answer {
            case .hit(let transcript):
                answered = .success((transcript, .hit))
            case .miss(let audio, let key):
                guard let job = jobOf[index] else {
                    // Long audio or its own segmentation: alone on a lane, stopping between
                    // segments at the deadline, timed on its own.
                    let deadline = scope.deadline
                    let isCancelled: @Sendable () -> Bool = { deadline?.isExpired ?? false }
                    let soloStarted = ContinuousClock.now
                    let solo = Result { () throws(RecognizerError) -> Transcript? in
                        try batcher.runAlone(isCancelled: isCancelled) { () throws(RecognizerError) -> Transcript in
                            try model.engine.transcribe(decoded: audio, language: p.language, decoder: p.item.decoder,
                                                        segmentation: p.item.segmentation, onSegment: nil,
                                                        isCancelled: isCancelled)
                        }
                    }
                    switch solo {
                    case .success(let transcript?) where !isCancelled():
                        let took = (ContinuousClock.now - soloStarted).seconds
                        finishAnswer(transcript, key: key, model: model, seconds: took)
                        answered = .success((transcript, .miss))
                        soloSeconds[index] = took
                    case .success:
                        answered = .failure(.timeout(seconds: configuration.timeoutSeconds))
                    case .failure(let error):
                        answered = .failure(mapped(error))
                    }
                    break
                }
                switch outcomes[job] {
                case nil:
                    answered = .failure(.timeout(seconds: configuration.timeoutSeconds))
                case .success(let transcript)?:
                    finishAnswer(transcript, key: key, model: model, seconds: seconds)
                    answered = .success((transcript, .miss))
                case .failure(let error)?:
                    answered = .failure(mapped(error))
                }
            }
            results.append(answered.map { transcript, cache in
                var result = TranscriptionResult(transcript, processingMs: (soloSeconds[index] ?? seconds) * 1000,
                                                 timestamps: p.item.timestamps)
                if inBatch { result.cache = cache.rawValue }
                return (result, cache)
            })
        }
        return results
    }
}
