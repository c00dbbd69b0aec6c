// Issue 18, operations: /metrics, the response cache, several models with reload, several API
// keys with rate limits, CORS, --default-language and --max-seconds.

import ASR
@testable import ASRServer
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

// MARK: - Helpers

private func asr(_ client: some TestClientProtocol, seconds: Double = 1, language: String? = "hi",
                 extra: [String: Any] = [:], headers: HTTPFields = .json) async throws -> TestResponse {
    var body: [String: Any] = ["audio": base64WAV(seconds)]
    if let language { body["language"] = language }
    body.merge(extra) { _, new in new }
    return try await client.execute(uri: "/asr", method: .post, headers: headers, body: jsonBody(body))
}

private func bearer(_ key: String) -> HTTPFields { [.contentType: "application/json", .authorization: "Bearer \(key)"] }

private func openAIForm(model: String?, language: String? = "hi") -> MultipartBody {
    var form = MultipartBody()
    form.file("file", filename: "clip.wav", makeWAV(seconds: 1))
    if let model { form.field("model", model) }
    if let language { form.field("language", language) }
    return form
}

/// A weights "file" with the given contents, for hosts that hash their file.
private func temporaryFile(_ contents: String) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("vani-test-\(UUID().uuidString).safetensors")
    try Data(contents.utf8).write(to: url)
    return url
}

/// Engines handed out one per load, in order (the last one repeats); a nil entry fails that load.
private final class EngineSequence: Sendable {
    let engines: [FakeEngine?]
    let loads = Counter()
    init(_ engines: [FakeEngine?]) { self.engines = engines }
    func host(name: String, file: URL? = nil) -> ModelHost {
        ModelHost(name: name, file: file, logger: testLogger) { () throws(RecognizerError) -> any TranscriptionEngine in
            let index = self.loads.load()
            self.loads.add(1)
            guard let engine = self.engines[min(index, self.engines.count - 1)] else {
                throw .invalidModel("broken on purpose")
            }
            return engine
        }
    }
}

private func service(models hosts: [ModelHost], defaultName: String? = nil,
                     _ configure: (inout ServerConfiguration) -> Void = { _ in }) -> ASRService {
    var configuration = ServerConfiguration(host: "127.0.0.1", port: 0, concurrency: 2, threads: 1,
                                            queueCapacity: 2, timeoutSeconds: 20, cores: 2)
    configure(&configuration)
    return ASRService(configuration: configuration, models: ModelRegistry(hosts: hosts, defaultName: defaultName),
                      logger: testLogger)
}

/// Families of a Prometheus text page: name → the label-name sets its samples use.
private func labelSets(_ page: String) -> [String: Set<[String]>] {
    var families: [String: Set<[String]>] = [:]
    for line in page.split(separator: "\n") where !line.hasPrefix("#") {
        let head = line.split(separator: " ", maxSplits: 1).first.map(String.init) ?? ""
        var name = head
        var labels: [String] = []
        if let brace = head.firstIndex(of: "{") {
            name = String(head[..<brace])
            labels = head[head.index(after: brace)...].dropLast().split(separator: ",")
                .compactMap { $0.split(separator: "=").first.map(String.init) }.filter { $0 != "le" }.sorted()
        }
        for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) { name = String(name.dropLast(suffix.count)) }
        families[name, default: []].insert(labels)
    }
    return families
}

