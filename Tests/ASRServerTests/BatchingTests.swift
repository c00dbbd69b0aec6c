// Dynamic batching (issue 16): the scheduler's policy on fake jobs (what forms a batch, length
// buckets, --max-batch-frames, batching off at 0, a dropped or failing item leaves the others
// alone), and the service around the real Recognizer answering concurrent requests and batch
// items exactly as with batching off. No assertion depends on timing: the batches that must
// form are made due by their frames (a long window that a full group skips), and the ones that
// must not are told apart by key, bucket or size.

import ASR
@testable import ASRServer
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Hummingbird
import HummingbirdTesting
import Testing
import VaniTestSupport

/// The batches a runner was given, in the order they ran.
private final class BatchLog: @unchecked Sendable {
    private let lock = NSLock()
    private var batches: [[String]] = []
    func record(_ jobs: [String]) { lock.lock(); batches.append(jobs); lock.unlock() }
    var all: [[String]] { lock.lock(); defer { lock.unlock() }; return batches }
}

private typealias Scheduler = BatchScheduler<String, Result<String, RecognizerError>>

/// A scheduler whose runner logs each batch and answers "<job>!" (jobs named "bad…" fail alone).
private func scheduler(wait: Double, maxFrames: Int, lanes: Int = 1, log: BatchLog) -> Scheduler {
    Scheduler(policy: .init(wait: wait, maxBatchFrames: maxFrames, lanes: lanes)) { jobs in
        log.record(jobs)
        return jobs.map { $0.hasPrefix("bad") ? .failure(.decoderUnavailable(.rnnt)) : .success($0 + "!") }
    }
}

private func submission(_ job: String, frames: Int, key: String = "m") -> Scheduler.Submission {
    .init(job: job, key: key, frames: frames)
}

/// Runs `body` on `count` threads at once and returns their results in order.
private func onThreads<T: Sendable>(_ count: Int, _ body: @escaping @Sendable (Int) -> T) -> [T] {
    let results = NSLock()
    nonisolated(unsafe) var out = [T?](repeating: nil, count: count)
    let group = DispatchGroup()
    for i in 0..<count {
        group.enter()
        Thread {
            let value = body(i)
            results.lock(); out[i] = value; results.unlock()
            group.leave()
        }.start()
    }
    group.wait()
    return out.map { $0! }
}

