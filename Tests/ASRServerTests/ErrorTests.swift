// Bad input of every kind gets an MLflow-shaped error with the right status, and never a crash.

import ASR
@testable import ASRServer
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

@Suite struct ErrorTests {
    func post(_ client: some TestClientProtocol, _ body: ByteBuffer, uri: String = "/asr",
              headers: HTTPFields = .json) async throws -> TestResponse {
        try await client.execute(uri: uri, method: .post, headers: headers, body: body)
    }

    @Test func malformedJSON() async throws {
        try await makeService().application().test(.router) { client in
            expectError(try await post(client, ByteBuffer(string: "{\"audio\": ")), .badRequest, "BAD_REQUEST", containing: "not valid JSON")
            expectError(try await post(client, ByteBuffer(string: "")), .badRequest, "BAD_REQUEST", containing: "empty")
            expectError(try await post(client, ByteBuffer(string: "[1, 2]")), .badRequest, "BAD_REQUEST", containing: "JSON object")
            expectError(try await post(client, ByteBuffer(string: "\"just a string\"")), .badRequest, "BAD_REQUEST")
            expectError(try await post(client, ByteBuffer(bytes: [0xff, 0xfe, 0x00, 0x7b])), .badRequest, "BAD_REQUEST")
            // Deep nesting is refused by the parser, not by the stack.
            let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
            expectError(try await post(client, ByteBuffer(string: deep)), .badRequest, "BAD_REQUEST")
            let deepObject = String(repeating: "{\"a\":", count: 50_000) + "1" + String(repeating: "}", count: 50_000)
            expectError(try await post(client, ByteBuffer(string: deepObject)), .badRequest, "BAD_REQUEST")
        }
    }

    @Test func missingFields() async throws {
        try await makeService().application().test(.router) { client in
            expectError(try await post(client, jsonBody(["language": "hi"])), .badRequest, "INVALID_PARAMETER_VALUE",
                        containing: "missing field 'audio' or 'audio_base64'")
            expectError(try await post(client, jsonBody(["audio": base64WAV()])), .badRequest, "INVALID_PARAMETER_VALUE",
                        containing: "missing field 'language' or 'lang'")
            expectError(try await post(client, jsonBody(["audio": NSNull(), "language": "hi"])), .badRequest,
                        "INVALID_PARAMETER_VALUE", containing: "missing field 'audio'")
            expectError(try await post(client, jsonBody(["audio": base64WAV(), "language": "  "])), .badRequest,
                        "INVALID_PARAMETER_VALUE", containing: "missing field 'language'")
        }
    }

    @Test func wrongTypes() async throws {
        try await makeService().application().test(.router) { client in
            expectError(try await post(client, jsonBody(["audio": 42, "language": "hi"])), .badRequest,
                        "INVALID_PARAMETER_VALUE", containing: "'audio' must be a base64 string, not a number")
            expectError(try await post(client, jsonBody(["audio": base64WAV(), "language": ["hi"]])), .badRequest,
                        "INVALID_PARAMETER_VALUE", containing: "'language' must be a string, not an array")
            expectError(try await post(client, jsonBody(["audio": base64WAV(), "language": "hi", "timestamps": "maybe"])),
                        .badRequest, "INVALID_PARAMETER_VALUE", containing: "'timestamps' must be a boolean")
            expectError(try await post(client, jsonBody(["audio": base64WAV(), "language": "hi", "timestamps": 7])),
                        .badRequest, "INVALID_PARAMETER_VALUE", containing: "'timestamps' must be a boolean")
            expectError(try await post(client, jsonBody(["audio": base64WAV(), "language": "hi", "decoding": true])),
                        .badRequest, "INVALID_PARAMETER_VALUE", containing: "'decoding' must be a string")
            expectError(try await post(client, jsonBody(["audio": base64WAV(), "language": "hi", "decoding": "beam"])),
                        .badRequest, "INVALID_PARAMETER_VALUE", containing: "'ctc' or 'rnnt'")
        }
    }

    @Test func badAudio() async throws {
        try await makeService().application().test(.router) { client in
            expectError(try await post(client, jsonBody(["audio": "this is *not* base64!", "language": "hi"])), .badRequest,
                        "INVALID_PARAMETER_VALUE", containing: "not valid base64")
            expectError(try await post(client, jsonBody(["audio": "", "language": "hi"])), .badRequest,
                        "INVALID_PARAMETER_VALUE", containing: "empty")
            let text = Data("hello, this is not audio at all".utf8).base64EncodedString()
            expectError(try await post(client, jsonBody(["audio": text, "language": "hi"])), .unprocessableContent,
                        "INVALID_PARAMETER_VALUE", containing: "is text")
            // A truncated file is transcribed as far as it goes, with a warning (AudioFaultTests).
            let truncated = makeWAV(seconds: 1).prefix(3000).base64EncodedString()
            let cut = try await post(client, jsonBody(["audio": truncated, "language": "hi"]))
            #expect(cut.status == .ok, "\(cut.text)")
            #expect((cut.json["warnings"] as? [[String: Any]])?.first?["code"] as? String == "truncated")
            let headerOnly = makeWAV(seconds: 1).prefix(20).base64EncodedString()
            expectError(try await post(client, jsonBody(["audio": headerOnly, "language": "hi"])), .unprocessableContent,
                        "INVALID_PARAMETER_VALUE")
            let silence = makeWAV(seconds: 0).base64EncodedString()
            expectError(try await post(client, jsonBody(["audio": silence, "language": "hi"])), .unprocessableContent,
                        "INVALID_PARAMETER_VALUE", containing: "no samples")
            // A tenth of a second is short but valid.
            let short = try await post(client, jsonBody(["audio": base64WAV(0.1), "language": "hi"]))
            #expect(short.status == .ok)
            #expect(short.json["duration"] as? Double == 0.1)
        }
    }

