// `POST /v1/audio/transcriptions` with `stream=true`: the answer is `text/event-stream`, one
// `transcript.text.delta` event per finished segment of the audio and a `transcript.text.done`
// with the whole text, as OpenAI's API sends them and the `openai` client reads them
// (docs/SERVICE.md). Without `stream` the request takes the ordinary road.
//
// Also here: the deadline of a transcription request grows with the audio's duration (an hour
// of audio is not cut off at the default timeout), estimated from the body before admission.

import ASR
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

extension ASRService {
    /// The OpenAI transcription endpoint: the body is received as on every inference road, then
    /// answered whole or, with `stream=true`, as server-sent events. Form errors found before
    /// streaming starts are answered as ordinary MLflow-shaped errors.
    func openAITranscriptionEndpoint(_ request: Request, _ context: VaniRequestContext) async throws -> Response {
        let (body, reservation, scope) = try await receive(request, context, accepting: .multipart)
        // A form without a `stream` part is not parsed here: it takes the ordinary road.
        let mentionsStream = body.readableBytesView.firstRange(of: Array("name=\"stream\"".utf8)) != nil
        let streaming = mentionsStream ? await Self.offTheLoop { Self.asksToStream(body, contentType: scope.contentType) } : false
        guard streaming else {
            defer { reservation.release() }
            return try await run(body: body, scope: scope) { body, scope, deadline throws(APIError) in
                try self.openAITranscription(body: body, scope: scope, deadline: deadline)
            }
        }
        // Checked here, before the 200 and the event stream start, so that a bad form, an unknown
        // model or language is a 4xx; on a thread of its own (the form may be large, and the
        // model may still be loading).
        let checked = await Self.offTheLoop { () -> Result<(OpenAIForm, LoadedModel), APIError> in
            do throws(APIError) {
                let form = try self.openAIForm(body, scope: scope)
                let model = try self.loaded(try self.modelHost(form.item.model, lenient: true), scope)
                do throws(RecognizerError) { _ = try model.engine.language(form.item.language) } catch {
                    throw APIError.from(error) ?? APIError.internalError(requestID: scope.requestID)
                }
                return .success((form, model))
            } catch { return .failure(error) }
        }
        let form: OpenAIForm
        let model: LoadedModel
        switch checked {
        case .success(let (checkedForm, checkedModel)): form = checkedForm; model = checkedModel
        case .failure(let error): reservation.release(); throw error
        }
        let timeout = deadline(forBody: body)
        let ticket: InferencePool.Ticket
        do { ticket = try pool.admit(deadline: timeout) } catch { reservation.release(); throw counted(error) }
        // Events are few (one per segment) and small: the stream's buffer stays bounded by the
        // number of segments.
        let (events, continuation) = AsyncStream.makeStream(of: ByteBuffer.self, bufferingPolicy: .unbounded)
        let pool = self.pool
        let submitted = ContinuousClock.now
        // The work runs on a worker thread; its events go out as they come. A client that goes
        // away cancels the waiting task, which marks the job's deadline expired: the recognizer
        // stops between segments.
        let job = Task { [metrics] in
            defer { reservation.release(); ticket.releaseIfUnsubmitted() }
            do {
                let outcome = try await pool.run(ticket, timeout: timeout) { deadline in
                    metrics.queueWait(seconds: (ContinuousClock.now - submitted).seconds)
                    return self.streamTranscription(form.item, model: model, scope: scope, deadline: deadline,
                                                    events: continuation)
                }
                if case .failure(let error) = outcome { continuation.yield(Self.errorEvent(error)) }
            } catch let rejection as InferencePool.Rejection {
                continuation.yield(Self.errorEvent(APIError(self.counted(rejection))))
            } catch {
                continuation.yield(Self.errorEvent(.internalError(requestID: scope.requestID)))
            }
            continuation.finish()
        }
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        if let digest = model.digest, let name = HTTPField.Name("X-Model-Digest") { headers[name] = digest }
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            try await withTaskCancellationHandler {
                for await event in events { try await writer.write(event) }
                try await writer.finish(nil)
            } onCancel: {
                job.cancel()
            }
        })
    }

    /// Runs blocking work (parsing a large form, waiting for a model to load) on a thread of its
    /// own, so that no event loop and no task of Swift's pool waits on it.
    static func offTheLoop<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            let thread = Thread { continuation.resume(returning: work()) }
            thread.name = "vani-off-loop"
            thread.stackSize = 8 << 20
            thread.start()
        }
    }

    /// True when the form's `stream` field says so (`true`, `1`, `yes`).
    static func asksToStream(_ body: ByteBuffer, contentType: String) -> Bool {
        guard let boundary = MultipartForm.boundary(contentType: contentType),
              let form = try? MultipartForm.parse(body, boundary: boundary),
              let value = form.first("stream")?.string.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
        else { return false }
        return value == "true" || value == "1" || value == "yes"
    }

    /// On a worker thread: transcribes, sending one delta per finished segment and the done
    /// event.
    func streamTranscription(_ item: TranscriptionRequest, model: LoadedModel, scope: Scope,
                             deadline: InferencePool.Deadline,
                             events: AsyncStream<ByteBuffer>.Continuation) -> Result<Void, APIError> {
        let outcome = transcribe(item, model: model, scope: scope, onSegment: { update in
            guard !update.text.isEmpty else { return }
            // Segments after the first are separated from the text before them by a space,
            // so the deltas concatenate to the done event's text.
            let delta = update.index == 0 || update.text.hasPrefix(" ") ? update.text : " " + update.text
            events.yield(Self.event(DeltaEvent(delta: delta)))
        }, isCancelled: { deadline.isExpired })
        switch outcome {
        case .success(let (transcript, _)):
            if deadline.isExpired { return .failure(.timeout(seconds: configuration.timeoutSeconds)) }
            events.yield(Self.event(DoneEvent(text: transcript.text)))
            return .success(())
        case .failure(let error):
            return .failure(error)
        }
    }

    struct DeltaEvent: Encodable { var type = "transcript.text.delta"; let delta: String }
    struct DoneEvent: Encodable { var type = "transcript.text.done"; let text: String }
    struct ErrorEvent: Encodable {
        struct Detail: Encodable { let code: String; let message: String }
        var type = "error"
        let error: Detail
    }

    /// One server-sent event: `data: <json>` and a blank line.
    static func event<T: Encodable>(_ value: T) -> ByteBuffer {
        var buffer = ByteBuffer(string: "data: ")
        var json = JSONBody.encode(value)
        buffer.writeBuffer(&json)
        buffer.writeString("\n\n")
        return buffer
    }

    static func errorEvent(_ error: APIError) -> ByteBuffer {
        event(ErrorEvent(error: .init(code: error.code.rawValue, message: error.message)))
    }

    // MARK: - Deadlines that grow with the audio

    /// `--timeout` plus a quarter of the audio's estimated duration beyond its first minute
    /// (requests of a minute or less keep `--timeout` exactly): the audio's own header when the
    /// body holds a WAV file (directly or base64 in JSON), else the body's size at 32 kbit/s.
    func deadline(forBody body: ByteBuffer) -> Double {
        let seconds = min(Self.estimatedAudioSeconds(body), configuration.maxAudioSeconds)
        return configuration.timeoutSeconds + 0.25 * max(0, seconds - 60)
    }

    /// Seconds of audio in a request body, estimated without decoding it.
    static func estimatedAudioSeconds(_ body: ByteBuffer) -> Double {
        let bytes = body.readableBytesView
        let head = Array(bytes.prefix(1 << 16))
        if let riff = head.firstRange(of: Array("RIFF".utf8)), let seconds = wavSeconds(Array(head[riff.lowerBound...])) {
            // The header's sizes are the client's word: never more than the bytes could hold at
            // 8 kHz 8-bit mono, the smallest PCM there is.
            return min(seconds, Double(bytes.count) / 8000)
        }
        if let b64 = head.firstRange(of: Array("UklGR".utf8)) {
            let text = String(decoding: head[b64.lowerBound..<min(head.count, b64.lowerBound + 256)], as: UTF8.self)
            let usable = String(text.prefix { $0.isLetter || $0.isNumber || $0 == "+" || $0 == "/" })
            let even = String(usable.prefix(usable.count / 4 * 4))
            if let data = Data(base64Encoded: even), let seconds = wavSeconds(Array(data)) {
                // The header's data size may be a placeholder; trust the body's size too.
                return min(seconds, Double(bytes.count) * 3 / 4 / 2 / 8000)
            }
        }
        return Double(bytes.count) / 4000
    }

    /// Duration from a RIFF/WAVE header: the `data` chunk's size over the `fmt ` byte rate.
    static func wavSeconds(_ bytes: [UInt8]) -> Double? {
        func u32(_ at: Int) -> Int? {
            guard at + 4 <= bytes.count else { return nil }
            return Int(bytes[at]) | Int(bytes[at + 1]) << 8 | Int(bytes[at + 2]) << 16 | Int(bytes[at + 3]) << 24
        }
        guard bytes.count >= 12, bytes[8..<12].elementsEqual("WAVE".utf8) else { return nil }
        var offset = 12
        var byteRate: Int?
        while offset + 8 <= bytes.count, let size = u32(offset + 4) {
            let id = String(decoding: bytes[offset..<offset + 4], as: UTF8.self)
            if id == "fmt " { byteRate = u32(offset + 16) }
            if id == "data", let rate = byteRate, rate > 0 { return Double(size) / Double(rate) }
            offset += 8 + size + (size & 1)
        }
        return nil
    }
}
