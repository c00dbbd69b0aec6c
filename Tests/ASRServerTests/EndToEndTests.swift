// The service around the real Recognizer and Weights/default.safetensors: what comes over HTTP
// is exactly what the Recognizer gives when called directly (and, for the tiny-release fixture
// model, the reference transcripts in Tests/Fixtures/reference); bad audio meets the real
// decoder without harm.

import ASR
@testable import ASRServer
import Audio
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
import VaniTestSupport

@Suite(.serialized) struct EndToEndTests {
    /// `Weights/default.safetensors`, or `VANI_MODEL` when set.
    static let modelURL = ProcessInfo.processInfo.environment["VANI_MODEL"].map { URL(fileURLWithPath: $0) }
        ?? Fixtures.root.appendingPathComponent("Weights/default.safetensors")

    /// Loaded once for the suite; BLAS threads left as the process has them.
    static let recognizer: Result<Recognizer, RecognizerError> = {
        do throws(RecognizerError) { return .success(try Recognizer(modelURL: modelURL)) } catch { return .failure(error) }
    }()

    static let host: ModelHost = ModelHost(name: "default", logger: testLogger) { () throws(RecognizerError) -> any TranscriptionEngine in
        try recognizer.get()
    }

    /// The Recognizer's own answer, called directly.
    func direct(_ clip: String, _ language: String, _ decoder: DecoderKind = .ctc) throws -> Transcript {
        let recognizer = try #require(try? Self.recognizer.get(), "the model at \(Self.modelURL.path) did not load")
        return try recognizer.transcribe(audio: try self.clip(clip), language: language, decoder: decoder)
    }

    /// True when the model is the tiny-release fixture, whose reference transcripts are known.
    /// Languages the model under test offers.
    static var languages: [String] { (try? recognizer.get())?.info.languages ?? ["hi"] }

    var isReferenceModel: Bool { (try? Self.recognizer.get())?.info.name.hasPrefix("tiny-release") ?? false }

    struct Expected: Decodable {
        struct Tokens: Decodable { let ids: [Int]; let text: String }
        let ctc: [String: Tokens]
        let rnnt: [String: Tokens]?
    }

    func expected(_ clip: String) throws -> Expected {
        let url = Fixtures.url("reference/tiny-release/\(clip)/expected.json")
        return try JSONDecoder().decode(Expected.self, from: Data(contentsOf: url))
    }

    func clip(_ name: String) throws -> Data { try Data(contentsOf: Fixtures.url("clips/\(name).wav")) }

    func service(_ configure: (inout ServerConfiguration) -> Void = { _ in }) -> ASRService {
        makeService(host: Self.host, configure)
    }