@Suite struct MetricsTests {
    @Test func metricsNamesAfterRequestsBehindTheKey() async throws {
        let service = makeService { $0.apiKey = "k" }
        try await service.application().test(.router) { client in
            #expect(try await asr(client, headers: bearer("k")).status == .ok)
            #expect(try await asr(client, headers: bearer("k")).status == .ok)   // a cache hit
            expectError(try await asr(client, language: "fr", headers: bearer("k")), .badRequest, "INVALID_PARAMETER_VALUE")
            _ = try await client.execute(uri: "/nowhere/\(UUID())", method: .get, headers: bearer("k"))
            // Prometheus scrapes with the key as a bearer token.
            expectError(try await client.execute(uri: "/metrics", method: .get), .unauthorized, "UNAUTHENTICATED")
            let response = try await client.execute(uri: "/metrics", method: .get, headers: bearer("k"))
            #expect(response.status == .ok)
            #expect(response.headers[.contentType]?.hasPrefix("text/plain; version=0.0.4") == true)
            let page = response.text
            for name in ["vani_requests_total{endpoint=\"/asr\",code=\"200\"} 2", "vani_requests_total{endpoint=\"/asr\",code=\"400\"} 1",
                         "vani_requests_total{endpoint=\"other\",code=\"404\"} 1",
                         "vani_request_duration_seconds_bucket{endpoint=\"/asr\",le=\"600.0\"} 3",
                         "vani_queue_wait_seconds_count 3", "vani_inflight_requests 0", "vani_queued_requests 0",
                         "vani_audio_seconds_total{model=\"fake-indicconformer\"} 2.0",
                         "vani_inference_seconds_count{model=\"fake-indicconformer\"} 1",
                         "vani_real_time_factor_ratio_count{model=\"fake-indicconformer\"} 1",
                         "vani_cache_hits_total 1", "vani_cache_misses_total 1", "vani_cache_entries 1", "vani_cache_bytes "] {
                #expect(page.contains(name), "missing \(name) in:\n\(page)")
            }
            // Every family keeps one label-name set (swift-prometheus would refuse a mix).
            for (family, sets) in labelSets(page) { #expect(sets.count == 1, "\(family): \(sets)") }
            #expect(labelSets(page).keys.allSatisfy { $0.hasPrefix("vani_") })
        }
    }

    @Test func metricsPublicAndRejections() async throws {
        let service = makeService(engine: FakeEngine(delay: 3)) {
            $0.apiKey = "k"; $0.metricsPublic = true; $0.concurrency = 1; $0.queueCapacity = 0
        }
        try await service.application().test(.router) { client in
            async let slow = asr(client, headers: bearer("k"))
            _ = try await waitForHealth(client) { ($0["queue"] as? [String: Any])?["in_flight"] as? Int == 1 }
            let during = try await client.execute(uri: "/metrics", method: .get).text
            let refused = try await asr(client, seconds: 0.5, headers: bearer("k"))
            expectError(refused, .serviceUnavailable, "RESOURCE_EXHAUSTED")
            #expect(try await slow.status == .ok)
            let page = try await client.execute(uri: "/metrics", method: .get)
            #expect(page.status == .ok)
            // In flight: one request, uploading or running.
            #expect(during.contains("vani_inflight_requests 1") || during.contains("vani_queued_requests 1"), "\(during)")
            #expect(page.text.contains("vani_rejected_requests_total{code=\"503\",reason=\"queue_full\"} 1"), "\(page.text)")
            #expect(page.text.contains("vani_requests_total{endpoint=\"/asr\",code=\"503\"} 1"))
        }
    }

    @Test func freshRegistryPerService() async throws {
        let first = makeService()
        try await first.application().test(.router) { client in _ = try await asr(client) }
        let second = makeService()
        try await second.application().test(.router) { client in
            let page = try await client.execute(uri: "/metrics", method: .get).text
            #expect(!page.contains("vani_requests_total{endpoint=\"/asr\""))
        }
    }
}

@Suite struct CacheTests {
    @Test func secondIdenticalRequestIsAHit() async throws {
        let engine = FakeEngine()
        let service = makeService(engine: engine)
        try await service.application().test(.router) { client in
            let first = try await asr(client)
            #expect(first.headers[header("X-Cache")] == "MISS")
            let second = try await asr(client, extra: ["timestamps": true])   // presentation only: same answer
            #expect(second.headers[header("X-Cache")] == "HIT")
            #expect(second.json["text"] as? String == FakeEngine.text)
            #expect(second.json["words"] != nil)
            #expect(engine.calls.load() == 1)
            // Anything that changes the answer misses: the language, the decoder, the audio.
            #expect(try await asr(client, language: "ta").headers[header("X-Cache")] == "MISS")
            #expect(try await asr(client, extra: ["decoding": "rnnt"]).headers[header("X-Cache")] == "MISS")
            #expect(try await asr(client, seconds: 1.5).headers[header("X-Cache")] == "MISS")
            #expect(engine.calls.load() == 4)
            // Batches say it per item, in the body.
            let batch = try await client.execute(uri: "/asr", method: .post, headers: .json, body: jsonBody([
                "language": "hi", "items": [["audio": base64WAV()], ["audio": base64WAV(0.75)]]]))
            let results = try #require(batch.json["results"] as? [[String: Any]])
            #expect(results.map { $0["cache"] as? String } == ["HIT", "MISS"])
            #expect(batch.headers[header("X-Cache")] == nil)
            // The OpenAI endpoint and a one-row /invocations use the header.
            let form = openAIForm(model: "whisper-1")
            let openAI = try await client.execute(uri: "/v1/audio/transcriptions", method: .post, headers: form.headers, body: form.body)
            #expect(openAI.headers[header("X-Cache")] == "HIT")
            let row = try await client.execute(uri: "/invocations", method: .post, headers: .json, body: jsonBody([
                "dataframe_records": [["audio": base64WAV(), "language": "hi"]]]))
            #expect(row.headers[header("X-Cache")] == "HIT")
            #expect((row.json["predictions"] as? [[String: Any]])?.first?["cache"] == nil)
        }
    }