@Suite("Batch scheduler policy") struct BatchSchedulerTests {
    @Test("requests of one key gather into one batch, each gets its own output")
    func gathersConcurrentRequests() throws {
        let log = BatchLog()
        // A window far longer than the test: the group is due only when its frames fill the batch.
        let s = scheduler(wait: 60, maxFrames: 8 * 10, log: log)
        let outputs = onThreads(8) { i in s.run([submission("job\(i)", frames: 10)]) }
        for (i, output) in outputs.enumerated() { #expect(try output[0]?.get() == "job\(i)!") }
        #expect(log.all.count == 1)
        #expect(Set(log.all.first ?? []) == Set((0..<8).map { "job\($0)" }))
    }

    @Test("length buckets and keys separate batches; max-batch-frames bounds each")
    func bucketsAndFrameBound() {
        let log = BatchLog()
        let s = scheduler(wait: 0.01, maxFrames: 40, log: log)
        // One request's items arrive together: two short, two long, one short of another model.
        let outputs = s.run([submission("s1", frames: 10), submission("l1", frames: 30), submission("s2", frames: 10),
                             submission("l2", frames: 30), submission("o1", frames: 10, key: "other"),
                             submission("huge", frames: 500)])
        #expect(outputs.map { try? $0?.get() } == ["s1!", "l1!", "s2!", "l2!", "o1!", "huge!"])
        let batches = Set(log.all.map { $0.sorted() })
        // 10 + 10 fit; 30 + 30 exceed 40 so run apart; another key never joins; a job over the
        // bound runs alone.
        #expect(batches == [["s1", "s2"], ["l1"], ["l2"], ["o1"], ["huge"]])
        #expect(Scheduler.bucket(frames: 10) != Scheduler.bucket(frames: 30))
        #expect(Scheduler.bucket(frames: 64) == Scheduler.bucket(frames: 80))
    }

    @Test("work run alone takes a compute lane: with one lane, solo work and batches never overlap")
    func soloWorkHoldsALane() {
        let log = BatchLog()
        let s = scheduler(wait: 0.001, maxFrames: 1000, lanes: 1, log: log)
        final class Overlap: @unchecked Sendable {
            private let lock = NSLock()
            private var inside = 0
            private(set) var most = 0
            func enter() { lock.lock(); inside += 1; most = max(most, inside); lock.unlock() }
            func leave() { lock.lock(); inside -= 1; lock.unlock() }
        }
        let overlap = Overlap()
        // Eight threads: even ones run solo work, odd ones submit a batch job whose runner is
        // watched through the same counter.
        let watched = Scheduler(policy: .init(wait: 0.001, maxBatchFrames: 1000, lanes: 1)) { jobs in
            overlap.enter(); defer { overlap.leave() }
            Thread.sleep(forTimeInterval: 0.02)
            return jobs.map { .success($0 + "!") }
        }
        let outputs = onThreads(8) { i -> String? in
            if i % 2 == 0 {
                return watched.runAlone { () -> String in
                    overlap.enter(); defer { overlap.leave() }
                    Thread.sleep(forTimeInterval: 0.02)
                    return "solo\(i)"
                }
            }
            return try? watched.run([submission("job\(i)", frames: 10)])[0]?.get()
        }
        #expect(outputs == (0..<8).map { $0 % 2 == 0 ? "solo\($0)" : "job\($0)!" })
        #expect(overlap.most == 1, "at most one lane's work at once, saw \(overlap.most)")
        // Cancelled while waiting for the lane: nil, and the work never runs.
        let held = NSCondition()
        nonisolated(unsafe) var holding = false
        nonisolated(unsafe) var release = false
        let holder = Thread {
            _ = s.runAlone { () -> Int in
                held.lock(); holding = true; held.broadcast()
                while !release { held.wait() }
                held.unlock()
                return 0
            }
        }
        holder.start()
        held.lock(); while !holding { held.wait() }; held.unlock()
        nonisolated(unsafe) var ran = false
        let refused: Int? = s.runAlone(isCancelled: { true }) { () -> Int in ran = true; return 1 }
        #expect(refused == nil && !ran)
        held.lock(); release = true; held.broadcast(); held.unlock()
        // Off at 0: runs at once.
        let off = scheduler(wait: 0, maxFrames: 10, log: log)
        let seven: Int? = off.runAlone { () -> Int in 7 }
        #expect(seven == 7)
    }

    @Test("batching off at 0: every job runs alone on its own thread")
    func offAtZero() {
        let log = BatchLog()
        let s = scheduler(wait: 0, maxFrames: 1000, log: log)
        #expect(!s.policy.isOn)
        let outputs = onThreads(6) { i in s.run([submission("job\(i)", frames: 10), submission("more\(i)", frames: 10)]) }
        #expect(outputs.flatMap { $0.map { try? $0?.get() } } == (0..<6).flatMap { ["job\($0)!", "more\($0)!"] })
        #expect(log.all.count == 12)
        #expect(log.all.allSatisfy { $0.count == 1 })
    }

    @Test("a request whose deadline passed is dropped; the others are answered; an error stays with its item")
    func droppedAndFailingItems() throws {
        let log = BatchLog()
        let s = scheduler(wait: 60, maxFrames: 30, log: log)
        let outputs = onThreads(4) { i -> [Result<String, RecognizerError>?] in
            switch i {
            case 0: return s.run([submission("late", frames: 10)], isCancelled: { true })   // already answered
            case 1: return s.run([submission("bad", frames: 10)])
            default: return s.run([submission("ok\(i)", frames: 10)])
            }
        }
        #expect(outputs[0].count == 1 && outputs[0][0] == nil, "the expired request gets nothing computed")
        #expect(throws: RecognizerError.decoderUnavailable(.rnnt)) { try outputs[1][0]?.get() }
        #expect(try outputs[2][0]?.get() == "ok2!")
        #expect(try outputs[3][0]?.get() == "ok3!")
        #expect(!log.all.joined().contains("late"), "the dropped job never ran")
        #expect(Set(log.all.joined()) == ["bad", "ok2", "ok3"])
        #expect(log.all.count == 1, "bad, ok2 and ok3 filled one batch of 30 frames")
    }

    @Test("the service's options: defaults, pool threads, and off at 0")
    func configuration() {
        var configuration = ServerConfiguration(concurrency: 1, threads: 2, cores: 2)
        #expect(configuration.batchWaitMs == ServerConfiguration.defaultBatchWaitMs)
        #expect(configuration.batchWaitMs > 0)
        #expect(configuration.poolThreads == ServerConfiguration.batchGatherers)
        configuration.batchWaitMs = 0
        #expect(configuration.poolThreads == 1)
    }
}

/// The real Recognizer behind the service, with batching on and off.
@Suite(.serialized) struct BatchingServiceTests {
    static let modelURL = ProcessInfo.processInfo.environment["VANI_MODEL"].map { URL(fileURLWithPath: $0) }
        ?? Fixtures.root.appendingPathComponent("Weights/default.safetensors")

