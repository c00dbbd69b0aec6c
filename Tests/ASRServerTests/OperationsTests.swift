// API keys, model loading, the bounded queue, timeouts, and a burst over real sockets.

import ASR
@testable import ASRServer
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

@Suite struct OperationsTests {
    // MARK: - API key

    @Test func apiKey() async throws {
        let service = makeService { $0.apiKey = "s3cret" }
        try await service.application().test(.router) { client in
            let body = jsonBody(["audio": base64WAV(), "language": "hi"])
            let missing = try await client.execute(uri: "/asr", method: .post, headers: .json, body: body)
            expectError(missing, .unauthorized, "UNAUTHENTICATED", containing: "Bearer")
            #expect(missing.headers[header("WWW-Authenticate")] == "Bearer")
            let wrong = try await client.execute(uri: "/asr", method: .post,
                                                 headers: [.contentType: "application/json", .authorization: "Bearer nope"], body: body)
            expectError(wrong, .unauthorized, "UNAUTHENTICATED")
            let bearer = try await client.execute(uri: "/asr", method: .post,
                                                  headers: [.contentType: "application/json", .authorization: "Bearer s3cret"], body: body)
            #expect(bearer.status == .ok)
            let xKey = try await client.execute(uri: "/asr", method: .post,
                                                headers: [.contentType: "application/json", header("X-API-Key"): "s3cret"], body: body)
            #expect(xKey.status == .ok)
            // Probes stay open; everything else is closed, unknown paths included.
            #expect(try await client.execute(uri: "/health", method: .get).status == .ok)
            #expect(try await client.execute(uri: "/ping", method: .get).status == .ok)
            expectError(try await client.execute(uri: "/v1/models", method: .get), .unauthorized, "UNAUTHENTICATED")
            expectError(try await client.execute(uri: "/invocations", method: .post), .unauthorized, "UNAUTHENTICATED")
            expectError(try await client.execute(uri: "/secret-paths", method: .get), .unauthorized, "UNAUTHENTICATED")
        }
    }

    // MARK: - Model loading

    final class CountingLoader: Sendable {
        let calls = Counter()
        let delay: Double
        let fail: Bool
        /// When set, the load waits for the test to signal it (at most 600 s), so a test can look
        /// at the loading state however slow the machine is.
        let gate: DispatchSemaphore?
        init(delay: Double = 0, fail: Bool = false, gate: DispatchSemaphore? = nil) {
            self.delay = delay; self.fail = fail; self.gate = gate
        }
        func host() -> ModelHost {
            ModelHost(name: "lazy-model", logger: testLogger) { () throws(RecognizerError) -> any TranscriptionEngine in
                self.calls.add(1, )
                if let gate = self.gate { _ = gate.wait(timeout: .now() + 600) }
                if self.delay > 0 { Thread.sleep(forTimeInterval: self.delay) }
                if self.fail { throw .invalidModel("broken on purpose") }
                return FakeEngine()
            }
        }
    }

    @Test func lazyLoadOnFirstRequestOnce() async throws {
        let loader = CountingLoader(delay: 0.3)
        let service = makeService(host: loader.host())
        try await service.application().test(.router) { client in
            let before = try await client.execute(uri: "/health", method: .get)
            #expect(before.status == .ok)
            #expect(before.json["status"] as? String == "ok")
            let model = before.json["model"] as? [String: Any] ?? [:]
            #expect(model["state"] as? String == "idle")
            #expect(model["name"] as? String == "lazy-model")
            #expect(loader.calls.load() == 0)

            // Two requests at once share one load.
            async let first = client.execute(uri: "/asr", method: .post, headers: .json,
                                             body: jsonBody(["audio": base64WAV(), "language": "hi"]))
            async let second = client.execute(uri: "/asr", method: .post, headers: .json,
                                              body: jsonBody(["audio": base64WAV(), "language": "hi"]))
            let loading = try await waitForHealth(client) { $0["status"] as? String != "ok" || ($0["model"] as? [String: Any])?["state"] as? String == "ready" }
            #expect(["loading", "ok"].contains(loading["status"] as? String))
            #expect(try await first.status == .ok)
            #expect(try await second.status == .ok)
            #expect(loader.calls.load() == 1)
            let after = try await client.execute(uri: "/health", method: .get).json
            #expect((after["model"] as? [String: Any])?["state"] as? String == "ready")
            #expect((after["model"] as? [String: Any])?["languages"] as? [String] == ["hi", "ta", "bn"])
        }
    }

    @Test func preloadReportsLoadingThenOK() async throws {
        let gate = DispatchSemaphore(value: 0)
        let loader = CountingLoader(gate: gate)
        let service = makeService(host: loader.host()) { $0.preload = true }
        try await service.application().test(.router) { client in
            let early = try await client.execute(uri: "/health", method: .get)
            #expect(early.status == .serviceUnavailable)
            #expect(early.json["status"] as? String == "loading")
            gate.signal()
            let ready = try await waitForHealth(client) { $0["status"] as? String == "ok" }
            #expect((ready["model"] as? [String: Any])?["name"] as? String == "fake-indicconformer")
            #expect(loader.calls.load() == 1)
        }
    }