    @Test func neverSharedAcrossAPIKeys() async throws {
        let engine = FakeEngine()
        let service = makeService(engine: engine) {
            $0.apiKeys = [APIKey(name: "alice", key: "a-key"), APIKey(name: "bob", key: "b-key")]
        }
        try await service.application().test(.router) { client in
            let response183 = try await asr(client, headers: bearer("a-key"))
            #expect(response183.headers[header("X-Cache")] == "MISS")
            let response184 = try await asr(client, headers: bearer("b-key"))
            #expect(response184.headers[header("X-Cache")] == "MISS")
            let response185 = try await asr(client, headers: bearer("a-key"))
            #expect(response185.headers[header("X-Cache")] == "HIT")
            #expect(engine.calls.load() == 2)
        }
    }

    @Test func missAcrossModelsAndOffWithZero() async throws {
        let one = FakeEngine(name: "one", text: "एक"), two = FakeEngine(name: "two", text: "दो")
        let twoModels = service(models: [ModelHost(engine: one, logger: testLogger), ModelHost(engine: two, logger: testLogger)])
        try await twoModels.application().test(.router) { client in
            #expect(try await asr(client).headers[header("X-Cache")] == "MISS")
            let other = try await asr(client, extra: ["model": "two"])
            #expect(other.headers[header("X-Cache")] == "MISS")
            #expect(other.json["text"] as? String == "दो")
            #expect(try await asr(client, extra: ["model": "one"]).headers[header("X-Cache")] == "HIT")
        }
        let engine = FakeEngine()
        let off = makeService(engine: engine) { $0.cacheBytes = 0 }
        try await off.application().test(.router) { client in
            let response203 = try await asr(client)
            #expect(response203.headers[header("X-Cache")] == "MISS")
            let response204 = try await asr(client)
            #expect(response204.headers[header("X-Cache")] == "MISS")
            #expect(engine.calls.load() == 2)
        }
    }

