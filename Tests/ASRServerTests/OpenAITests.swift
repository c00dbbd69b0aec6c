// OpenAI-compatible POST /v1/audio/transcriptions and GET /v1/models.

import ASR
@testable import ASRServer
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

@Suite struct OpenAITests {
    func transcribe(_ client: some TestClientProtocol, format: String?, extra: [(String, String)] = [],
                    file: Data? = makeWAV(seconds: 1.25), language: String? = "hi") async throws -> TestResponse {
        var form = MultipartBody()
        if let file { form.file("file", filename: "clip.wav", file) }
        form.field("model", "whisper-1")
        if let language { form.field("language", language) }
        if let format { form.field("response_format", format) }
        for (name, value) in extra { form.field(name, value) }
        return try await client.execute(uri: "/v1/audio/transcriptions", method: .post, headers: form.headers, body: form.body)
    }

    @Test func jsonAndText() async throws {
        try await makeService().application().test(.router) { client in
            let json = try await transcribe(client, format: nil)
            #expect(json.status == .ok)
            #expect(json.json as NSDictionary == ["text": FakeEngine.text] as NSDictionary)
            let explicit = try await transcribe(client, format: "json")
            #expect(explicit.json["text"] as? String == FakeEngine.text)
            let text = try await transcribe(client, format: "text")
            #expect(text.status == .ok)
            #expect(text.text == FakeEngine.text + "\n")
            #expect(text.headers[.contentType]?.hasPrefix("text/plain") == true)
        }
    }

    @Test func subtitles() async throws {
        try await makeService().application().test(.router) { client in
            let srt = try await transcribe(client, format: "srt")
            #expect(srt.status == .ok)
            #expect(srt.text == "1\n00:00:00,080 --> 00:00:00,880\nनमस्ते दुनिया\n\n")
            let vtt = try await transcribe(client, format: "vtt")
            #expect(vtt.text == "WEBVTT\n\n00:00:00.080 --> 00:00:00.880\nनमस्ते दुनिया\n\n")
            #expect(vtt.headers[.contentType]?.hasPrefix("text/vtt") == true)
        }
    }

    @Test func verboseJSONWithWordsAndSegments() async throws {
        try await makeService().application().test(.router) { client in
            let response = try await transcribe(client, format: "verbose_json",
                                                extra: [("timestamp_granularities[]", "word"), ("timestamp_granularities[]", "segment"),
                                                        ("decoding", "rnnt")])
            #expect(response.status == .ok)
            let json = response.json
            #expect(json["task"] as? String == "transcribe")
            #expect(json["language"] as? String == "hindi", "OpenAI writes the English name")
            #expect(json["language_code"] as? String == "hi")
            #expect(json["duration"] as? Double == 1.25)
            #expect(json["text"] as? String == FakeEngine.text)
            let words = try #require(json["words"] as? [[String: Any]])
            #expect(words.map { $0["word"] as? String } == ["नमस्ते", "दुनिया"])
            #expect(words[1]["start"] as? Double == 0.56)
            let segments = try #require(json["segments"] as? [[String: Any]])
            #expect(segments.count == 1)
            #expect(segments[0]["text"] as? String == FakeEngine.text)
            #expect(segments[0]["tokens"] as? [Int] == [10, 11, 12])
            #expect(abs((segments[0]["avg_logprob"] as? Double ?? 0) + 0.2) < 1e-6)
            // Only what is measured: no constant no_speech_prob or compression_ratio.
            #expect(segments[0]["no_speech_prob"] == nil && segments[0]["compression_ratio"] == nil, "\(segments[0])")

            // Words only when asked for; segments by default.
            let plain = try await transcribe(client, format: "verbose_json").json
            #expect(plain["words"] == nil && plain["segments"] != nil)
        }
    }

    @Test func formErrors() async throws {
        try await makeService().application().test(.router) { client in
            expectError(try await transcribe(client, format: "json", file: nil), .badRequest, "INVALID_PARAMETER_VALUE",
                        containing: "'file'")
            expectError(try await transcribe(client, format: "json", file: Data()), .badRequest, "INVALID_PARAMETER_VALUE",
                        containing: "empty")
            expectError(try await transcribe(client, format: "json", language: nil), .badRequest, "INVALID_PARAMETER_VALUE",
                        containing: "'language'")
            expectError(try await transcribe(client, format: "docx"), .badRequest, "INVALID_PARAMETER_VALUE",
                        containing: "response_format")
            expectError(try await transcribe(client, format: "json", extra: [("timestamp_granularities[]", "char")]),
                        .badRequest, "INVALID_PARAMETER_VALUE", containing: "timestamp_granularities")
            expectError(try await transcribe(client, format: "json", language: "xx"), .badRequest, "INVALID_PARAMETER_VALUE",
                        containing: "unknown language")
            expectError(try await transcribe(client, format: "json", file: Data("RIFF but not really".utf8)),
                        .unprocessableContent, "INVALID_PARAMETER_VALUE")
            let garbage = try await client.execute(uri: "/v1/audio/transcriptions", method: .post,
                                                   headers: [.contentType: "multipart/form-data; boundary=xyz"],
                                                   body: ByteBuffer(string: "--xyz\r\nthis is not a part"))
            expectError(garbage, .badRequest, "BAD_REQUEST", containing: "multipart body is malformed")
        }
    }

    @Test func models() async throws {
        try await makeService().application().test(.router) { client in
            let response = try await client.execute(uri: "/v1/models", method: .get)
            #expect(response.status == .ok)
            #expect(response.json["object"] as? String == "list")
            let data = try #require(response.json["data"] as? [[String: Any]])
            #expect(data.count == 1)
            #expect(data[0]["id"] as? String == "fake-indicconformer")
            #expect(data[0]["object"] as? String == "model")
        }
    }
}