    @Test func failedLoadIs503AndHealthSaysError() async throws {
        let loader = CountingLoader(fail: true)
        let service = makeService(host: loader.host())
        try await service.application().test(.router) { client in
            let response = try await client.execute(uri: "/asr", method: .post, headers: .json,
                                                    body: jsonBody(["audio": base64WAV(), "language": "hi"]))
            expectError(response, .serviceUnavailable, "TEMPORARILY_UNAVAILABLE", containing: "server log")
            #expect(!response.text.contains("broken on purpose"))
            let health = try await client.execute(uri: "/health", method: .get)
            #expect(health.status == .serviceUnavailable)
            #expect(health.json["status"] as? String == "error")
            // Bad requests are still told what is wrong with them, without a model.
            let bad = try await client.execute(uri: "/asr", method: .post, headers: .json, body: jsonBody(["language": "hi"]))
            expectError(bad, .badRequest, "INVALID_PARAMETER_VALUE")
            // The next request tries again.
            _ = try await client.execute(uri: "/asr", method: .post, headers: .json,
                                         body: jsonBody(["audio": base64WAV(), "language": "hi"]))
            #expect(loader.calls.load() == 2)
        }
    }

    // MARK: - Queue and timeout

    @Test func fullQueueIs503WithRetryAfter() async throws {
        // A long forward pass, so that the second request surely finds the only place taken
        // even on a loaded machine.
        let service = makeService(engine: FakeEngine(delay: 6)) { $0.concurrency = 1; $0.queueCapacity = 0 }
        try await service.application().test(.router) { client in
            async let slow = client.execute(uri: "/asr", method: .post, headers: .json,
                                            body: jsonBody(["audio": base64WAV(), "language": "hi"]))
            _ = try await waitForHealth(client) { ($0["queue"] as? [String: Any])?["in_flight"] as? Int == 1 }
            let refused = try await client.execute(uri: "/asr", method: .post, headers: .json,
                                                   body: jsonBody(["audio": base64WAV(), "language": "hi"]))
            expectError(refused, .serviceUnavailable, "RESOURCE_EXHAUSTED", containing: "busy")
            let retry = try #require(refused.headers[header("Retry-After")].flatMap(Int.init))
            #expect(retry >= 1)
            #expect(try await slow.status == .ok)
            _ = try await waitForHealth(client) { ($0["queue"] as? [String: Any])?["in_flight"] as? Int == 0 }
            let later = try await client.execute(uri: "/asr", method: .post, headers: .json,
                                                 body: jsonBody(["audio": base64WAV(), "language": "hi"]))
            #expect(later.status == .ok)
        }
    }

    @Test func slowRequestTimesOutAndTheServerRecovers() async throws {
        let service = makeService(engine: FakeEngine(delay: 2)) { $0.timeoutSeconds = 0.5; $0.concurrency = 1 }
        try await service.application().test(.router) { client in
            let response = try await client.execute(uri: "/asr", method: .post, headers: .json,
                                                    body: jsonBody(["audio": base64WAV(), "language": "hi"]))
            expectError(response, .serviceUnavailable, "DEADLINE_EXCEEDED", containing: "--timeout")
            // The abandoned forward pass still holds its worker until it ends, then frees it.
            _ = try await waitForHealth(client) { ($0["queue"] as? [String: Any])?["in_flight"] as? Int == 0 }
        }
    }

    @Test func batchStopsAtTheDeadline() async throws {
        let engine = FakeEngine(delay: 0.3)
        // Cache off: ten identical items would otherwise be answered from memory after the first.
        let service = makeService(engine: engine) { $0.timeoutSeconds = 0.5; $0.cacheBytes = 0 }
        try await service.application().test(.router) { client in
            let items = Array(repeating: ["audio": base64WAV(0.2)], count: 10)
            let response = try await client.execute(uri: "/asr", method: .post, headers: .json,
                                                    body: jsonBody(["language": "hi", "items": items]))
            expectError(response, .serviceUnavailable, "DEADLINE_EXCEEDED")
            // The worker notices the deadline between items instead of running all ten.
            _ = try await waitForHealth(client) { ($0["queue"] as? [String: Any])?["in_flight"] as? Int == 0 }
            #expect(engine.calls.load() < 10)
        }
    }

