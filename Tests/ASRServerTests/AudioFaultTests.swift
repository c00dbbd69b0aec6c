// Issue 18 at the HTTP doors (kinds 13, 14, 15, 17): times clamped to the audio, upload
// mistakes named for what they are, truncation warnings in every JSON response and batch item,
// and an honest verbose_json. The fake engine mirrors the real decoder; EndToEndTests cover the
// real one.

import ASR
@testable import ASRServer
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
import VaniTestSupport

@Suite struct AudioFaultTests {
    func asr(_ client: some TestClientProtocol, _ object: [String: Any], uri: String = "/asr") async throws -> TestResponse {
        try await client.execute(uri: uri, method: .post, headers: .json, body: jsonBody(object))
    }

    func openAI(_ client: some TestClientProtocol, _ build: (inout MultipartBody) -> Void,
                format: String = "json") async throws -> TestResponse {
        var form = MultipartBody()
        build(&form)
        form.field("language", "hi")
        form.field("response_format", format)
        return try await client.execute(uri: "/v1/audio/transcriptions", method: .post, headers: form.headers, body: form.body)
    }

    // MARK: - Kind 14: upload mistakes

    @Test func uploadMistakesSayWhatWasWrong() async throws {
        try await makeService().application().test(.router) { client in
            // `curl -F file=clip.wav` (no @): the name as a text field.
            expectError(try await openAI(client) { $0.field("file", "clip.wav") }, .badRequest, "INVALID_PARAMETER_VALUE",
                        containing: "the 'file' field is text")
            expectError(try await openAI(client) { $0.field("model", "whisper-1") }, .badRequest, "INVALID_PARAMETER_VALUE",
                        containing: "no 'file' part")
            expectError(try await openAI(client) { $0.file("file", filename: "clip.wav", Data()) }, .badRequest,
                        "INVALID_PARAMETER_VALUE", containing: "empty (0 bytes)")
            // A valid WAV with no samples.
            expectError(try await openAI(client) { $0.file("file", filename: "clip.wav", makeWAV(seconds: 0)) },
                        .unprocessableContent, "INVALID_PARAMETER_VALUE", containing: "no samples")
            expectError(try await asr(client, ["audio": makeWAV(seconds: 0).base64EncodedString(), "language": "hi"]),
                        .unprocessableContent, "INVALID_PARAMETER_VALUE", containing: "no samples")
            // /asr: base64 of a file name instead of the file.
            expectError(try await asr(client, ["audio": Data("clip.wav".utf8).base64EncodedString(), "language": "hi"]),
                        .unprocessableContent, "INVALID_PARAMETER_VALUE", containing: "is text")
            expectError(try await asr(client, ["audio": "", "language": "hi"]), .badRequest, "INVALID_PARAMETER_VALUE",
                        containing: "empty")
        }
    }

    // MARK: - Kind 15: warnings everywhere

    /// A WAV whose header promises 1 s and which holds 0.5 s.
    static let truncatedWAV = makeWAV(seconds: 1).prefix(44 + 16000).base64EncodedString()

    static func warnings(_ object: Any?) -> [[String: String]]? {
        (object as? [[String: Any]])?.map { $0.mapValues { "\($0)" } }
    }

    @Test func truncationWarningsInEveryResponse() async throws {
        try await makeService().application().test(.router) { client in
            let one = try await asr(client, ["audio": Self.truncatedWAV, "language": "hi"])
            #expect(one.status == .ok, "\(one.text)")
            let w = try #require(Self.warnings(one.json["warnings"]), "\(one.text)")
            #expect(w.map { $0["code"] } == ["truncated"])
            #expect(Set(w[0].keys) == ["code", "message"])
            #expect(w[0]["message"]?.contains("truncated") == true)
            #expect(one.json["duration"] as? Double == 0.5)
            // A complete file has no `warnings` key.
            let whole = try await asr(client, ["audio": base64WAV(1), "language": "hi"])
            #expect(whole.json["warnings"] == nil, "\(whole.text)")

            // Batch: per item, in place.
            let batch = try await asr(client, ["language": "hi", "items": [["audio": base64WAV(1)], ["audio": Self.truncatedWAV]]])
            let results = try #require(batch.json["results"] as? [[String: Any]])
            #expect(results[0]["warnings"] == nil)
            #expect(Self.warnings(results[1]["warnings"])?.map { $0["code"] } == ["truncated"])

            // /invocations rows.
            let rows = try await asr(client, ["dataframe_records": [["audio": Self.truncatedWAV, "language": "hi"],
                                                                    ["audio": base64WAV(1), "language": "hi"]]],
                                     uri: "/invocations")
            let predictions = try #require(rows.json["predictions"] as? [[String: Any]], "\(rows.text)")
            #expect(Self.warnings(predictions[0]["warnings"])?.map { $0["code"] } == ["truncated"])
            #expect(predictions[1]["warnings"] == nil)

            // OpenAI json and verbose_json.
            let wav = Data(base64Encoded: Self.truncatedWAV)!
            for format in ["json", "verbose_json"] {
                let response = try await openAI(client, { $0.file("file", filename: "cut.wav", wav) }, format: format)
                #expect(Self.warnings(response.json["warnings"])?.map { $0["code"] } == ["truncated"], "\(format): \(response.text)")
            }
        }
    }