    @Test func asrMatchesTheRecognizer() async throws {
        let audio = try clip("hi_4s").base64EncodedString()
        let ctcWant = try direct("hi_4s", "hi")
        let rnntWant = try? direct("hi_4s", "hi", .rnnt)   // nil for a CTC-only model
        if isReferenceModel {
            let reference = try expected("hi_4s")
            #expect(ctcWant.text == reference.ctc["hi"]?.text)
            if let rnnt = reference.rnnt?["hi"] { #expect(rnntWant?.text == rnnt.text) }
        }
        try await service().application().test(.live) { client in
            let ctc = try await client.execute(uri: "/asr", method: .post, headers: .json,
                                               body: jsonBody(["audio": audio, "language": "hi", "timestamps": true]))
            #expect(ctc.status == .ok, "\(ctc.text)")
            #expect(ctc.json["text"] as? String == ctcWant.text)
            #expect(ctc.json["duration"] as? Double == millis(ctcWant.duration))
            let tokens = ctc.json["tokens"] as? [[String: Any]] ?? []
            #expect(tokens.map { $0["text"] as? String } == ctcWant.tokens.map(\.text))
            #expect(tokens.map { $0["start"] as? Double } == ctcWant.tokens.map { millis($0.start) })
            #expect(ctc.json["words"] is [Any])

            if let rnntWant {
                let rnnt = try await client.execute(uri: "/asr", method: .post, headers: .json,
                                                    body: jsonBody(["audio": audio, "language": "hi", "decoding": "rnnt"]))
                #expect(rnnt.status == .ok, "\(rnnt.text)")
                #expect(rnnt.json["text"] as? String == rnntWant.text)
                #expect(rnnt.json["decoding"] as? String == "rnnt")
            }
            let health = try await client.execute(uri: "/health", method: .get).json
            let model = health["model"] as? [String: Any] ?? [:]
            #expect(health["status"] as? String == "ok")
            #expect((model["languages"] as? [String] ?? []).contains("hi"))
            #expect((model["parameters"] as? Int ?? 0) > 0)
        }
    }

    /// `Samples/samples.json`: each bundled sample's language and the sentence it speaks.
    struct Sample: Decodable { let language: String; let text: String }

    @Test("the bundled samples come back over /asr as the sentences they speak, with both decoders")
    func bundledSamples() async throws {
        // Only the bundled model is expected to know these sentences (VANI_MODEL may be any model).
        guard ProcessInfo.processInfo.environment["VANI_MODEL"] == nil else { return }
        let folder = Fixtures.root.appendingPathComponent("Samples")
        let samples = try JSONDecoder().decode([String: Sample].self,
                                               from: Data(contentsOf: folder.appendingPathComponent("samples.json")))
        #expect(samples["hi-sample.wav"] != nil, "the Hindi sample of `make run` is listed")
        try await service().application().test(.router) { client in
            for (file, sample) in samples.sorted(by: { $0.key < $1.key }) {
                #expect(Self.languages.contains(sample.language), "\(file): the model does not offer \(sample.language)")
                let audio = try Data(contentsOf: folder.appendingPathComponent(file)).base64EncodedString()
                for decoder in ["ctc", "rnnt"] {
                    let response = try await client.execute(
                        uri: "/asr", method: .post, headers: .json,
                        body: jsonBody(["audio": audio, "language": sample.language, "decoding": decoder]))
                    #expect(response.status == .ok, "\(file) \(decoder): \(response.text)")
                    #expect(response.json["text"] as? String == sample.text, "\(file) \(decoder)")
                }
            }
        }
    }

    @Test("--precision reaches the service's recognizer: /health names it and /asr answers as the Recognizer does")
    func precisionThroughTheService() async throws {
        for precision in [Precision.bf16, .int8] {
            let want = try Recognizer(modelURL: Self.modelURL, options: RecognizerOptions(threads: 1, precision: precision))
                .transcribe(audio: try clip("hi_4s"), language: "hi")
            let configuration = ServerConfiguration(host: "127.0.0.1", port: 0, concurrency: 1, threads: 1,
                                                    precision: precision, cores: 2)
            #expect(configuration.precision == precision)
            let service = ASRService(configuration: configuration, modelURL: Self.modelURL, logger: testLogger)
            try await service.application().test(.router) { client in
                let asr = try await client.execute(uri: "/asr", method: .post, headers: .json,
                                                   body: jsonBody(["audio": try clip("hi_4s").base64EncodedString(), "language": "hi"]))
                #expect(asr.status == .ok, "\(asr.text)")
                #expect(asr.json["text"] as? String == want.text, "\(precision.rawValue)")
                let health = try await client.execute(uri: "/health", method: .get)
                #expect((health.json["model"] as? [String: Any])?["precision"] as? String == precision.rawValue)
            }
        }
    }

    @Test func invocationsAndBatchesInOrder() async throws {
        // Three different clips (and a second language when the model offers one), so that
        // the order of the answers is checked; works for models trained on Hindi only too.
        let second = Self.languages.first { $0 != "hi" } ?? "hi"
        let items = [("hi_4s", "hi"), ("hi_1s", second), ("hi_short", "hi")]
        let audio = try items.map { try clip($0.0).base64EncodedString() }
        let want = try items.map { try direct($0.0, $0.1).text }
        try await service().application().test(.router) { client in
            let response = try await client.execute(
                uri: "/invocations", method: .post, headers: .json,
                body: jsonBody(["dataframe_split": ["columns": ["audio", "language"],
                                                    "data": items.indices.map { [audio[$0], items[$0].1] }]]))
            #expect(response.status == .ok, "\(response.text)")
            let predictions = response.json["predictions"] as? [[String: Any]] ?? []
            #expect(predictions.map { $0["text"] as? String } == want)

            let batch = try await client.execute(
                uri: "/asr", method: .post, headers: .json,
                body: jsonBody(["items": items.indices.map { ["audio": audio[$0], "language": items[$0].1] }]))
            #expect(batch.status == .ok, "\(batch.text)")
            #expect((batch.json["results"] as? [[String: Any]] ?? []).map { $0["text"] as? String } == want)
        }
    }

    @Test func openAIFormats() async throws {
        let wav = try clip("hi_4s")
        let transcript = try direct("hi_4s", "hi")
        try await service().application().test(.live) { client in
            for format in ["json", "text", "srt", "vtt", "verbose_json"] {
                var form = MultipartBody()
                form.file("file", filename: "hi_4s.wav", wav)
                form.field("model", "whisper-1")
                form.field("language", "hi")
                form.field("response_format", format)
                form.field("timestamp_granularities[]", "word")
                let response = try await client.execute(uri: "/v1/audio/transcriptions", method: .post,
                                                        headers: form.headers, body: form.body)
                #expect(response.status == .ok, "\(format): \(response.text)")
                switch format {
                case "json": #expect(response.json["text"] as? String == transcript.text)
                case "text": #expect(response.text == transcript.text + "\n")
                case "srt": #expect(response.text == SubtitleFormatter().srt(transcript))
                case "vtt": #expect(response.text == SubtitleFormatter().vtt(transcript))
                default:
                    #expect(response.json["text"] as? String == transcript.text)
                    let words = response.json["words"] as? [[String: Any]] ?? []
                    #expect(words.map { $0["word"] as? String } == transcript.text.split(separator: " ").map(String.init))
                }
            }
        }
    }

    @Test func badAudioMeetsTheRealDecoder() async throws {
        let wav = try clip("hi_4s")
        try await service().application().test(.router) { client in
            func post(_ data: Data, language: String = "hi") async throws -> TestResponse {
                try await client.execute(uri: "/asr", method: .post, headers: .json,
                                         body: jsonBody(["audio": data.base64EncodedString(), "language": language]))
            }
            expectError(try await post(Data("definitely not audio, just some text bytes".utf8)), .unprocessableContent,
                        "INVALID_PARAMETER_VALUE")
            expectError(try await post(Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 2654435761 >> 7) })),
                        .unprocessableContent, "INVALID_PARAMETER_VALUE")
            expectError(try await post(wav.prefix(44)), .unprocessableContent, "INVALID_PARAMETER_VALUE")
            expectError(try await post(makeWAV(seconds: 0)), .unprocessableContent, "INVALID_PARAMETER_VALUE")
            expectError(try await post(wav, language: "xx"), .badRequest, "INVALID_PARAMETER_VALUE", containing: "unknown language")
            // A file cut mid-data decodes what is there or is refused; either way a clean answer.
            let cut = try await post(wav.prefix(wav.count / 2 + 1))
            #expect(cut.status == .ok || cut.status == .unprocessableContent, "\(cut.text)")
            // A tenth of a second is short but valid.
            let short = try await post(makeWAV(seconds: 0.1))
            #expect(short.status == .ok, "\(short.text)")
            #expect(short.json["text"] is String)
            // 48 kHz stereo is mixed down and resampled.
            let stereo = try await post(makeWAV(seconds: 0.5, sampleRate: 48_000, channels: 2))
            #expect(stereo.status == .ok, "\(stereo.text)")
            #expect(abs((stereo.json["duration"] as? Double ?? 0) - 0.5) < 0.01)
        }
    }

    @Test func concurrentRequestsGetIdenticalAnswers() async throws {
        let audio = try clip("hi_1s").base64EncodedString()
        let want = try direct("hi_1s", "hi").text
        try await service { $0.concurrency = 2; $0.queueCapacity = 8 }.application().test(.ahc(.http)) { client in
            let texts = try await withThrowingTaskGroup(of: String?.self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        let response = try await client.execute(uri: "/asr", method: .post, headers: .json,
                                                                body: jsonBody(["audio": audio, "language": "hi"]))
                        return response.json["text"] as? String
                    }
                }
                var texts: [String?] = []
                for try await text in group { texts.append(text) }
                return texts
            }
            #expect(texts.count == 8)
            #expect(texts.allSatisfy { $0 == want })
        }
    }

    // MARK: - Issue 18

    /// The bundled sample as a browser (WebM/Opus) and a phone (M4A/AAC) send it gives the WAV's
    /// text, called directly and over OpenAI's endpoint.
    @Test func browserAndPhoneContainersGiveTheWAVText() async throws {
        guard ProcessInfo.processInfo.environment["VANI_MODEL"] == nil else { return }
        let recognizer = try #require(try? Self.recognizer.get())
        let wav = try Data(contentsOf: Fixtures.root.appendingPathComponent("Samples/hi-sample.wav"))
        let want = try recognizer.transcribe(audio: wav, language: "hi").text
        #expect(!want.isEmpty)
        try await service().application().test(.router) { client in
            for file in ["hi-sample.webm", "hi-sample.m4a"] {
                let data = try Data(contentsOf: Fixtures.url("audio/containers/\(file)"))
                let direct = try recognizer.transcribe(audio: data, language: "hi")
                #expect(direct.text == want, "\(file)")
                #expect(direct.warnings.isEmpty, "\(file): \(direct.warnings)")
                var form = MultipartBody()
                form.file("file", filename: file, data, type: file.hasSuffix("webm") ? "audio/webm" : "audio/mp4")
                form.field("language", "hi")
                let response = try await client.execute(uri: "/v1/audio/transcriptions", method: .post,
                                                        headers: form.headers, body: form.body)
                #expect(response.status == .ok, "\(file): \(response.text)")
                #expect(response.json["text"] as? String == want, "\(file)")
            }
        }
    }

    /// A truncated MP3 over `/asr`: transcribed in part, with a `truncated` warning in the body and
    /// in the log, every audio line of the request carrying its request id (none on stderr).
    @Test func truncatedUploadWarnsAndLogsWithTheRequestID() async throws {
        let capture = LogCapture()
        let service = ASRService(configuration: ServerConfiguration(host: "127.0.0.1", port: 0, concurrency: 1, threads: 1,
                                                                    queueCapacity: 2, timeoutSeconds: 60, cores: 2),
                                 host: Self.host, logger: capture.logger(level: .debug))
        let mp3 = try Data(contentsOf: Fixtures.url("audio/inputs/b2-18b-mp3-truncated.mp3"))
        let wav = try Data(contentsOf: Fixtures.url("audio/inputs/b2-18a-wav-truncated-header-says-longer.wav"))
        try await service.application().test(.router) { client in
            for (id, data) in [("e2e-18b", mp3), ("e2e-18a", wav)] {
                let response = try await client.execute(
                    uri: "/asr", method: .post, headers: [.contentType: "application/json", header("X-Request-Id"): id],
                    body: jsonBody(["audio": data.base64EncodedString(), "language": "hi"]))
                #expect(response.status == .ok, "\(id): \(response.text)")
                let warnings = response.json["warnings"] as? [[String: Any]] ?? []
                #expect(warnings.map { $0["code"] as? String } == ["truncated"], "\(id): \(response.text)")
            }
        }
        let lines = capture.lines
        for line in lines where line.metadata["audio_warning"] != nil || line.metadata["library"] != nil {
            print("[e2e log] \(line)")
        }
        for id in ["e2e-18b", "e2e-18a"] {
            #expect(lines.contains { $0.metadata["audio_warning"] == "truncated" && $0.metadata["request_id"] == id },
                    "the truncation of \(id) is logged with its request id")
        }
        #expect(lines.filter { $0.metadata["library"] != nil }.allSatisfy { $0.metadata["request_id"] != nil })
    }

    /// Token, word and cue times stop at the last sample: cut the sample mid-speech at lengths
    /// that are not whole encoder frames, find one where the last token's frame runs past the end,
    /// and check that its end is exactly the duration everywhere.
    func millisValue(_ seconds: Double) -> String { "\((seconds * 1000).rounded() / 1000)" }

    @Test func timesStopAtTheExactEndOfTheAudio() throws {
        let recognizer = try #require(try? Self.recognizer.get())
        let wav = try Data(contentsOf: Fixtures.root.appendingPathComponent("Samples/hi-sample.wav"))
        let samples = try AudioDecoder.load16kMono(wav)
        let language = try recognizer.language("hi")
        let decoder = try recognizer.decoder(.ctc, for: language)
        var overrun = 0
        // Lengths of k whole 80 ms frames plus 100 samples: the last frame is mostly past the end.
        // One forward pass per length until a token's frame runs past the end, then the pipeline.
        for count in stride(from: 30 * 1280 + 100, to: samples.count, by: 1280 * 3) where overrun == 0 {
            let cut = Array(samples[..<count])
            let duration = Double(count) / 16000
            let raw = recognizer.decode(recognizer.encode(recognizer.features(cut)), decoder: decoder)
            let rawEnd = raw.endFrames.last.map { Double($0 + 1) * recognizer.config.frameDuration } ?? 0
            guard rawEnd > duration else { continue }
            overrun += 1
            let t = try recognizer.transcribe(samples: cut, language: "hi")
            #expect(t.tokens.count == raw.ids.count, "\(count): the same tokens")
            #expect(t.tokens.allSatisfy { $0.start <= duration && $0.end <= duration }, "\(count)")
            #expect(SubtitleFormatter().cues(for: t).allSatisfy { $0.end <= duration }, "\(count)")
            #expect(t.tokens.last?.end == duration, "\(count): the last token ends at the last sample")
            let seconds = Int(duration), millis = Int((duration * 1000).rounded()) % 1000
            let stamp = "00:00:0\(seconds),\(String(format: "%03d", millis))"
            #expect(SubtitleFormatter().srt(t).contains("--> \(stamp)"), "\(count): \(stamp)")
            #expect(t.jsonLine().contains("\"end\":\(millisValue(duration))"), "\(count)")
        }
        #expect(overrun > 0, "no cut made a token run past the end: the test would prove nothing")
    }
}