    @Test func unknownLanguageAndDecoder() async throws {
        let engine = FakeEngine(languages: ["hi"], decoders: ["ctc"])
        try await makeService(engine: engine).application().test(.router) { client in
            expectError(try await post(client, jsonBody(["audio": base64WAV(), "language": "fr"])), .badRequest,
                        "INVALID_PARAMETER_VALUE", containing: "unknown language 'fr'")
            expectError(try await post(client, jsonBody(["audio": base64WAV(), "language": "hi", "decoding": "rnnt"])),
                        .badRequest, "INVALID_PARAMETER_VALUE", containing: "no rnnt decoder")
        }
    }

    @Test func unsupportedMediaType() async throws {
        try await makeService().application().test(.router) { client in
            let csv = try await post(client, ByteBuffer(string: "audio,language\nAAAA,hi\n"), headers: [.contentType: "text/csv"])
            expectError(csv, .unsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE", containing: "application/json")
            let form = try await post(client, jsonBody(["audio": base64WAV(), "language": "hi"]), uri: "/v1/audio/transcriptions")
            expectError(form, .unsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE", containing: "multipart/form-data")
            // MLflow 1.x clients add a format parameter to the JSON type.
            let pandas = try await post(client, jsonBody(["audio": base64WAV(), "language": "hi"]),
                                        headers: [.contentType: "application/json; format=pandas-records"])
            #expect(pandas.status == .ok)
        }
    }

    @Test func unknownEndpointsAndMethods() async throws {
        try await makeService().application().test(.router) { client in
            expectError(try await client.execute(uri: "/nowhere", method: .get), .notFound, "ENDPOINT_NOT_FOUND", containing: "/nowhere")
            expectError(try await client.execute(uri: "/asr/extra", method: .post), .notFound, "ENDPOINT_NOT_FOUND")
            let wrongMethod = try await client.execute(uri: "/asr", method: .get)
            expectError(wrongMethod, .methodNotAllowed, "METHOD_NOT_ALLOWED", containing: "use POST")
            #expect(wrongMethod.headers[header("Allow")] == "POST")
            let deleteHealth = try await client.execute(uri: "/health", method: .delete)
            expectError(deleteHealth, .methodNotAllowed, "METHOD_NOT_ALLOWED")
            #expect(deleteHealth.headers[header("Allow")] == "GET, HEAD")
        }
    }

    @Test func bodyLimit() async throws {
        let service = makeService { $0.maxBodyBytes = 64 * 1024 }
        try await service.application().test(.router) { client in
            // ~2 s of 16 kHz audio is 64 kB of WAV, ~85 kB of base64.
            let big = jsonBody(["audio": base64WAV(2), "language": "hi"])
            let declared = try await post(client, big, headers: [.contentType: "application/json", .contentLength: "\(big.readableBytes)"])
            expectError(declared, .contentTooLarge, "RESOURCE_EXHAUSTED", containing: "--max-body-mb")
            let small = try await post(client, jsonBody(["audio": base64WAV(0.5), "language": "hi"]))
            #expect(small.status == .ok)
        }
        // Without a Content-Length (chunked upload) the limit is enforced while the body streams in.
        try await service.application().test(.live) { client in
            let port = try #require(client.port)
            let payload = Array(String(decoding: jsonBody(["audio": base64WAV(2), "language": "hi"]).readableBytesView, as: UTF8.self).utf8)
            var bytes = Array("POST /asr HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)
            var offset = 0
            while offset < payload.count {
                let chunk = payload[offset..<min(offset + 8192, payload.count)]
                bytes += Array("\(String(chunk.count, radix: 16))\r\n".utf8) + chunk + Array("\r\n".utf8)
                offset += chunk.count
            }
            bytes += Array("0\r\n\r\n".utf8)
            let reply = await rawExchange(port: port, bytes, readTimeout: 5)
            #expect(reply.hasPrefix("HTTP/1.1 413"), "\(reply.prefix(300))")
            #expect(reply.contains("RESOURCE_EXHAUSTED"))
            #expect(try await client.execute(uri: "/health", method: .get).status == .ok)
        }
    }

    @Test func defaultBodyLimitHoldsTenMinutesOfStudioWAV() {
        // 600 s × 48 kHz × 2 channels × 2 bytes, base64, plus the JSON around it.
        let wavBytes = 600 * 48_000 * 2 * 2 + 44
        let base64Bytes = (wavBytes + 2) / 3 * 4
        #expect(ServerConfiguration().maxBodyBytes > base64Bytes + 1024)
        #expect(ServerConfiguration().maxBodyBytes > 2 * 1024 * 1024)
    }
}
