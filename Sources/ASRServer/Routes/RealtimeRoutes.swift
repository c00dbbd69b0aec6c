// Live transcription over WebSocket: `/v1/realtime?intent=transcription`, OpenAI's Realtime
// transcription protocol (docs/SERVICE.md, "Realtime"). Both dialects are read:
//   session.update  {session: {type: "transcription", audio: {input: {format: {type: "audio/pcm",
//                    rate: 24000}, transcription: {language}, turn_detection: {...}}}}}
//   transcription_session.update {session: {input_audio_format: "pcm16", input_audio_params:
//                    {sample_rate_hz: 16000}, input_audio_transcription: {language},
//                    turn_detection: {...}}}    (NVIDIA NIM's clients)
// then input_audio_buffer.append / commit / clear. The server answers with speech_started /
// speech_stopped / committed, `conversation.item.input_audio_transcription.delta` (text two
// consecutive re-decodes agree on) and `.completed` (the offline transcription of the
// utterance's samples), from `ASR.LiveTranscriber`.
//
// The API key comes in `Authorization: Bearer`, `X-API-Key` or the browser's subprotocol
// `openai-insecure-api-key.<key>`. Closes: 1008 bad key (OpenAI's client does not reconnect),
// 1013 overloaded and 1012 shutting down (it reconnects). Every inference step runs on the
// worker pool, never on the connection's event loop; appends are handled one at a time, so a
// client that sends faster than the pool decodes is held back by TCP, and the audio a session
// keeps is bounded by one utterance (`LiveSettings.maxUtterance`).

import ASR
import Audio
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOWebSocket
import ServiceLifecycle

extension ASRService {
    /// Largest WebSocket message accepted (base64 audio of about 3 minutes at 24 kHz).
    static let realtimeMaxMessage = 16 << 20

    /// The upgrade decision for a new connection: `/v1/realtime` upgrades (a bad key is told
    /// so with close code 1008 after the upgrade, as OpenAI does); anything else stays HTTP.
    func realtimeUpgrade(_ request: HTTPRequest, logger: Logger) -> ShouldUpgradeResult<WebSocketDataHandler<HTTP1WebSocketUpgradeChannel.Context>> {
        guard let path = request.path, path.split(separator: "?").first == "/v1/realtime" else { return .dontUpgrade }
        let protocols = request.headerFields[values: .secWebSocketProtocol]
            .flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
        var accepted = true
        if let key = configuration.apiKey {
            var candidates = protocols.filter { $0.hasPrefix("openai-insecure-api-key.") }
                .map { String($0.dropFirst("openai-insecure-api-key.".count)) }
            if let header = request.headerFields[.authorization] {
                let parts = header.split(separator: " ", maxSplits: 1)
                if parts.count == 2, parts[0].lowercased() == "bearer" { candidates.append(parts[1].trimmingCharacters(in: .whitespaces)) }
            }
            if let header = request.headerFields[.apiKey] { candidates.append(header.trimmingCharacters(in: .whitespaces)) }
            accepted = candidates.contains { FrontMiddleware.constantTimeEqual($0, key) }
        }
        let authorized = accepted
        var headers = HTTPFields()
        // A browser offers `realtime` with its key; the answer must name one protocol offered.
        if let chosen = protocols.first(where: { !$0.hasPrefix("openai-insecure-api-key.") }) {
            headers[.secWebSocketProtocol] = chosen
        }
        let query = path.split(separator: "?", maxSplits: 1).dropFirst().first.map(String.init) ?? ""
        let language = query.split(separator: "&").compactMap { pair -> String? in
            let kv = pair.split(separator: "=", maxSplits: 1)
            return kv.count == 2 && kv[0] == "language" ? String(kv[1]) : nil
        }.first
        return .upgrade(headers) { inbound, outbound, context in
            guard authorized else {
                try await outbound.close(.policyViolation, reason: "invalid API key")
                return
            }
            let session = RealtimeSession(service: self, outbound: outbound, logger: context.logger, language: language)
            try await withGracefulShutdownHandler {
                try await session.run(inbound)
            } onGracefulShutdown: {
                // 1012: OpenAI's client reconnects (to another instance, or to this one restarted).
                Task { try? await outbound.close(.unknown(1012), reason: "server shutting down") }
            }
        }
    }