    @Test func tricklingUploadTimesOutAndFreesItsPlace() async throws {
        let service = makeService { $0.timeoutSeconds = 1; $0.concurrency = 1; $0.queueCapacity = 0 }
        try await service.application().test(.live) { client in
            let port = try #require(client.port)
            // Headers promise 1000 bytes; 10 arrive, then nothing.
            let head = "POST /asr HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"audio\": "
            let reply = await rawExchange(port: port, Array(head.utf8), readTimeout: 5)
            #expect(reply.hasPrefix("HTTP/1.1 408"), "\(reply)")
            #expect(reply.contains("DEADLINE_EXCEEDED"))
            // Its place is free again: the only worker takes the next request.
            let next = try await client.execute(uri: "/asr", method: .post, headers: .json,
                                                body: jsonBody(["audio": base64WAV(), "language": "hi"]))
            #expect(next.status == .ok)
        }
    }

    @Test func headOnGetEndpoints() async throws {
        try await makeService().application().test(.router) { client in
            let head = try await client.execute(uri: "/health", method: .head)
            #expect(head.status == .ok)
            #expect(head.body.readableBytes == 0)
        }
    }

    // MARK: - Real sockets

    @Test func everyEndpointOverLoopback() async throws {
        let service = makeService { $0.apiKey = "k" }
        try await service.application().test(.live) { client in
            #expect(client.port != nil)
            let auth: HTTPFields = [.contentType: "application/json", .authorization: "Bearer k"]
            #expect(try await client.execute(uri: "/ping", method: .get).status == .ok)
            #expect(try await client.execute(uri: "/health", method: .get).json["status"] as? String == "ok")
            #expect(try await client.execute(uri: "/version", method: .get, headers: auth).text == ASRService.version)
            #expect(try await client.execute(uri: "/v1/models", method: .get, headers: auth).status == .ok)
            let asr = try await client.execute(uri: "/asr", method: .post, headers: auth,
                                               body: jsonBody(["audio": base64WAV(), "language": "hi", "timestamps": true]))
            #expect(asr.json["text"] as? String == FakeEngine.text)
            #expect(asr.json["words"] != nil)
            let invocations = try await client.execute(uri: "/invocations", method: .post, headers: auth,
                                                       body: jsonBody(["dataframe_records": [["audio": base64WAV(), "language": "hi"]]]))
            #expect((invocations.json["predictions"] as? [[String: Any]])?.first?["text"] as? String == FakeEngine.text)
            var form = MultipartBody()
            form.file("file", filename: "a.wav", makeWAV(seconds: 1))
            form.field("language", "hi")
            form.field("response_format", "srt")
            var formHeaders = form.headers
            formHeaders[.authorization] = "Bearer k"
            let srt = try await client.execute(uri: "/v1/audio/transcriptions", method: .post, headers: formHeaders, body: form.body)
            #expect(srt.text.hasPrefix("1\n00:00:00,080 --> "))
            expectError(try await client.execute(uri: "/asr", method: .post, headers: .json, body: jsonBody([:])),
                        .unauthorized, "UNAUTHENTICATED")
            expectError(try await client.execute(uri: "/asr", method: .post, headers: auth, body: ByteBuffer(string: "{")),
                        .badRequest, "BAD_REQUEST")
            expectError(try await client.execute(uri: "/missing", method: .get, headers: auth), .notFound, "ENDPOINT_NOT_FOUND")
            expectError(try await client.execute(uri: "/invocations", method: .get, headers: auth), .methodNotAllowed, "METHOD_NOT_ALLOWED")
        }
    }

    /// 32 clients at once against 2 workers and 2 queue places: each gets its transcript or a
    /// clean 503, and the server serves normally afterwards.
    @Test func burstOf32() async throws {
        let service = makeService(engine: FakeEngine(delay: 0.2)) { $0.concurrency = 2; $0.queueCapacity = 2 }
        try await service.application().test(.ahc(.http)) { client in
            let statuses = try await withThrowingTaskGroup(of: (Int, TestResponse).self) { group in
                for index in 0..<32 {
                    group.addTask {
                        let seconds = 0.1 + Double(index) / 100
                        let response = try await client.execute(
                            uri: "/asr", method: .post, headers: .json,
                            body: jsonBody(["audio": base64WAV(seconds), "language": "hi"]))
                        return (index, response)
                    }
                }
                var results: [(Int, TestResponse)] = []
                for try await result in group { results.append(result) }
                return results
            }
            #expect(statuses.count == 32)
            var ok = 0
            for (index, response) in statuses {
                if response.status == .ok {
                    ok += 1
                    #expect(response.json["text"] as? String == FakeEngine.text)
                    #expect(response.json["duration"] as? Double == millis(0.1 + Double(index) / 100))
                } else {
                    expectError(response, .serviceUnavailable, "RESOURCE_EXHAUSTED")
                    #expect(response.headers[header("Retry-After")] != nil)
                }
            }
            #expect(ok >= 1)
            print("burst of 32: \(ok) answered, \(32 - ok) refused with 503")
            _ = try await waitForHealth(client) { ($0["queue"] as? [String: Any])?["in_flight"] as? Int == 0 }
            let after = try await client.execute(uri: "/asr", method: .post, headers: .json,
                                                 body: jsonBody(["audio": base64WAV(), "language": "hi"]))
            #expect(after.status == .ok)
        }
    }
}