    @Test func leastRecentlyUsedGoesFirst() throws {
        let transcript = Transcript(text: String(repeating: "x", count: 700), language: "hi", decoder: .ctc,
                                    duration: 1, confidence: 0, tokens: [])
        let size = ResponseCache.size(of: transcript)
        let cache = ResponseCache(capacityBytes: 2 * size)
        func key(_ n: Float) -> CacheKey {
            CacheKey(client: "", model: "m", settings: "", language: "hi", decoder: .ctc, audio: CacheKey.hash(samples: [n]))
        }
        cache.insert(transcript, for: key(1))
        cache.insert(transcript, for: key(2))
        #expect(cache.value(for: key(1)) != nil)   // 1 is now the most recent
        cache.insert(transcript, for: key(3))      // evicts 2
        #expect(cache.value(for: key(2)) == nil)
        #expect(cache.value(for: key(1)) != nil)
        #expect(cache.value(for: key(3)) != nil)
        #expect(cache.usage.entries == 2 && cache.usage.bytes == 2 * size)
        // Every field of the key separates entries.
        var other = key(1)
        other.precision = "bf16"
        #expect(cache.value(for: other) == nil)
        #expect(ResponseCache(capacityBytes: 0).isEnabled == false)
    }
}

@Suite struct ModelRegistryTests {
    @Test func unknownModelIs404AndModelsAreListed() async throws {
        let one = FakeEngine(name: "one", text: "एक"), two = FakeEngine(name: "two", text: "दो")
        let service = service(models: [ModelHost(engine: one, logger: testLogger), ModelHost(engine: two, logger: testLogger)],
                              defaultName: "two")
        try await service.application().test(.router) { client in
            expectError(try await asr(client, extra: ["model": "three"]), .notFound, "RESOURCE_DOES_NOT_EXIST",
                        containing: "one, two")
            let invocation = try await client.execute(uri: "/invocations", method: .post, headers: .json, body: jsonBody([
                "dataframe_records": [["audio": base64WAV(), "language": "hi"]], "params": ["model": "three"]]))
            expectError(invocation, .notFound, "RESOURCE_DOES_NOT_EXIST", containing: "one, two")
            #expect(try await asr(client).json["text"] as? String == "दो")                          // the default
            #expect(try await asr(client, extra: ["model": "one"]).json["text"] as? String == "एक")
            let rows = try await client.execute(uri: "/invocations", method: .post, headers: .json, body: jsonBody([
                "dataframe_records": [["audio": base64WAV(), "language": "hi", "model": "one"],
                                      ["audio": base64WAV(0.5), "language": "hi", "model": "one"]]]))
            #expect((rows.json["predictions"] as? [[String: Any]])?.map { $0["text"] as? String } == ["एक", "एक"])
            let mixed = try await client.execute(uri: "/asr", method: .post, headers: .json, body: jsonBody([
                "language": "hi", "items": [["audio": base64WAV(), "model": "one"], ["audio": base64WAV(), "model": "two"]]]))
            expectError(mixed, .badRequest, "INVALID_PARAMETER_VALUE", containing: "one request per model")
            let list = try #require(try await client.execute(uri: "/v1/models", method: .get).json["data"] as? [[String: Any]])
            #expect(list.map { $0["id"] as? String } == ["one", "two"])
            #expect(list.map { $0["default"] as? Bool } == [false, true])
            #expect(try await client.execute(uri: "/v1/models/one", method: .get).json["id"] as? String == "one")
            expectError(try await client.execute(uri: "/v1/models/zzz", method: .get), .notFound, "RESOURCE_DOES_NOT_EXIST")
            let health = try await client.execute(uri: "/health", method: .get).json
            let models = try #require(health["models"] as? [[String: Any]])
            #expect(models.map { $0["id"] as? String } == ["one", "two"])
            #expect((health["model"] as? [String: Any])?["name"] as? String == "two")
        }
    }

