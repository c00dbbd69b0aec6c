// POST /asr, GET /health, /ping, /version through the router (no sockets).

import ASR
@testable import ASRServer
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

@Suite struct ASREndpointTests {
    @Test func healthReportsTheLoadedModel() async throws {
        try await makeService().application().test(.router) { client in
            let response = try await client.execute(uri: "/health", method: .get)
            #expect(response.status == .ok)
            let json = response.json
            #expect(json["status"] as? String == "ok")
            let model = try #require(json["model"] as? [String: Any])
            #expect(model["name"] as? String == "fake-indicconformer")
            #expect(model["languages"] as? [String] == ["hi", "ta", "bn"])
            #expect(model["decoders"] as? [String] == ["ctc", "rnnt"])
            #expect(model["parameters"] as? Int == 1234)
            #expect((json["uptime_s"] as? Double ?? -1) >= 0)
            #expect(response.headers[header("X-Request-Id")] != nil)
        }
    }

    @Test func pingAndVersion() async throws {
        try await makeService().application().test(.router) { client in
            #expect(try await client.execute(uri: "/ping", method: .get).status == .ok)
            let version = try await client.execute(uri: "/version", method: .get)
            #expect(version.status == .ok)
            #expect(version.text == ASRService.version)
        }
    }

    @Test func transcribesOneClip() async throws {
        try await makeService().application().test(.router) { client in
            let response = try await client.execute(
                uri: "/asr", method: .post, headers: .json,
                body: jsonBody(["audio": base64WAV(1.5), "language": "hi", "decoding": "rnnt"]))
            #expect(response.status == .ok)
            let json = response.json
            #expect(json["text"] as? String == FakeEngine.text)
            #expect(json["language"] as? String == "hi")
            #expect(json["decoding"] as? String == "rnnt")
            #expect(json["duration"] as? Double == 1.5)
            #expect(json["processing_ms"] is Double)
            #expect(json["tokens"] == nil && json["words"] == nil)
        }
    }

    @Test func acceptsTheAliasesAndReturnsTimestamps() async throws {
        try await makeService().application().test(.router) { client in
            let response = try await client.execute(
                uri: "/asr", method: .post, headers: .json,
                body: jsonBody(["audio_base64": base64WAV(), "lang": "ta", "decoder": "ctc", "timestamps": true]))
            #expect(response.status == .ok)
            let json = response.json
            #expect(json["language"] as? String == "ta")
            #expect(json["decoding"] as? String == "ctc")
            let tokens = try #require(json["tokens"] as? [[String: Any]])
            #expect(tokens.count == 3)
            #expect(tokens[0]["text"] as? String == " नम")
            #expect(tokens[0]["start"] as? Double == 0.08)
            #expect(tokens[0]["end"] as? Double == 0.24)
            let words = try #require(json["words"] as? [[String: Any]])
            #expect(words.map { $0["word"] as? String } == ["नमस्ते", "दुनिया"])
            #expect(words[0]["start"] as? Double == 0.08)
            #expect(words[0]["end"] as? Double == 0.4)
        }
    }

    @Test func defaultsToCTCWithoutTimestamps() async throws {
        try await makeService().application().test(.router) { client in
            // No Content-Type header at all (curl -d without -H): treated as JSON.
            let response = try await client.execute(uri: "/asr", method: .post,
                                                    body: jsonBody(["audio": base64WAV(), "language": "HI"]))
            #expect(response.status == .ok)
            #expect(response.json["decoding"] as? String == "ctc")
            #expect(response.json["language"] as? String == "hi")
        }
    }

    @Test func toleratesWrappedAndURLSafeBase64() async throws {
        let wav = makeWAV(seconds: 0.5)
        let wrapped = wav.base64EncodedString(options: [.lineLength76Characters, .endLineWithLineFeed])
        let urlSafe = wav.base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        let dataURI = "data:audio/wav;base64," + wav.base64EncodedString()
        try await makeService().application().test(.router) { client in
            for audio in [wrapped, urlSafe, dataURI] {
                let response = try await client.execute(uri: "/asr", method: .post, headers: .json,
                                                        body: jsonBody(["audio": audio, "language": "hi"]))
                #expect(response.status == .ok, "\(response.text)")
                #expect(response.json["duration"] as? Double == 0.5)
            }
        }
    }

    @Test func batchAnswersInOrderWithErrorsInPlace() async throws {
        try await makeService().application().test(.router) { client in
            let response = try await client.execute(
                uri: "/asr", method: .post, headers: .json,
                body: jsonBody([
                    "language": "hi",
                    "items": [
                        ["audio": base64WAV(1)],
                        ["audio": "%%% not base64 %%%"],
                        ["audio": base64WAV(2), "language": "xx"],
                        ["audio": base64WAV(3), "language": "bn", "timestamps": true],
                        "not an object",
                    ] as [Any],
                ]))
            #expect(response.status == .ok)
            let results = try #require(response.json["results"] as? [[String: Any]])
            #expect(results.count == 5)
            #expect(results[0]["duration"] as? Double == 1)
            #expect(results[0]["language"] as? String == "hi")
            #expect(results[1]["error_code"] as? String == "INVALID_PARAMETER_VALUE")
            #expect((results[1]["message"] as? String ?? "").contains("items[1].audio"))
            #expect(results[2]["error_code"] as? String == "INVALID_PARAMETER_VALUE")
            #expect((results[2]["message"] as? String ?? "").contains("unknown language 'xx'"))
            #expect(results[3]["duration"] as? Double == 3)
            #expect(results[3]["language"] as? String == "bn")
            #expect(results[3]["words"] != nil)
            #expect(results[4]["error_code"] as? String == "INVALID_PARAMETER_VALUE")
        }
    }

    @Test func batchLimits() async throws {
        try await makeService({ $0.maxBatchItems = 2 }).application().test(.router) { client in
            let empty = try await client.execute(uri: "/asr", method: .post, headers: .json,
                                                 body: jsonBody(["items": [] as [Any]]))
            expectError(empty, .badRequest, "INVALID_PARAMETER_VALUE", containing: "empty")
            let tooMany = try await client.execute(
                uri: "/asr", method: .post, headers: .json,
                body: jsonBody(["language": "hi", "items": Array(repeating: ["audio": base64WAV(0.1)], count: 3)]))
            expectError(tooMany, .badRequest, "INVALID_PARAMETER_VALUE", containing: "limit is 2")
            let notArray = try await client.execute(uri: "/asr", method: .post, headers: .json,
                                                    body: jsonBody(["items": "x"]))
            expectError(notArray, .badRequest, "INVALID_PARAMETER_VALUE", containing: "'items'")
        }
    }

    @Test func keepsTheClientsRequestID() async throws {
        try await makeService().application().test(.router) { client in
            let mine = try await client.execute(uri: "/health", method: .get, headers: [header("X-Request-Id"): "abc-123"])
            #expect(mine.headers[header("X-Request-Id")] == "abc-123")
            let odd = try await client.execute(uri: "/health", method: .get, headers: [header("X-Request-Id"): "no spaces allowed"])
            let generated = try #require(odd.headers[header("X-Request-Id")])
            #expect(generated != "no spaces allowed" && generated.count == 16)
        }
    }
}
