// Long audio, streaming and live transcription over the service, with the real Recognizer and
// Weights/default.safetensors (+ Weights/silero_vad.safetensors): the `segmentation` field,
// `stream=true` server-sent events on /v1/audio/transcriptions, and the realtime WebSocket
// (/v1/realtime?intent=transcription) driven by a Swift WebSocket client (WSClient).

import ASR
@testable import ASRServer
import Audio
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import NIOWebSocket
import Testing
import VaniTestSupport
import WSClient

@Suite(.serialized) struct LiveTranscriptionTests {
    static let recognizer: Recognizer? = try? Recognizer(
        modelURL: Fixtures.root.appendingPathComponent("Weights/default.safetensors"))
    static let host = ModelHost(name: "default", logger: testLogger) { () throws(RecognizerError) -> any TranscriptionEngine in
        guard let recognizer else { throw .modelNotFound(path: "Weights/default.safetensors") }
        return recognizer
    }

    /// 16 kHz samples of a bundled sample.
    static func sample(_ language: String) throws -> [Float] {
        try AudioDecoderForTests.samples(Fixtures.root.appendingPathComponent("Samples/\(language)-sample.wav"))
    }

    /// The three samples with `gap` seconds of silence around each, repeated `times` times:
    /// about 40 s of speech with pauses, so `vad` cuts it into several segments.
    static func longAudio(gap: Double = 1.2, times: Int = 3) throws -> [Float] {
        let silence = [Float](repeating: 0, count: Int(gap * 16000))
        var out = silence
        for _ in 0..<times { for language in ["hi", "hi", "hi"] { out += try sample(language) + silence } }
        return out
    }

    static func wav(_ samples: [Float]) -> Data {
        var data = Data()
        func u32(_ v: Int) { withUnsafeBytes(of: UInt32(v).littleEndian) { data.append(contentsOf: $0) } }
        func u16(_ v: Int) { withUnsafeBytes(of: UInt16(v).littleEndian) { data.append(contentsOf: $0) } }
        data.append(contentsOf: Array("RIFF".utf8)); u32(36 + 2 * samples.count); data.append(contentsOf: Array("WAVE".utf8))
        data.append(contentsOf: Array("fmt ".utf8)); u32(16); u16(1); u16(1); u32(16000); u32(32000); u16(2); u16(16)
        data.append(contentsOf: Array("data".utf8)); u32(2 * samples.count)
        for s in samples { u16(Int(UInt16(bitPattern: Int16(max(-32768, min(32767, (s * 32768).rounded())))))) }
        return data
    }

    func service(_ configure: (inout ServerConfiguration) -> Void = { _ in }) -> ASRService {
        makeService(host: Self.host) { $0.realtime = true; configure(&$0) }
    }

    @Test("segmentation field: off, windows and vad answer as the Recognizer does; a bad name is a 400")
    func segmentationField() async throws {
        let recognizer = try #require(Self.recognizer)
        let samples = try Self.longAudio()
        let wav = Self.wav(samples)
        let hi = try recognizer.language("hi")
        try await service().application().test(.router) { client in
            for mode in Segmentation.allCases {
                let want = try recognizer.transcribe(audio: wav, language: hi, segmentation: mode)
                let response = try await client.execute(uri: "/asr", method: .post, headers: .json,
                    body: jsonBody(["audio": wav.base64EncodedString(), "language": "hi", "segmentation": mode.rawValue]))
                #expect(response.status == .ok, "\(mode): \(response.text)")
                #expect(response.json["text"] as? String == want.text, "\(mode)")
            }
            let bad = try await client.execute(uri: "/asr", method: .post, headers: .json,
                body: jsonBody(["audio": wav.base64EncodedString(), "language": "hi", "segmentation": "chunks"]))
            expectError(bad, .badRequest, "INVALID_PARAMETER_VALUE", containing: "segmentation")
            let invocation = try await client.execute(uri: "/invocations", method: .post, headers: .json,
                body: jsonBody(["dataframe_records": [["audio": wav.base64EncodedString(), "language": "hi"]],
                                "params": ["segmentation": "windows"]]))
            let want = try recognizer.transcribe(audio: wav, language: hi, segmentation: .windows)
            let predictions = invocation.json["predictions"] as? [[String: Any]]
            #expect(predictions?.first?["text"] as? String == want.text, "\(invocation.text)")
        }
    }

