// `POST /v1/audio/transcriptions` with `stream=true`: the answer is `text/event-stream`, one
// `transcript.text.delta` event per finished segment of the audio and a `transcript.text.done`
// with the whole text, as OpenAI's API sends them and the `openai` client reads them
// (docs/SERVICE.md). Without `stream` the request takes the ordinary road.
//
// Also here: the deadline of a transcription request grows with the audio's duration (an hour
// of audio is not cut off at the default timeout), estimated from the body before admission.

import ASR
import Foundation
import Hummingbird
import NIOCore

extension ASRService {
    /// The OpenAI transcription endpoint: the body is received as on every inference road, then
    /// answered whole or, with `stream=true`, as server-sent events.
    func openAITranscriptionEndpoint(_ request: Request, _ context: VaniRequestContext) async throws -> Response {
        let contentType = request.headers[.contentType] ?? ""
        try checkContentType(contentType, kind: .multipart)
        if let refusal = APIError.checkContentLength(request.headers[.contentLength], limit: configuration.maxBodyBytes) {
            throw refusal
        }
        let reservation = BodyReservation(budget: bodyBudget)
        let body: ByteBuffer
        do { body = try await collectBody(request, into: reservation) } catch { reservation.release(); throw error }
        let timeout = deadline(forBody: body)
        let scope = Scope(requestID: context.requestID, logger: context.logger, contentType: contentType)
        guard Self.asksToStream(body, contentType: contentType) else {
            defer { reservation.release() }
            let ticket = try pool.admit(deadline: timeout)
            defer { ticket.releaseIfUnsubmitted() }
            let outcome = try await pool.run(ticket, timeout: timeout) { deadline in
                Result { () throws(APIError) -> Reply in try self.openAITranscription(body: body, scope: scope, deadline: deadline) }
            }
            return try outcome.get().response
        }
        let ticket: InferencePool.Ticket
        do { ticket = try pool.admit(deadline: timeout) } catch { reservation.release(); throw error }
        let (events, continuation) = AsyncStream.makeStream(of: ByteBuffer.self, bufferingPolicy: .unbounded)
        let pool = self.pool
        // The work runs on a worker thread; its events go out as they come. A client that goes
        // away cancels the waiting task, which marks the job's deadline expired: the recognizer
        // stops between segments.
        let job = Task {
            defer { reservation.release(); ticket.releaseIfUnsubmitted() }
            do {
                let outcome = try await pool.run(ticket, timeout: timeout) { deadline in
                    self.streamTranscription(body: body, scope: scope, deadline: deadline, events: continuation)
                }
                if case .failure(let error) = outcome { continuation.yield(Self.errorEvent(error)) }
            } catch let rejection as InferencePool.Rejection {
                continuation.yield(Self.errorEvent(APIError(rejection)))
            } catch {
                continuation.yield(Self.errorEvent(.internalError(requestID: scope.requestID)))
            }
            continuation.finish()
        }
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            try await withTaskCancellationHandler {
                for await event in events { try await writer.write(event) }
                try await writer.finish(nil)
            } onCancel: {
                job.cancel()
            }
        })
    }

    /// True when the form's `stream` field says so (`true`, `1`, `yes`).
    static func asksToStream(_ body: ByteBuffer, contentType: String) -> Bool {
        guard let boundary = MultipartForm.boundary(contentType: contentType),
              let form = try? MultipartForm.parse(body, boundary: boundary),
              let value = form.first("stream")?.string.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
        else { return false }
        return value == "true" || value == "1" || value == "yes"
    }

    /// On a worker thread: parses the form, transcribes, and sends one delta per finished segment
    /// and the done event. Client errors found before any segment become an `error` event.
    func streamTranscription(body: ByteBuffer, scope: Scope, deadline: InferencePool.Deadline,
                             events: AsyncStream<ByteBuffer>.Continuation) -> Result<Void, APIError> {
        do throws(APIError) {
            guard let boundary = MultipartForm.boundary(contentType: scope.contentType) else {
                throw APIError.unsupportedMediaType(scope.contentType, expected: "multipart/form-data")
            }
            let form = try MultipartForm.parse(body, boundary: boundary)
            guard let file = form.first("file") else { throw APIError.missing("file") }
            guard file.body.readableBytes > 0 else { throw APIError.invalid("the 'file' part is empty: send an audio file") }
            let item = try RequestFields.item(form.textFields(excluding: ["file", "stream"]),
                                              audio: Data(file.body.readableBytesView))
            let engine = try engine(scope)
            let transcript = try transcribe(item, engine: engine, scope: scope, onSegment: { update in
                guard !update.text.isEmpty else { return }
                // Segments after the first are separated from the text before them by a space,
                // so the deltas concatenate to the done event's text.
                let delta = update.index == 0 || update.text.hasPrefix(" ") ? update.text : " " + update.text
                events.yield(Self.event(DeltaEvent(delta: delta)))
            }, isCancelled: { deadline.isExpired }).get()
            events.yield(Self.event(DoneEvent(text: transcript.text)))
            return .success(())
        } catch {
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
        configuration.timeoutSeconds + 0.25 * max(0, Self.estimatedAudioSeconds(body) - 60)
    }

    /// Seconds of audio in a request body, estimated without decoding it.
    static func estimatedAudioSeconds(_ body: ByteBuffer) -> Double {
        let bytes = body.readableBytesView
        let head = Array(bytes.prefix(1 << 16))
        if let riff = head.firstRange(of: Array("RIFF".utf8)), let seconds = wavSeconds(Array(head[riff.lowerBound...])) {
            return seconds
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
