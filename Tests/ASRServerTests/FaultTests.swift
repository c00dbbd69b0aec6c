// Faults real clients hit, each fixed by kind (issue 18, items 6–11 and 18): inputs that trapped
// a library, framing errors answered outside the contract, echoes and log injection, JSON as
// Python writes it, `Expect: 100-continue`, slow clients, and an HTTP-layer fuzz test.

import ASR
@testable import ASRServer
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Testing
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The JSON body of a raw HTTP response.
func rawJSON(_ response: String) -> [String: Any] {
    guard let range = response.range(of: "\r\n\r\n") else { return [:] }
    let body = String(response[range.upperBound...])
    return (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
}

@Suite struct FaultTests {
    // MARK: - 6. Inputs that trapped a library

    @Test func multipartHeaderNamesThatAreNotASCIIAreRefusedNotACrash() async throws {
        try await makeService().application().test(.router) { client in
            for name in [[0x80], [0xFF, 0x3A], [0x43, 0xC3, 0xA9], [0xE0, 0xA4, 0xA8]] as [[UInt8]] {
                var body = Array("--B\r\n".utf8) + name + Array(": x\r\n\r\nx\r\n--B--\r\n".utf8)
                // Also as the second header of a well-formed part.
                if name.count > 1 {
                    body = Array("--B\r\nContent-Disposition: form-data; name=\"file\"\r\n".utf8) + name
                        + Array(": y\r\n\r\nabc\r\n--B--\r\n".utf8)
                }
                let response = try await client.execute(uri: "/v1/audio/transcriptions", method: .post,
                                                        headers: [.contentType: "multipart/form-data; boundary=B"],
                                                        body: ByteBuffer(bytes: body))
                expectError(response, .badRequest, "BAD_REQUEST", containing: "not ASCII")
            }
            // A UTF-8 file name in a header *value* is fine (browsers send them).
            var form = MultipartBody()
            form.file("file", filename: "नमस्ते.wav", makeWAV(seconds: 1))
            form.field("language", "hi")
            let fine = try await client.execute(uri: "/v1/audio/transcriptions", method: .post,
                                                headers: form.headers, body: form.body)
            #expect(fine.status == .ok, "\(fine.text)")
            #expect(try await client.execute(uri: "/ping", method: .get).status == .ok)
        }
    }

    // MARK: - 8. Framing errors, in the contract

    @Test func malformedHTTPGetsTheJSONErrorAndARequestID() async throws {
        try await makeService().application().test(.live) { client in
            let port = try #require(client.port)
            let cases = [
                "GARBAGE / HTTP/1.1\r\n\r\n",
                "GET / HTTP/9.9\r\n\r\n",
                "POST /asr HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
                "POST /asr HTTP/1.1\r\nHost x\r\n\r\n",
            ]
            for request in cases {
                let reply = await onThread { () -> String in
                    guard let connection = RawConnection(port: port) else { return "no connection" }
                    connection.send(request)
                    return connection.receive(until: "}", timeout: 5).text
                }
                #expect(reply.hasPrefix("HTTP/1.1 400"), "\(request.debugDescription) → \(reply)")
                #expect(reply.lowercased().contains("x-request-id:"), "\(reply)")
                #expect(rawJSON(reply)["error_code"] as? String == "BAD_REQUEST", "\(reply)")
            }
        }
    }

    @Test func brokenChunkSizesAre400NotServerFaults() async throws {
        try await makeService().application().test(.live) { client in
            let port = try #require(client.port)
            for size in ["-5", "zz", "0x10", "ffffffffffffffffffff"] {
                let reply = await onThread { () -> String in
                    guard let connection = RawConnection(port: port) else { return "no connection" }
                    connection.send("POST /asr HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n\(size)\r\nabc\r\n0\r\n\r\n")
                    return connection.receive(until: "}", timeout: 5).text
                }
                #expect(reply.hasPrefix("HTTP/1.1 400"), "chunk size \(size) → \(reply)")
                #expect(rawJSON(reply)["error_code"] as? String == "BAD_REQUEST", "\(reply)")
            }
        }
    }

    // MARK: - 7. Impossible lengths, slow clients, idle sockets

    @Test func impossibleContentLengthsAreRefusedAtOnceAndTheConnectionCloses() async throws {
        try await makeService().application().test(.live) { client in
            let port = try #require(client.port)
            for length in ["9223372036854775808", "99999999999999999999999", "200000000"] {
                let started = Date()
                let (reply, closed) = await onThread { () -> (String, Bool) in
                    guard let connection = RawConnection(port: port) else { return ("no connection", false) }
                    connection.send("POST /asr HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(length)\r\n\r\n{")
                    let first = connection.receive(until: "}", timeout: 5)
                    return (first.text, first.closed || connection.receive(timeout: 2).closed)
                }
                #expect(reply.hasPrefix("HTTP/1.1 413") || reply.hasPrefix("HTTP/1.1 400"), "\(length) → \(reply)")
                #expect(closed, "the connection closes instead of draining \(length) bytes")
                #expect(Date().timeIntervalSince(started) < 4, "refused at once")
            }
        }
    }

    @Test func slowUploadsAreCutOffAndHoldNoPlaceInThePool() async throws {
        // One worker, no queue: before, one trickling client took the only place for --timeout.
        let service = makeService { $0.concurrency = 1; $0.queueCapacity = 0; $0.timeoutSeconds = 20
                                    $0.uploadGraceSeconds = 1; $0.minUploadBytesPerSecond = 1024 }
        try await service.application().test(.live) { client in
            let port = try #require(client.port)
            let trickle = Task {
                await withTaskGroup(of: String.self) { group in
                    for _ in 0..<6 {
                        group.addTask {
                            await onThread { () -> String in
                                guard let connection = RawConnection(port: port) else { return "no connection" }
                                connection.send("POST /asr HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
                                for _ in 0..<4 {
                                    Thread.sleep(forTimeInterval: 0.5)
                                    connection.send("\"")
                                }
                                return connection.receive(until: "}", timeout: 5).text
                            }
                        }
                    }
                    var replies: [String] = []
                    for await reply in group { replies.append(reply) }
                    return replies
                }
            }
            try await Task.sleep(for: .milliseconds(300))
            // Meanwhile a normal client is served: with one worker and no queue, any trickling
            // upload that held a place would have it refused with 503.
            let normal = try await client.execute(uri: "/asr", method: .post, headers: .json,
                                                  body: jsonBody(["audio": base64WAV(), "language": "hi"]))
            #expect(normal.status == .ok, "\(normal.text)")
            for reply in await trickle.value {
                #expect(reply.hasPrefix("HTTP/1.1 408"), "\(reply)")
                #expect(reply.contains("too slowly"), "\(reply)")
            }
        }
    }

    @Test func eightSteadyClientsAreServedWithDefaultLimits() async throws {
        // Defaults on 2 cores (concurrency 2), a 50 ms forward pass: nobody is turned away.
        let service = makeService(engine: FakeEngine(delay: 0.05)) { configuration in
            let defaults = ServerConfiguration(host: "127.0.0.1", port: 0, cores: 2)
            configuration.queueCapacity = defaults.queueCapacity
            configuration.concurrency = defaults.concurrency
            configuration.timeoutSeconds = defaults.timeoutSeconds
        }
        try await service.application().test(.router) { client in
            let statuses = try await withThrowingTaskGroup(of: [Int].self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        var codes: [Int] = []
                        for _ in 0..<5 {
                            let response = try await client.execute(uri: "/asr", method: .post, headers: .json,
                                                                    body: jsonBody(["audio": base64WAV(0.5), "language": "hi"]))
                            codes.append(response.status.code)
                        }
                        return codes
                    }
                }
                var all: [Int] = []
                for try await codes in group { all += codes }
                return all
            }
            #expect(statuses.count == 40)
            #expect(statuses.allSatisfy { $0 == 200 }, "\(statuses.filter { $0 != 200 })")
        }
    }

    @Test func idleSocketsAreAnsweredAndCappedNotLeftToStarveOthers() async throws {
        // A head deadline long enough that the three idle sockets are still open when the
        // fourth arrives, even on a loaded machine.
        let service = makeService { $0.maxConnections = 3; $0.headerTimeoutSeconds = 3 }
        try await service.application().test(.live) { client in
            let port = try #require(client.port)
            let (timedOut, refused) = await onThread { () -> (String, String) in
                // Three idle sockets fill the cap; a fourth is answered 503 at once.
                let idle = (0..<3).compactMap { _ in RawConnection(port: port) }
                Thread.sleep(forTimeInterval: 0.1)
                let fourth = RawConnection(port: port)
                let refused = fourth?.receive(until: "}", timeout: 2).text ?? "no connection"
                // The idle ones get 408 once the head's deadline passes, and close.
                let timedOut = idle.first?.receive(until: "}", timeout: 8).text ?? "no connection"
                return (timedOut, refused)
            }
            #expect(refused.hasPrefix("HTTP/1.1 503"), "\(refused)")
            #expect(refused.contains("too many open connections"))
            #expect(timedOut.hasPrefix("HTTP/1.1 408"), "\(timedOut)")
            // Their places are free again.
            try await Task.sleep(for: .milliseconds(200))
            let ping = await rawPing(port: port)
            #expect(ping.hasPrefix("HTTP/1.1 200"), "\(ping)")
        }
    }

    // MARK: - 11. Expect: 100-continue

    @Test func expectContinueIsAnsweredAtOnce() async throws {
        try await makeService().application().test(.live) { client in
            let port = try #require(client.port)
            let body = String(data: try JSONSerialization.data(withJSONObject: ["audio": base64WAV(), "language": "hi"]),
                              encoding: .utf8) ?? ""
            let (interim, final) = await onThread { () -> (String, String) in
                guard let connection = RawConnection(port: port) else { return ("no connection", "") }
                connection.send("POST /asr HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nExpect: 100-continue\r\n\r\n")
                let interim = connection.receive(until: "\r\n\r\n", timeout: 0.5).text
                connection.send(body)
                return (interim, connection.receive(until: "}", timeout: 5).text)
            }
            #expect(interim == "HTTP/1.1 100 Continue\r\n\r\n", "\(interim.debugDescription)")
            #expect(final.hasPrefix("HTTP/1.1 200"), "\(final)")
            // A body over the limit gets the final status instead of 100.
            let refused = await onThread { () -> String in
                guard let connection = RawConnection(port: port) else { return "no connection" }
                connection.send("POST /asr HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 999999999999\r\nExpect: 100-continue\r\n\r\n")
                return connection.receive(until: "}", timeout: 2).text
            }
            #expect(refused.hasPrefix("HTTP/1.1 413"), "\(refused)")
        }
    }

    // MARK: - 9. Echoes and log injection

    @Test func echoedValuesAreClippedAndEscaped() async throws {
        try await makeService().application().test(.router) { client in
            let huge = String(repeating: "x", count: 1 << 20)
            let response = try await client.execute(uri: "/asr", method: .post, headers: .json,
                                                    body: jsonBody(["audio": base64WAV(), "language": huge]))
            expectError(response, .badRequest, "INVALID_PARAMETER_VALUE", containing: "unknown language")
            #expect(response.body.readableBytes < 1000, "a 1 MiB language is not echoed back")
            let forged = try await client.execute(uri: "/asr", method: .post, headers: .json,
                                                  body: jsonBody(["audio": base64WAV(), "language": "hi", "decoding": "ctc\nFAKE LOG LINE"]))
            let message = forged.json["message"] as? String ?? ""
            #expect(!message.contains("\n"), "\(message)")
            #expect(message.contains("\\n"), "\(message)")
            let control = try await client.execute(uri: "/asr", method: .post, headers: .json,
                                                   body: ByteBuffer(string: "{\"audio\": 1e999999, \"language\": \"hi\"}"))
            let text = control.json["message"] as? String ?? ""
            expectError(control, .badRequest, "BAD_REQUEST")
            for typeName in ["Swift.", "DecodingError", "NSCocoa", "Context(", "JSONValue"] {
                #expect(!text.contains(typeName), "\(text)")
            }
        }
    }

    @Test func theTextLogCannotBeForged() {
        final class Lines: @unchecked Sendable { var value: [String] = [] }
        struct Capture: LogHandler {
            let lines: Lines
            var logLevel: Logger.Level = .trace
            var metadata: Logger.Metadata = [:]
            subscript(metadataKey key: String) -> Logger.Metadata.Value? { get { metadata[key] } set { metadata[key] = newValue } }
            func log(event: LogEvent) { lines.value.append("\(event.message) \(event.metadata ?? [:])") }
        }
        let lines = Lines()
        let logger = Logger(label: "t") { _ in EscapingLogHandler(Capture(lines: lines)) }
        logger.info("request failed\nFORGED", metadata: ["message": "bad\r\nFORGED", "list": ["a\nb"]])
        #expect(lines.value.count == 1)
        #expect(!lines.value[0].contains("\n") && !lines.value[0].contains("\r"), "\(lines.value)")
        #expect(lines.value[0].contains("\\nFORGED"))
    }

    // MARK: - 10. JSON as Python writes it

    @Test func nanAndInfinityReadAsMissingValues() async throws {
        try await makeService().application().test(.router) { client in
            // What MLflow's scoring client sends for a DataFrame whose rows have different fields.
            let audio = base64WAV()
            let body = """
            {"dataframe_split": {"columns": ["audio", "language", "timestamps"], "data": [["\(audio)", "hi", NaN], ["\(audio)", "ta", true]]}, "params": {"x": Infinity, "y": -Infinity}}
            """
            let response = try await client.execute(uri: "/invocations", method: .post, headers: .json,
                                                    body: ByteBuffer(string: body))
            #expect(response.status == .ok, "\(response.text)")
            let predictions = response.json["predictions"] as? [[String: Any]] ?? []
            #expect(predictions.count == 2)
            #expect(predictions.first?["words"] == nil, "NaN timestamps = missing = false")
            #expect(predictions.last?["words"] != nil)
            // Inside a string the same letters are text.
            let text = try await client.execute(uri: "/asr", method: .post, headers: .json,
                                                body: ByteBuffer(string: "{\"audio\": \"\(audio)\", \"language\": \"NaN\"}"))
            expectError(text, .badRequest, "INVALID_PARAMETER_VALUE", containing: "'nan'")
        }
    }

    // MARK: - The HTTP layer under mutated requests

    /// 10,000 requests made by mutating well-formed ones (bytes flipped, inserted, deleted,
    /// cut; headers duplicated; lengths lied about), sent over real sockets: the server never
    /// answers 5xx and keeps serving. Seeded; VANI_HTTP_FUZZ_ITERATIONS sets the count.
    @Test func httpFuzz() async throws {
        let iterations = ProcessInfo.processInfo.environment["VANI_HTTP_FUZZ_ITERATIONS"].flatMap(Int.init) ?? 10_000
        let service = makeService { $0.headerTimeoutSeconds = 1; $0.uploadGraceSeconds = 0.5; $0.timeoutSeconds = 2 }
        try await service.application().test(.live) { client in
            let port = try #require(client.port)
            var form = MultipartBody()
            form.file("file", filename: "a.wav", makeWAV(seconds: 0.1))
            form.field("language", "hi")
            let seeds: [[UInt8]] = [
                Array("GET /health HTTP/1.1\r\nHost: x\r\n\r\n".utf8),
                Array("POST /asr HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 60\r\n\r\n{\"audio\": \"UklGRg==\", \"language\": \"hi\", \"items\": [1, {}, NaN]}".utf8),
                Array("POST /invocations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{\"inputs\": [\"UkG\r\n3\r\n\"]}\r\n0\r\n\r\n".utf8),
                Array("POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=\(form.boundary)\r\nContent-Length: \(form.body.readableBytes)\r\n\r\n".utf8) + Array(form.body.readableBytesView),
            ]
            let counts = await onThread { () -> [String: Int] in
                var state: UInt64 = 0x4854_5450_F022
                func next() -> UInt64 {
                    state &+= 0x9E37_79B9_7F4A_7C15
                    var z = state
                    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
                    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
                    return z ^ (z >> 31)
                }
                var counts: [String: Int] = [:]
                for i in 0..<iterations {
                    var bytes = seeds[Int(next() % UInt64(seeds.count))]
                    for _ in 0..<(1 + Int(next() % 3)) {
                        guard !bytes.isEmpty else { break }
                        let at = Int(next() % UInt64(bytes.count))
                        switch next() % 6 {
                        case 0: bytes[at] = UInt8(truncatingIfNeeded: next())
                        case 1: bytes.insert(UInt8(truncatingIfNeeded: next()), at: at)
                        case 2: bytes.remove(at: at)
                        case 3: bytes = Array(bytes[..<at])
                        case 4: bytes.insert(contentsOf: Array("\r\nX-Dup: \(i)".utf8), at: at)
                        default: bytes[at] = [0x80, 0xFF, 0x00, 0x0A, 0x3A][Int(next() % 5)]
                        }
                    }
                    guard let connection = RawConnection(port: port) else { counts["no connection", default: 0] += 1; continue }
                    connection.send(bytes)
                    // Half-close so the server sees the end of what we send.
                    shutdown(connection.fd, Int32(SHUT_WR))
                    let reply = connection.receive(timeout: 3).text
                    let status = reply.hasPrefix("HTTP/1.1 ") ? String(reply.dropFirst(9).prefix(3)) : "none"
                    counts[status, default: 0] += 1
                }
                return counts
            }
            print("[http-fuzz] \(iterations) mutated requests: \(counts.sorted { $0.key < $1.key })")
            let serverErrors = counts.filter { $0.key.hasPrefix("5") && $0.key != "503" }
            #expect(serverErrors.isEmpty, "server errors: \(serverErrors)")
            #expect(counts["no connection"] == nil)
            // A fresh connection (the test client's own was idle past the head deadline).
            let ping = await rawPing(port: port)
            #expect(ping.hasPrefix("HTTP/1.1 200"), "the server still serves: \(ping)")
        }
    }
}