    @Test func openAINamesFallBackToTheDefaultUnlessStrict() async throws {
        let one = FakeEngine(name: "one", text: "एक"), two = FakeEngine(name: "two", text: "दो")
        for strict in [false, true] {
            let service = service(models: [ModelHost(engine: one, logger: testLogger), ModelHost(engine: two, logger: testLogger)]) {
                $0.strictModelNames = strict
            }
            try await service.application().test(.router) { client in
                let whisper = openAIForm(model: "whisper-1")
                let response = try await client.execute(uri: "/v1/audio/transcriptions", method: .post,
                                                        headers: whisper.headers, body: whisper.body)
                if strict {
                    expectError(response, .notFound, "RESOURCE_DOES_NOT_EXIST", containing: "one, two")
                } else {
                    #expect(response.json["text"] as? String == "एक")
                }
                let named = openAIForm(model: "two")
                #expect(try await client.execute(uri: "/v1/audio/transcriptions", method: .post, headers: named.headers,
                                                 body: named.body).json["text"] as? String == "दो")
                // /asr never falls back.
                expectError(try await asr(client, extra: ["model": "whisper-1"]), .notFound, "RESOURCE_DOES_NOT_EXIST")
            }
        }
    }

    @Test func reloadKeepsServingAndAFailedReloadKeepsTheOldModel() async throws {
        let file = try temporaryFile("abc")
        defer { try? FileManager.default.removeItem(at: file) }
        let sequence = EngineSequence([FakeEngine(delay: 1, text: "पुराना"), FakeEngine(text: "नया"), nil])
        let service = service(models: [sequence.host(name: "main", file: file)]) { $0.apiKey = "k" }
        try await service.application().test(.router) { client in
            let first = try await asr(client, seconds: 0.5, headers: bearer("k"))
            let digest = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
            #expect(first.headers[header("X-Model-Digest")] == digest)
            // A request in flight on the old weights while the reload runs.
            async let inFlight = asr(client, headers: bearer("k"))
            // Running on a worker (not just admitted), and past taking its engine (microseconds
            // after it starts; the fake then sleeps a second).
            for _ in 0..<200 {
                let page = try await client.execute(uri: "/metrics", method: .get, headers: bearer("k")).text
                if page.contains("vani_inflight_requests 1") { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            try await Task.sleep(for: .milliseconds(200))
            try Data("abcd".utf8).write(to: file)
            let reload = try await client.execute(uri: "/v1/models/main/reload", method: .post, headers: bearer("k"))
            #expect(reload.status == .ok, "\(reload.text)")
            #expect(reload.json["previous_digest"] as? String == digest)
            let newDigest = try #require(reload.json["digest"] as? String)
            #expect(newDigest != digest && newDigest.hasPrefix("sha256:") && newDigest.count == 71)
            let finished = try await inFlight
            #expect(finished.json["text"] as? String == "पुराना")
            #expect(finished.headers[header("X-Model-Digest")] == digest)
            let after = try await asr(client, headers: bearer("k"))
            #expect(after.json["text"] as? String == "नया")
            #expect(after.headers[header("X-Model-Digest")] == newDigest)
            #expect(after.headers[header("X-Cache")] == "MISS")   // new weights: the old answers do not apply
            // The next reload fails: the model in service stays, and the answer says why.
            let failed = try await client.execute(uri: "/v1/models/main/reload", method: .post, headers: bearer("k"))
            expectError(failed, .internalServerError, "INTERNAL_ERROR", containing: "broken on purpose")
            let message = failed.json["message"] as? String ?? ""
            #expect(message.contains("still serving the previous weights (\(newDigest))"), "\(message)")
            #expect(try await asr(client, seconds: 0.75, headers: bearer("k")).json["text"] as? String == "नया")
            let health = try await client.execute(uri: "/health", method: .get)
            #expect(health.status == .ok)
            let entry = try #require((health.json["models"] as? [[String: Any]])?.first)
            #expect(entry["digest"] as? String == newDigest)
            #expect(entry["generation"] as? Int == 2)
            #expect((entry["reload_error"] as? String)?.contains("broken on purpose") == true)
            // Unknown names and missing keys.
            expectError(try await client.execute(uri: "/v1/models/nope/reload", method: .post, headers: bearer("k")),
                        .notFound, "RESOURCE_DOES_NOT_EXIST")
            expectError(try await client.execute(uri: "/v1/models/main/reload", method: .post), .unauthorized, "UNAUTHENTICATED")
            let page = try await client.execute(uri: "/metrics", method: .get, headers: bearer("k")).text
            #expect(page.contains("vani_model_loads_total{model=\"main\",kind=\"reload\",result=\"failed\"} 1"), "\(page)")
            #expect(page.contains("vani_model_load_seconds{model=\"main\"}"))
            #expect(page.contains("vani_requests_total{endpoint=\"/v1/models/{name}/reload\",code=\"200\"} 1"))
        }
    }

    @Test func reloadOverHTTPNeedsAKeyAndSIGHUPReloadsAll() async throws {
        let sequence = EngineSequence([FakeEngine(text: "पुराना"), FakeEngine(text: "नया")])
        let host = sequence.host(name: "main")
        let service = service(models: [host])
        try await service.application().test(.router) { client in
            expectError(try await client.execute(uri: "/v1/models/main/reload", method: .post), .forbidden,
                        "PERMISSION_DENIED", containing: "SIGHUP")
            #expect(try await asr(client).json["text"] as? String == "पुराना")
            service.models.reloadAll(logger: testLogger)
            #expect(try await asr(client).json["text"] as? String == "नया")
            #expect(sequence.loads.load() == 2)
        }
    }
}

@Suite struct AccessTests {
    @Test func keysFileParsing() throws {
        let keys = try APIKey.parse(file: "# team keys\n\nalpha-secret\nbob  b0b-secret\n\tcarol\tc-secret  \n")
        #expect(keys == [APIKey(name: "key-3", key: "alpha-secret"), APIKey(name: "bob", key: "b0b-secret"),
                         APIKey(name: "carol", key: "c-secret")])
        #expect(throws: APIKeyFileError.self) { try APIKey.parse(file: "a b c\n") }
        #expect(throws: APIKeyFileError.self) { try APIKey.parse(file: "x k1\nx k2\n") }
        var configuration = ServerConfiguration(apiKey: "main")
        configuration.apiKeys += keys
        configuration.apiKey = "other"
        #expect(configuration.apiKeys.map(\.name) == ["api-key", "key-3", "bob", "carol"])
        #expect(configuration.apiKey == "other")
    }

    @Test func rateLimitIs429WithHeadersPerKey() async throws {
        let service = makeService {
            $0.apiKeys = [APIKey(name: "alice", key: "a"), APIKey(name: "bob", key: "b")]
            // One request per 10 s (a burst of one): slow enough that no test machine refills in between;
            // tokenBucketsRefill checks bursts and refills on a clock of its own.
            $0.rateLimit = 0.1
        }
        try await service.application().test(.router) { client in
            let first = try await asr(client, headers: bearer("a"))
            #expect(first.status == .ok)
            #expect(first.headers[header("RateLimit-Limit")] == "1")
            #expect(first.headers[header("RateLimit-Remaining")] == "0")
            let refused = try await asr(client, headers: bearer("a"))
            expectError(refused, .tooManyRequests, "RESOURCE_EXHAUSTED", containing: "alice")
            let retry = try #require(refused.headers[header("Retry-After")].flatMap(Int.init))
            #expect(retry >= 1)
            #expect(refused.headers[header("RateLimit-Limit")] == "1")
            #expect(refused.headers[header("RateLimit-Remaining")] == "0")
            #expect(refused.headers[header("RateLimit-Reset")].flatMap(Int.init) != nil)
            // Another key has its own bucket; probes are never limited.
            #expect(try await asr(client, headers: bearer("b")).status == .ok)
            for _ in 0..<5 { #expect(try await client.execute(uri: "/health", method: .get).status == .ok) }
            let page = try await client.execute(uri: "/metrics", method: .get, headers: bearer("b")).text
            #expect(page.contains("vani_rejected_requests_total{code=\"429\",reason=\"rate_limit\"} 1"), "\(page)")
        }
    }

    @Test func audioSecondsPerMinuteAndForwardedAddresses() async throws {
        let service = makeService { $0.audioSecondsPerMinute = 1.5; $0.trustForwardedFor = true }
        try await service.application().test(.router) { client in
            var headers = HTTPFields.json
            headers[header("X-Forwarded-For")] = "10.0.0.1, 192.0.2.7"
            #expect(try await asr(client, seconds: 1, headers: headers).status == .ok)
            #expect(try await asr(client, seconds: 1, headers: headers).status == .ok)   // 0.5 s left: let through, goes below zero
            let refused = try await asr(client, seconds: 1, headers: headers)
            expectError(refused, .tooManyRequests, "RESOURCE_EXHAUSTED", containing: "--audio-seconds-per-minute")
            let retry = Int(refused.headers[header("Retry-After")] ?? "") ?? 0
            #expect(retry >= 1 && retry <= 21, "Retry-After \(retry)")
            // Another address behind the same proxy has its own bucket.
            headers[header("X-Forwarded-For")] = "10.0.0.1, 192.0.2.8"
            #expect(try await asr(client, seconds: 1, headers: headers).status == .ok)
        }
    }

    @Test func withoutKeysTheAddressIsTheClientOverLoopback() async throws {
        let service = makeService { $0.rateLimit = 0.1 }
        try await service.application().test(.live) { client in
            let first = try await client.execute(uri: "/v1/models", method: .get)
            #expect(first.status == .ok)
            #expect(first.headers[header("RateLimit-Remaining")] == "0")
            let refused = try await client.execute(uri: "/v1/models", method: .get)
            expectError(refused, .tooManyRequests, "RESOURCE_EXHAUSTED", containing: "this client")
            // A forwarded address is ignored unless trusted: still the same client.
            let forwarded = try await client.execute(uri: "/v1/models", method: .get, headers: [header("X-Forwarded-For"): "198.51.100.9"])
            #expect(forwarded.status == .tooManyRequests)
            #expect(try await client.execute(uri: "/metrics", method: .get).status == .ok)
        }
    }

    @Test func tokenBucketsRefill() throws {
        let limiter = RateLimiter(requestsPerSecond: 2, audioSecondsPerMinute: nil)
        let start = ContinuousClock.now
        #expect(try limiter.admit("c", now: start)?.remaining == 1)
        _ = try limiter.admit("c", now: start)
        #expect(throws: RateLimiter.Refusal.self) { try limiter.admit("c", now: start) }
        #expect(try limiter.admit("c", now: start + .milliseconds(600)) != nil)   // 1.2 tokens back
    }

    @Test func corsPreflightWithoutKeyAndHeadersOnAnswers() async throws {
        let service = makeService { $0.apiKey = "k"; $0.corsOrigins = ["https://app.example"] }
        try await service.application().test(.router) { client in
            let preflight = try await client.execute(uri: "/v1/audio/transcriptions", method: .options, headers: [
                .origin: "https://app.example", .accessControlRequestMethod: "POST",
                .accessControlRequestHeaders: "authorization, content-type"])
            #expect(preflight.status == .noContent)
            #expect(preflight.headers[.accessControlAllowOrigin] == "https://app.example")
            #expect(preflight.headers[.accessControlAllowMethods]?.contains("POST") == true)
            #expect(preflight.headers[.accessControlAllowHeaders]?.contains("Authorization") == true)
            var headers = bearer("k")
            headers[.origin] = "https://app.example"
            let answer = try await asr(client, headers: headers)
            #expect(answer.status == .ok)
            #expect(answer.headers[.accessControlAllowOrigin] == "https://app.example")
            #expect(answer.headers[.accessControlExposeHeaders]?.contains("X-Cache") == true)
            headers[.origin] = "https://evil.example"
            #expect(try await asr(client, headers: headers).headers[.accessControlAllowOrigin] == nil)
        }
        // Off by default: no CORS headers at all.
        try await makeService().application().test(.router) { client in
            var headers = HTTPFields.json
            headers[.origin] = "https://app.example"
            let response437 = try await asr(client, headers: headers)
            #expect(response437.headers[.accessControlAllowOrigin] == nil)
        }
    }
}