    /// Turns the HTTP/1 server into one that also upgrades `/v1/realtime` to WebSocket.
    func realtimeServer(http1: HTTP1Channel.Configuration) -> HTTPServerBuilder {
        .http1WebSocketUpgrade(
            configuration: .init(http1: http1, ws: .init(maxFrameSize: Self.realtimeMaxMessage, autoPing: .enabled(timePeriod: .seconds(30)))),
            shouldUpgrade: { [self] request, _, logger in realtimeUpgrade(request, logger: logger) })
    }
}

extension HTTPField.Name {
    static let secWebSocketProtocol = Self("Sec-WebSocket-Protocol")!
}

/// One realtime connection: its settings, its live transcriber and its event numbering.
final class RealtimeSession: @unchecked Sendable {
    let service: ASRService
    let outbound: WebSocketOutboundWriter
    let logger: Logger
    // Touched only by the connection's task, or by the pool job it awaits (never both at once).
    var language: String
    var decoder: DecoderKind = .ctc
    var inputRate = 24_000
    var settings = LiveSettings()
    var dialect = "session"                // "session" (GA) or "transcription_session" (older/NIM)
    var transcriber: LiveTranscriber?
    var eventCounter = 0
    var samplesIn = 0
    var previousItem: String?

    init(service: ASRService, outbound: WebSocketOutboundWriter, logger: Logger, language: String?) {
        self.service = service; self.outbound = outbound; self.logger = logger
        self.language = language ?? service.configuration.defaultLanguage.map(RequestFields.normalizedLanguage) ?? "hi"
    }

    func nextEventID() -> String { eventCounter += 1; return "event_\(eventCounter)" }

    func send(_ object: [String: Any]) async throws {
        var object = object
        object["event_id"] = nextEventID()
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        try await outbound.write(.text(String(decoding: data, as: UTF8.self)))
    }

    func sendError(_ message: String, code: String = "invalid_request_error", eventID: String? = nil) async throws {
        var error: [String: Any] = ["type": "invalid_request_error", "code": code, "message": message]
        if let eventID { error["event_id"] = eventID }
        try await send(["type": "error", "error": error])
    }

    var sessionObject: [String: Any] {
        let turn: Any = settings.turnDetection
            ? ["type": "server_vad", "threshold": Double(settings.threshold),
               "silence_duration_ms": Int(settings.silenceDuration * 1000), "prefix_padding_ms": Int(settings.prefixPadding * 1000)]
            : NSNull()
        if dialect == "transcription_session" {
            return ["id": "sess_vani", "object": "realtime.transcription_session", "input_audio_format": "pcm16",
                    "input_audio_params": ["sample_rate_hz": inputRate],
                    "input_audio_transcription": ["model": service.host.name, "language": language],
                    "turn_detection": turn]
        }
        return ["id": "sess_vani", "object": "realtime.session", "type": "transcription",
                "audio": ["input": ["format": ["type": "audio/pcm", "rate": inputRate],
                                    "transcription": ["model": service.host.name, "language": language],
                                    "turn_detection": turn]]]
    }

    /// Reads client events until the client closes; closes with 1013 when the pool is full.
    func run(_ inbound: WebSocketInboundStream) async throws {
        try await send(["type": "session.created", "session": sessionObject])
        do {
            for try await message in inbound.messages(maxSize: ASRService.realtimeMaxMessage) {
                guard case .text(let text) = message else {
                    try await sendError("send JSON events as text messages")
                    continue
                }
                try await handle(text)
            }
        } catch let rejection as InferencePool.Rejection {
            // 1013: OpenAI's client reconnects later.
            logger.notice("realtime session closed: \(rejection)")
            try await outbound.close(.unknown(1013), reason: "overloaded: try again later")
        }
    }