    @Test("stream=true answers text/event-stream: one delta per segment, then done with the whole text")
    func serverSentEvents() async throws {
        let recognizer = try #require(Self.recognizer)
        let wav = Self.wav(try Self.longAudio())
        let want = try recognizer.transcribe(audio: wav, language: recognizer.language("hi"), segmentation: .vad)
        try await service().application().test(.live) { client in
            var form = MultipartBody()
            form.file("file", filename: "long.wav", wav)
            form.field("model", "indicconformer")
            form.field("language", "hi")
            form.field("stream", "true")
            let response = try await client.execute(uri: "/v1/audio/transcriptions", method: .post,
                                                    headers: form.headers, body: form.body)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "text/event-stream")
            let events = response.text.components(separatedBy: "\n\n").filter { !$0.isEmpty }.compactMap { block -> [String: Any]? in
                guard block.hasPrefix("data: ") else { return nil }
                return try? JSONSerialization.jsonObject(with: Data(block.dropFirst(6).utf8)) as? [String: Any]
            }
            let deltas = events.filter { $0["type"] as? String == "transcript.text.delta" }.compactMap { $0["delta"] as? String }
            #expect(deltas.count >= 3, "\(response.text)")
            #expect(deltas.joined() == want.text)
            #expect(events.last?["type"] as? String == "transcript.text.done")
            #expect(events.last?["text"] as? String == want.text)
        }
    }

    @Test("the deadline grows with the audio's duration, read from the WAV header")
    func deadlineScales() throws {
        let wav = Self.wav([Float](repeating: 0, count: 16000 * 600))
        #expect(abs(ASRService.estimatedAudioSeconds(ByteBuffer(bytes: wav)) - 600) < 0.01)
        let json = "{\"audio\": \"\(wav.prefix(4096).base64EncodedString())\"}"
        #expect(ASRService.estimatedAudioSeconds(ByteBuffer(string: json)) > 0)
        let service = self.service { $0.timeoutSeconds = 120 }
        #expect(service.deadline(forBody: ByteBuffer(bytes: wav)) == 120 + 0.25 * 540)
        #expect(service.deadline(forBody: ByteBuffer(bytes: Self.wav([Float](repeating: 0, count: 16000 * 30)))) == 120)
    }

    /// Runs a realtime session against a live server: sends `setup` events, then `samples` as
    /// PCM16 at `rate` in 100 ms appends, then `finish` events, and collects the server's
    /// events until `until` says stop.
    func realtime(service: ASRService, path: String = "/v1/realtime?intent=transcription",
                  headers: HTTPFields = [:], setup: [[String: Any]], samples: [Float], rate: Int,
                  until: @escaping @Sendable ([[String: Any]]) -> Bool) async throws -> (events: [[String: Any]], close: WebSocketCloseFrame?) {
        let collected = EventLog()
        var pcm = Data()
        for s in samples { withUnsafeBytes(of: Int16(max(-32768, min(32767, (s * 32768).rounded()))).littleEndian) { pcm.append(contentsOf: $0) } }
        let setupTexts = setup.map { String(decoding: try! JSONSerialization.data(withJSONObject: $0), as: UTF8.self) }
        let audio = pcm
        let closeBox = CloseBox()
        try await service.application().test(.live) { client in
            let port = try #require(client.port)
            closeBox.frame = try await WebSocketClient.connect(
                url: "ws://127.0.0.1:\(port)\(path)", configuration: .init(maxFrameSize: 1 << 22, additionalHeaders: headers),
                logger: testLogger) { inbound, outbound, _ in
                    // Send and read at once: the server writes with back-pressure, so a client
                    // that sent everything before reading would stall both sides.
                    let sender = Task {
                        for text in setupTexts { try await outbound.write(.text(text)) }
                        let step = rate / 10 * 2
                        var offset = 0
                        while offset < audio.count {
                            let chunk = audio[offset..<min(audio.count, offset + step)]
                            offset += step
                            let event = ["type": "input_audio_buffer.append", "audio": Data(chunk).base64EncodedString()]
                            try await outbound.write(.text(String(decoding: try JSONSerialization.data(withJSONObject: event), as: UTF8.self)))
                        }
                    }
                    defer { sender.cancel() }
                    for try await message in inbound.messages(maxSize: 1 << 22) {
                        guard case .text(let text) = message,
                              let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else { continue }
                        collected.append(object)
                        if until(collected.all) { break }
                    }
                }
            // Let the server see this client's close before the application shuts down: a close
            // from both sides at once (the client's, and the server's 1012 on shutdown) could
            // leave the test's server waiting.
            try await Task.sleep(for: .milliseconds(300))
        }
        return (collected.all, closeBox.frame)
    }

    @Test("realtime: speech in PCM16 at 24 kHz (session.update) and 16 kHz (transcription_session.update) gives deltas and the offline transcript",
          .serialized, arguments: [24_000, 16_000])
    func realtimeTranscription(rate: Int) async throws {
        let recognizer = try #require(Self.recognizer)
        let speech = try Self.sample("hi")
        let silence = [Float](repeating: 0, count: 16000)
        let samples16 = silence + speech + silence + silence
        let samples = rate == 16_000 ? samples16 : try Resampler.resample(samples16, from: 16_000, to: rate)
        let update: [String: Any] = rate == 24_000
            ? ["type": "session.update", "session": ["type": "transcription", "audio": ["input": [
                "format": ["type": "audio/pcm", "rate": 24000], "transcription": ["model": "indicconformer", "language": "hi"],
                "turn_detection": ["type": "server_vad", "silence_duration_ms": 500]]]]]
            : ["type": "transcription_session.update", "session": ["input_audio_format": "pcm16",
                "input_audio_params": ["sample_rate_hz": 16000], "input_audio_transcription": ["language": "hi"],
                "turn_detection": ["type": "server_vad"]]]
        let (events, _) = try await realtime(service: service(), setup: [update], samples: samples, rate: rate) { events in
            events.contains { $0["type"] as? String == "conversation.item.input_audio_transcription.completed" }
        }
        let types = events.compactMap { $0["type"] as? String }
        #expect(types.first == "session.created")
        #expect(types.contains(rate == 24_000 ? "session.updated" : "transcription_session.updated"))
        #expect(types.contains("input_audio_buffer.speech_started"))
        #expect(types.contains("input_audio_buffer.speech_stopped"))
        #expect(types.contains("input_audio_buffer.committed"))
        let completed = try #require(events.first { $0["type"] as? String == "conversation.item.input_audio_transcription.completed" })
        let offline = try recognizer.transcribe(samples: speech, language: "hi").text
        #expect(completed["transcript"] as? String == offline)
        let deltas = events.filter { $0["type"] as? String == "conversation.item.input_audio_transcription.delta" }
            .compactMap { $0["delta"] as? String }.joined()
        #expect(offline.hasPrefix(deltas), "deltas '\(deltas)' vs final '\(offline)'")
    }

    @Test("realtime: out-of-range turn detection settings are an error event, and the server keeps serving")
    func realtimeBadSettings() async throws {
        let service = service()
        for turn: [String: Any] in [["type": "server_vad", "silence_duration_ms": -1000],
                                    ["type": "server_vad", "prefix_padding_ms": 1e300],
                                    ["type": "server_vad", "threshold": 7]] {
            let update: [String: Any] = ["type": "session.update", "session": [
                "type": "transcription", "audio": ["input": ["format": ["type": "audio/pcm", "rate": 16000],
                                                             "turn_detection": turn]]]]
            let (events, _) = try await realtime(service: service, setup: [update], samples: [Float](repeating: 0.1, count: 16000),
                                                 rate: 16000) { events in
                events.contains { $0["type"] as? String == "error" }
            }
            let error = events.first { $0["type"] as? String == "error" }?["error"] as? [String: Any]
            #expect((error?["message"] as? String)?.contains("turn_detection") == true, "\(turn): \(events)")
        }
        // Still serving.
        try await service.application().test(.live) { client in
            let ping = try await client.execute(uri: "/ping", method: .get)
            #expect(ping.status == .ok)
        }
    }

    @Test("the deadline estimate never trusts a WAV header beyond the body's size")
    func forgedHeaderDeadline() {
        var wav = makeWAV(seconds: 1)
        // data chunk size 0xFFFFFFF0 and byte rate 1: 4e9 seconds by the header.
        if let range = wav.range(of: Data("data".utf8)) { wav.replaceSubrange(range.upperBound..<range.upperBound + 4, with: [0xF0, 0xFF, 0xFF, 0xFF]) }
        wav.replaceSubrange(28..<32, with: [1, 0, 0, 0])
        let seconds = ASRService.estimatedAudioSeconds(ByteBuffer(bytes: wav))
        #expect(seconds <= Double(wav.count) / 8000 + 1e-9, "estimated \(seconds) s from \(wav.count) bytes")
    }

    @Test("realtime: a wrong API key is closed with 1008; the key in the browser subprotocol is accepted")
    func realtimeKeys() async throws {
        // Raw handshakes over a plain socket with read timeouts (a WebSocket client that waits
        // for a close handshake could hang the test if the server's shutdown races it).
        let keyed = service { $0.apiKey = "sesame" }
        try await keyed.application().test(.live) { client in
            let port = try #require(client.port)
            func handshake(_ extra: String) async -> String {
                await onThread {
                    guard let connection = RawConnection(port: port) else { return "connect failed" }
                    connection.send("GET /v1/realtime?intent=transcription HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                    + "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                                    + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                                    + extra + "\r\n")
                    return connection.receive(timeout: 5) { $0.contains("invalid API key") || $0.contains("session.created") }.text
                }
            }
            // A wrong key: upgraded, then closed with 1008 (policy violation: 0x03F0) and its reason.
            let refused = await handshake("Authorization: Bearer wrong\r\n")
            #expect(refused.hasPrefix("HTTP/1.1 101"), "\(refused)")
            #expect(refused.contains("\u{03}") && refused.contains("invalid API key"), "\(refused)")
            #expect(!refused.contains("session.created"))
            // The key in the browser's subprotocol form: accepted, `realtime` chosen, the session starts.
            let accepted = await handshake("Sec-WebSocket-Protocol: realtime, openai-insecure-api-key.sesame\r\n")
            #expect(accepted.hasPrefix("HTTP/1.1 101"), "\(accepted)")
            #expect(accepted.lowercased().contains("sec-websocket-protocol: realtime\r\n"), "\(accepted)")
            #expect(accepted.contains("session.created"), "\(accepted)")
        }
    }
}

/// The close frame a WebSocket client got.
final class CloseBox: @unchecked Sendable { var frame: WebSocketCloseFrame? }

/// Events collected by a WebSocket handler.
final class EventLog: @unchecked Sendable {
    private let lock = NSLock()
    private var events: [[String: Any]] = []
    func append(_ event: [String: Any]) { lock.lock(); events.append(event); lock.unlock() }
    var all: [[String: Any]] { lock.lock(); defer { lock.unlock() }; return events }
}

enum AudioDecoderForTests {
    static func samples(_ url: URL) throws -> [Float] { try AudioDecoder.load16kMono(Data(contentsOf: url)) }
}