    static let recognizer: Result<Recognizer, RecognizerError> = {
        do throws(RecognizerError) {
            return .success(try Recognizer(modelURL: modelURL, options: RecognizerOptions(threads: 1)))
        } catch { return .failure(error) }
    }()

    /// Eight different 5 s stretches of speech (one length bucket, the target), as WAV
    /// files: from `hi_22s`, every 2 s.
    static let slices: [Data] = {
        guard let recognizer = try? recognizer.get(),
              let data = try? Data(contentsOf: Fixtures.url("clips/hi_22s.wav")),
              let audio = try? recognizer.decodeAudio(data) else { return [] }
        let rate = audio.sampleRate
        return (0..<8).map { i in wav(Array(audio.samples[(2 * i * rate)..<((2 * i + 5) * rate)]), rate: rate) }
    }()

    /// 16-bit mono PCM WAV of `samples`.
    static func wav(_ samples: [Float], rate: Int) -> Data {
        var data = Data()
        func u32(_ v: Int) { withUnsafeBytes(of: UInt32(v).littleEndian) { data.append(contentsOf: $0) } }
        func u16(_ v: Int) { withUnsafeBytes(of: UInt16(v).littleEndian) { data.append(contentsOf: $0) } }
        data.append(contentsOf: Array("RIFF".utf8)); u32(36 + 2 * samples.count)
        data.append(contentsOf: Array("WAVEfmt ".utf8)); u32(16); u16(1); u16(1); u32(rate); u32(2 * rate); u16(2); u16(16)
        data.append(contentsOf: Array("data".utf8)); u32(2 * samples.count)
        for x in samples { u16(Int(UInt16(bitPattern: Int16(max(-32767, min(32767, (x * 32767).rounded())))))) }
        return data
    }

    func service(wait: Double, maxFrames: Int, startWhenAllIn: Bool = false) -> ASRService {
        let host = ModelHost(name: "default", logger: testLogger) { () throws(RecognizerError) -> any TranscriptionEngine in
            try Self.recognizer.get()
        }
        return makeService(host: host) {
            $0.concurrency = 1; $0.threads = 1; $0.queueCapacity = 16
            $0.batchWaitMs = wait; $0.maxBatchFrames = maxFrames; $0.cacheBytes = 0
            $0.batchWaitsForAdmittedOnly = startWhenAllIn
        }
    }

    /// The texts of the clips sent as 8 concurrent requests, and the /metrics page after them.
    func concurrentTexts(_ service: ASRService, language: String,
                         decoders: [DecoderKind]) async throws -> (texts: [String], metrics: String) {
        let audio = Self.slices.map { $0.base64EncodedString() }
        return try await service.application().test(.live) { client in
            // One connection per request (URLSession): the test client's one connection would
            // send them one after the other.
            let base = "http://127.0.0.1:\(try #require(client.port))"
            let configuration = URLSessionConfiguration.ephemeral
            configuration.httpMaximumConnectionsPerHost = 16
            let session = URLSession(configuration: configuration)
            let texts = try await withThrowingTaskGroup(of: (Int, String).self) { group in
                for (i, clip) in audio.enumerated() {
                    group.addTask {
                        var request = URLRequest(url: URL(string: base + "/asr")!)
                        request.httpMethod = "POST"
                        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
                        request.httpBody = try JSONSerialization.data(withJSONObject: [
                            "audio": clip, "language": language, "decoding": decoders[i % decoders.count].rawValue])
                        request.timeoutInterval = 120
                        let (data, response) = try await session.data(for: request)
                        #expect((response as? HTTPURLResponse)?.statusCode == 200, "\(String(decoding: data, as: UTF8.self))")
                        let json = try JSONSerialization.jsonObject(with: data) as? [String: Any]
                        return (i, json?["text"] as? String ?? "<none>")
                    }
                }
                var texts = [String](repeating: "", count: audio.count)
                for try await (i, text) in group { texts[i] = text }
                return texts
            }
            // A fresh connection: the test client's own may have idled past the header timeout.
            let (page, _) = try await session.data(from: URL(string: base + "/metrics")!)
            return (texts, String(decoding: page, as: UTF8.self))
        }
    }