    // MARK: - Kind 13: times within the audio

    /// The fake's tokens run to 0.88 s; a 0.5 s file must not show a time past 0.5 anywhere.
    @Test func timesEndAtTheEndOfTheAudio() async throws {
        let half = makeWAV(seconds: 0.5)
        try await makeService().application().test(.router) { client in
            let json = try await asr(client, ["audio": half.base64EncodedString(), "language": "hi", "timestamps": true]).json
            let tokens = try #require(json["tokens"] as? [[String: Any]])
            let words = try #require(json["words"] as? [[String: Any]])
            let ends = (tokens + words).compactMap { $0["end"] as? Double }
            let starts = (tokens + words).compactMap { $0["start"] as? Double }
            #expect(ends.max() == 0.5, "\(json)")
            #expect((ends + starts).allSatisfy { $0 <= 0.5 })

            let verbose = try await openAI(client, { form in
                form.file("file", filename: "half.wav", half)
                form.field("timestamp_granularities[]", "word")
                form.field("timestamp_granularities[]", "segment")
            }, format: "verbose_json").json
            let segments = try #require(verbose["segments"] as? [[String: Any]])
            #expect(segments.last?["end"] as? Double == 0.5, "\(segments)")
            let verboseWords = try #require(verbose["words"] as? [[String: Any]])
            #expect(verboseWords.compactMap { $0["end"] as? Double }.allSatisfy { $0 <= 0.5 })

            let srt = try await openAI(client, { $0.file("file", filename: "half.wav", half) }, format: "srt").text
            #expect(srt.contains("--> 00:00:00,500"), "\(srt)")
            let vtt = try await openAI(client, { $0.file("file", filename: "half.wav", half) }, format: "vtt").text
            #expect(vtt.contains("--> 00:00:00.500"), "\(vtt)")
        }
    }

    // MARK: - Kind 17: honest verbose_json

    @Test func verboseJSONHasOnlyMeasuredFields() async throws {
        try await makeService().application().test(.router) { client in
            let json = try await openAI(client, { $0.file("file", filename: "clip.wav", makeWAV(seconds: 1.25)) },
                                        format: "verbose_json").json
            #expect(json["language"] as? String == "hindi")
            #expect(json["language_code"] as? String == "hi")
            let segment = try #require((json["segments"] as? [[String: Any]])?.first)
            #expect(Set(segment.keys) == ["id", "seek", "start", "end", "text", "tokens", "temperature", "avg_logprob"],
                    "\(segment.keys.sorted())")
            // The mean of the segment's token log-probabilities (−0.1, −0.2, −0.3).
            #expect(abs((segment["avg_logprob"] as? Double ?? 0) + 0.2) < 1e-6)
        }
        #expect(Language.englishName(of: "hi") == "hindi")
        #expect(Language.englishName(of: "or") == "odia")
        #expect(Language.englishNames.count == 22)
    }
}

// MARK: - Transcript and subtitles (kind 13)

@Suite struct ClampTests {
    /// A token whose last frame reaches past the last sample ends exactly at the end.
    @Test func transcriptClampsAtTheExactEnd() {
        let t = Transcript(text: "a b", language: "hi", decoder: .ctc, duration: 1.234, confidence: -0.1, tokens: [
            TokenTiming(text: " a", id: 1, start: 0.0, end: 0.08, logProb: -0.1),
            TokenTiming(text: " b", id: 2, start: 1.2, end: 1.28, logProb: -0.1),
            TokenTiming(text: "c", id: 3, start: 1.28, end: 1.36, logProb: -0.1),
        ])
        #expect(t.tokens.map(\.end) == [0.08, 1.234, 1.234])
        #expect(t.tokens.map(\.start) == [0.0, 1.2, 1.234])
        let cues = SubtitleFormatter().cues(for: t)
        #expect(cues.last?.end == 1.234)
        #expect(SubtitleFormatter().srt(t).contains("--> 00:00:01,234"))
        #expect(t.jsonLine().contains("\"end\":1.234"))
        #expect(!t.jsonLine().contains("1.28") && !t.jsonLine().contains("1.36"))
    }

    /// `warnings` round-trip through Codable and may be absent from older JSON.
    @Test func warningsAreCodable() throws {
        let t = Transcript(text: "x", language: "hi", decoder: .ctc, duration: 1, confidence: 0, tokens: [],
                           warnings: [AudioWarning(code: "truncated", message: "cut")])
        let data = try JSONEncoder().encode(t)
        #expect(try JSONDecoder().decode(Transcript.self, from: data) == t)
        #expect(t.jsonLine().contains("\"warnings\":[{\"code\":\"truncated\",\"message\":\"cut\"}]"), "\(t.jsonLine())")
        let old = Data(#"{"text":"x","language":"hi","decoder":"ctc","duration":1,"confidence":0,"tokens":[]}"#.utf8)
        #expect(try JSONDecoder().decode(Transcript.self, from: old).warnings.isEmpty)
        #expect(!Transcript(text: "x", language: "hi", decoder: .ctc, duration: 1, confidence: 0, tokens: []).jsonLine()
            .contains("warnings"))
    }
}