@Suite struct RequestDefaultsTests {
    @Test func defaultLanguageForRequestsThatNameNone() async throws {
        try await makeService { $0.defaultLanguage = "TA " }.application().test(.router) { client in
            let response = try await asr(client, language: nil)
            #expect(response.status == .ok)
            #expect(response.json["language"] as? String == "ta")
            #expect(try await asr(client, language: "hi").json["language"] as? String == "hi")
            let form = openAIForm(model: "whisper-1", language: nil)
            let openAI = try await client.execute(uri: "/v1/audio/transcriptions", method: .post, headers: form.headers,
                                                  body: form.body)
            #expect(openAI.json["text"] as? String == FakeEngine.text)
        }
        try await makeService().application().test(.router) { client in
            expectError(try await asr(client, language: nil), .badRequest, "INVALID_PARAMETER_VALUE", containing: "language")
        }
    }

    @Test func maxAudioSecondsInHealth() async throws {
        try await makeService { $0.maxAudioSeconds = 90 }.application().test(.router) { client in
            let response461 = try await client.execute(uri: "/health", method: .get)
            #expect(response461.json["max_audio_seconds"] as? Double == 90)
        }
        try await makeService().application().test(.router) { client in
            let response464 = try await client.execute(uri: "/health", method: .get)
            #expect(response464.json["max_audio_seconds"] as? Double == 3600)
        }
    }
}