    func handle(_ text: String) async throws {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any],
              let type = object["type"] as? String else {
            try await sendError("each message must be a JSON object with a 'type'")
            return
        }
        let eventID = object["event_id"] as? String
        switch type {
        case "session.update", "transcription_session.update":
            dialect = type == "session.update" ? "session" : "transcription_session"
            if let problem = configure(object["session"] as? [String: Any] ?? [:]) {
                try await sendError(problem, code: "invalid_value", eventID: eventID)
                return
            }
            try await send(["type": dialect + ".updated", "session": sessionObject])
        case "input_audio_buffer.append":
            guard let audio = object["audio"] as? String, let bytes = Data(base64Encoded: audio) else {
                try await sendError("'audio' must be base64 PCM16", code: "invalid_value", eventID: eventID)
                return
            }
            try await feed(bytes)
        case "input_audio_buffer.commit":
            let transcriber = try await liveTranscriber()
            let events = try await onPool { transcriber.commit() }
            if events.isEmpty {
                try await sendError("the input audio buffer is empty", code: "input_audio_buffer_commit_empty", eventID: eventID)
            }
            try await emit(events)
        case "input_audio_buffer.clear":
            transcriber?.clear()
            try await send(["type": "input_audio_buffer.cleared"])
        default:
            try await sendError("unsupported event type '\(type.prefix(60))'", code: "unknown_event", eventID: eventID)
        }
    }

    /// Applies a session object of either dialect; returns a problem to report, if any.
    func configure(_ session: [String: Any]) -> String? {
        let input = (session["audio"] as? [String: Any])?["input"] as? [String: Any]
        var rate: Int?
        if let format = input?["format"] as? [String: Any] {
            if let type = format["type"] as? String, type != "audio/pcm" { return "only audio/pcm (PCM16) input is supported" }
            rate = (format["rate"] as? NSNumber)?.intValue
        }
        if let params = session["input_audio_params"] as? [String: Any] {
            rate = (params["sample_rate_hz"] as? NSNumber)?.intValue ?? rate
        }
        if let format = session["input_audio_format"] as? String, format != "pcm16" { return "only pcm16 input is supported" }
        if let rate {
            guard rate == 16_000 || rate == 24_000 else { return "sample rate \(rate) Hz: use 16000 or 24000" }
            inputRate = rate
        }
        let transcription = (input?["transcription"] ?? session["input_audio_transcription"]) as? [String: Any]
        if let code = transcription?["language"] as? String, !code.isEmpty { language = code.lowercased() }
        if let name = transcription?["decoding"] as? String { decoder = name.lowercased() == "rnnt" ? .rnnt : .ctc }
        let turnKey = input?.keys.contains("turn_detection") == true ? input?["turn_detection"] : session["turn_detection"]
        let hasTurnKey = input?.keys.contains("turn_detection") == true || session.keys.contains("turn_detection")
        if hasTurnKey {
            if let turn = turnKey as? [String: Any] {
                // Checked before anything is applied: a session keeps its settings on a refusal.
                let threshold = (turn["threshold"] as? NSNumber)?.doubleValue
                let silence = (turn["silence_duration_ms"] as? NSNumber)?.doubleValue
                let prefix = (turn["prefix_padding_ms"] as? NSNumber)?.doubleValue
                if let t = threshold, !(t > 0 && t < 1) { return "turn_detection.threshold must be between 0 and 1 (exclusive)" }
                if let ms = silence, !(ms >= 0 && ms <= 10_000) { return "turn_detection.silence_duration_ms must be 0 to 10000" }
                if let ms = prefix, !(ms >= 0 && ms <= 2_000) { return "turn_detection.prefix_padding_ms must be 0 to 2000" }
                settings.turnDetection = true
                if let threshold { settings.threshold = Float(threshold) }
                if let silence { settings.silenceDuration = silence / 1000 }
                if let prefix { settings.prefixPadding = prefix / 1000 }
            } else {
                settings.turnDetection = false
            }
        }
        transcriber = nil       // rebuilt with the new settings at the next audio
        return nil
    }

    /// The session's transcriber, built (and the model loaded) on the pool when first needed.
    func liveTranscriber() async throws -> LiveTranscriber {
        if let transcriber { return transcriber }
        let language = self.language, decoder = self.decoder, settings = self.settings, service = self.service
        let made: Result<LiveTranscriber, RecognizerError> = try await onPool {
            do throws(RecognizerError) {
                guard let recognizer = try service.host.engine() as? Recognizer else {
                    throw RecognizerError.invalidModel("live transcription needs the real recognizer")
                }
                return .success(try LiveTranscriber(recognizer: recognizer, language: recognizer.language(language),
                                                    decoder: decoder, settings: settings))
            } catch {
                return .failure(error)
            }
        }
        switch made {
        case .success(let transcriber):
            self.transcriber = transcriber
            return transcriber
        case .failure(let error):
            throw RealtimeFailure(message: error.description)
        }
    }

    /// PCM16 little-endian at the session's rate → 16 kHz floats → the transcriber.
    func feed(_ bytes: Data) async throws {
        let transcriber: LiveTranscriber
        do { transcriber = try await liveTranscriber() } catch let failure as RealtimeFailure {
            try await sendError(failure.message, code: "session_error")
            return
        }
        var samples = [Float](repeating: 0, count: bytes.count / 2)
        bytes.withUnsafeBytes { raw in
            for i in samples.indices {
                samples[i] = Float(Int16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self))) / 32768
            }
        }
        samplesIn += samples.count
        let rate = inputRate, input = samples
        let events = try await onPool {
            let resampled = (try? Resampler.resample(input, from: rate, to: 16_000)) ?? []
            return transcriber.append(resampled)
        }
        try await emit(events)
    }

    func itemID(_ item: Int) -> String { "item_\(item)" }

    func emit(_ events: [LiveEvent]) async throws {
        for event in events {
            switch event {
            case .speechStarted(let item, let at):
                try await send(["type": "input_audio_buffer.speech_started", "item_id": itemID(item),
                                "audio_start_ms": Int(at * 1000)])
            case .speechStopped(let item, let at):
                try await send(["type": "input_audio_buffer.speech_stopped", "item_id": itemID(item),
                                "audio_end_ms": Int(at * 1000)])
            case .delta(let item, let text):
                try await send(["type": "conversation.item.input_audio_transcription.delta", "item_id": itemID(item),
                                "content_index": 0, "delta": text])
            case .completed(let item, let transcript, _):
                try await send(["type": "input_audio_buffer.committed", "item_id": itemID(item),
                                "previous_item_id": previousItem.map { $0 as Any } ?? NSNull()])
                previousItem = itemID(item)
                try await send(["type": "conversation.item.input_audio_transcription.completed", "item_id": itemID(item),
                                "content_index": 0, "transcript": transcript])
            }
        }
    }

    /// Runs `work` on the service's worker pool; throws the pool's rejection when it is full.
    func onPool<T: Sendable>(_ work: @escaping @Sendable () -> T) async throws -> T {
        let ticket = try service.pool.admit(deadline: service.configuration.timeoutSeconds)
        defer { ticket.releaseIfUnsubmitted() }
        // On a compute lane like any other forward pass (BatchScheduler.runAlone).
        return try await service.pool.run(ticket, timeout: service.configuration.timeoutSeconds) { [service] _ in
            service.batcher.runAlone { work() } ?? work()
        }
    }
}

/// A session that cannot start (no model, no VAD weights, an unknown language).
struct RealtimeFailure: Error { let message: String }