    @Test("8 concurrent requests: the same answers with batching on (one batch of 8) and off, as the Recognizer's")
    func concurrentRequestsIdentical() async throws {
        let recognizer = try #require(try? Self.recognizer.get(), "the model at \(Self.modelURL.path) did not load")
        let language = recognizer.info.languages.contains("hi") ? "hi" : recognizer.info.languages[0]
        let decoders = recognizer.info.decoders
        #expect(Self.slices.count == 8)
        let direct = try Self.slices.enumerated().map { i, slice in
            try recognizer.transcribe(audio: slice, language: language, decoder: decoders[i % decoders.count]).text
        }
        let frames = try Self.slices.map { recognizer.encoderFrames(samples: try recognizer.decodeAudio($0).samples.count) }
        // A long window: the batch forms when all 8 requests' frames are in, not on a timer.
        let on = try await concurrentTexts(service(wait: 60_000, maxFrames: frames.reduce(0, +)), language: language,
                                           decoders: decoders)
        let off = try await concurrentTexts(service(wait: 0, maxFrames: 1), language: language, decoders: decoders)
        #expect(on.texts == direct)
        #expect(off.texts == direct)
        #expect(on.metrics.contains("vani_batch_size_count 1\n"), "one batch of all 8:\n\(on.metrics)")
        #expect(on.metrics.contains("vani_batch_size_sum 8"), "\(on.metrics)")
        #expect(on.metrics.contains("vani_batch_queue_seconds_count 8"), "\(on.metrics)")
        #expect(off.metrics.contains("vani_batch_size_count 8\n"), "eight batches of one:\n\(off.metrics)")
        // The service's default policy (a batch also starts once every admitted request is in
        // the scheduler): batches of any size, the same answers.
        let adaptive = try await concurrentTexts(service(wait: 60_000, maxFrames: 1024, startWhenAllIn: true),
                                                 language: language, decoders: decoders)
        #expect(adaptive.texts == direct)
        #expect(adaptive.metrics.contains("vani_batch_size_sum 8"), "\(adaptive.metrics)")
    }

    @Test("a batch request's items run as one batch and answer as they do alone; a bad item fails alone")
    func batchItemsIdentical() async throws {
        let recognizer = try #require(try? Self.recognizer.get(), "the model at \(Self.modelURL.path) did not load")
        let language = recognizer.info.languages.contains("hi") ? "hi" : recognizer.info.languages[0]
        let data = Array(Self.slices.prefix(3))
        #expect(data.count == 3)
        let direct = try data.map { try recognizer.transcribe(audio: $0, language: language).text }
        let frames = try data.map { recognizer.encoderFrames(samples: try recognizer.decodeAudio($0).samples.count) }
        var items: [Any] = data.map { ["audio": $0.base64EncodedString()] }
        items.insert(["audio": makeWAV(seconds: 0.001).base64EncodedString()], at: 1)    // too short: refused alone
        let body = jsonBody(["language": language, "items": items])
        for wait in [60_000.0, 0] {
            try await service(wait: wait, maxFrames: frames.reduce(0, +)).application().test(.router) { client in
                let response = try await client.execute(uri: "/asr", method: .post, headers: .json,
                                                        body: body)
                #expect(response.status == .ok, "\(response.text)")
                let results = try #require(response.json["results"] as? [[String: Any]])
                #expect(results.count == 4)
                #expect([results[0], results[2], results[3]].map { $0["text"] as? String } == direct, "wait \(wait)")
                #expect(results[1]["error_code"] as? String != nil, "the short item is refused: \(results[1])")
                let metrics = try await client.execute(uri: "/metrics", method: .get).text
                #expect(metrics.contains("vani_batch_size_count \(wait > 0 ? 1 : 3)\n"), "\(metrics)")
            }
        }
    }
}
