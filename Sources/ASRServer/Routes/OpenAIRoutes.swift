// The OpenAI family: `POST /v1/audio/transcriptions` (multipart form, the official client's
// request) and `GET /v1/models`.

import ASR
import Foundation
import Hummingbird

/// The routes of OpenAI's audio API that the service speaks.
struct OpenAIRoutes {
    let service: ASRService

    func addRoutes(to router: some RouterMethods<VaniRequestContext>) {
        router.post("/v1/audio/transcriptions") { request, context in
            // Whole answers and `stream=true` (TranscriptionStreaming.swift).
            try await service.openAITranscriptionEndpoint(request, context)
        }
        router.get("/v1/models") { _, _ in service.models().response }
    }
}

extension ASRService {
    /// OpenAI's `response_format` values.
    enum ResponseFormat: String { case json, text, srt, vtt, verbose_json }

    /// The form's fields go through the same reader as a JSON item (`language`/`lang`,
    /// `decoding`/`decoder`); the audio is the `file` part.
    func openAITranscription(body: ByteBuffer, scope: Scope, deadline: InferencePool.Deadline) throws(APIError) -> Reply {
        guard let boundary = MultipartForm.boundary(contentType: scope.contentType) else {
            throw APIError.unsupportedMediaType(scope.contentType, expected: "multipart/form-data")
        }
        let form = try MultipartForm.parse(body, boundary: boundary)
        guard let file = form.first("file") else { throw APIError.missing("file") }
        guard file.body.readableBytes > 0 else { throw APIError.invalid("the 'file' part is empty: send an audio file") }
        let formatName = form.first("response_format")?.string.trimmingCharacters(in: .whitespaces).lowercased() ?? ""
        guard let format = formatName.isEmpty ? .json : ResponseFormat(rawValue: formatName) else {
            throw APIError.invalid("field 'response_format' must be json, text, srt, vtt or verbose_json, not '\(clip(formatName))'")
        }
        _ = form.first("stream")   // read by the endpoint (TranscriptionStreaming.swift)
        let granularities = Set((form.all("timestamp_granularities[]") + form.all("timestamp_granularities"))
            .map { $0.string.trimmingCharacters(in: .whitespaces).lowercased() })
        for value in granularities where value != "word" && value != "segment" {
            throw APIError.invalid("field 'timestamp_granularities[]' takes 'word' or 'segment', not '\(clip(value))'")
        }
        let item = try RequestFields.item(form.textFields(excluding: ["file"]),
                                          audio: Data(file.body.readableBytesView))
        let transcript = try transcribe(item, engine: try engine(scope), scope: scope,
                                        isCancelled: { deadline.isExpired }).get()
        let formatter = SubtitleFormatter()
        switch format {
        case .json: return .json(OpenAITextResponse(text: transcript.text))
        case .text: return .text(transcript.text + "\n")
        case .srt: return .text(formatter.srt(transcript))
        case .vtt: return .text(formatter.vtt(transcript), contentType: "text/vtt; charset=utf-8")
        case .verbose_json:
            var response = OpenAIVerboseResponse(language: transcript.language, duration: millis(transcript.duration),
                                                 text: transcript.text)
            if granularities.isEmpty || granularities.contains("segment") {
                response.segments = formatter.cues(for: transcript).enumerated().map { index, cue in
                    let tokens = transcript.tokens[cue.tokens]
                    let meanLogProb = tokens.isEmpty ? 0 : tokens.reduce(0.0) { $0 + Double($1.logProb) } / Double(tokens.count)
                    return .init(id: index, start: millis(cue.start), end: millis(cue.end), text: cue.text,
                                 tokens: tokens.map(\.id), avg_logprob: meanLogProb)
                }
            }
            if granularities.contains("word") {
                response.words = SubtitleFormatter.words(from: transcript.tokens).map {
                    .init(word: $0.word.word, start: millis($0.word.start), end: millis($0.word.end))
                }
            }
            return .json(response)
        }
    }

    /// OpenAI's model list: the one model this service holds.
    func models() -> Reply {
        let name = host.snapshot.info?.name ?? host.name
        return .json(ModelList(data: [.init(id: name, created: Int(startedDate.timeIntervalSince1970))]))
    }
}
