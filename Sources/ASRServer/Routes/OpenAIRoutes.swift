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
        router.get("/v1/models") { _, _ in service.modelList().response }
        router.get("/v1/models/{name}") { _, context in
            try service.modelEntry(context.parameters.require("name")).response
        }
        router.post("/v1/models/{name}/reload") { _, context in
            try await service.reloadModel(context.parameters.require("name"), context: context).response
        }
    }
}

extension ASRService {
    /// OpenAI's `response_format` values.
    enum ResponseFormat: String { case json, text, srt, vtt, verbose_json }

    /// A transcription form, read and checked.
    struct OpenAIForm: Sendable {
        var item: TranscriptionRequest
        var format: ResponseFormat
        var granularities: Set<String>
        /// `stream=true` (`true`, `1`, `yes`): answer with server-sent events.
        var stream: Bool
    }

    /// The form's fields go through the same reader as a JSON item (`language`/`lang`,
    /// `decoding`/`decoder`); the audio is the `file` part.
    func openAITranscription(body: ByteBuffer, scope: Scope, deadline: InferencePool.Deadline) throws(APIError) -> Reply {
        let form = try openAIForm(body, scope: scope)
        // OpenAI clients send their own model names (`whisper-1`): those mean the default model
        // unless --strict-model-names.
        let model = try loaded(try modelHost(form.item.model, lenient: true), scope)
        let (transcript, cache) = try transcribe(form.item, model: model, scope: scope,
                                                   isCancelled: { deadline.isExpired }).get()
        return tagged(openAIReply(transcript, format: form.format, granularities: form.granularities),
                      model: model, cache: cache)
    }

    /// Parses and checks a transcription form (the `file` part and every field).
    func openAIForm(_ body: ByteBuffer, scope: Scope) throws(APIError) -> OpenAIForm {
        guard let boundary = MultipartForm.boundary(contentType: scope.contentType) else {
            throw APIError.unsupportedMediaType(scope.contentType, expected: "multipart/form-data")
        }
        let form = try MultipartForm.parse(body, boundary: boundary)
        guard let file = form.first("file") else {
            throw APIError.invalid("the form has no 'file' part: send the audio as a file upload (curl -F file=@clip.wav)")
        }
        // `-F file=clip.wav` (without @) sends the name as a text field: no filename, no type.
        if file.filename == nil, file.contentType == nil, let text = textPreview(file.body) {
            throw APIError.invalid("the 'file' field is text (\"\(text)\"), not a file upload: "
                                   + "send the file itself (curl -F file=@clip.wav)")
        }
        guard file.body.readableBytes > 0 else {
            throw APIError.invalid("the uploaded file\(file.filename.map { " '\(clip($0))'" } ?? "") is empty (0 bytes): send the audio file's contents")
        }
        let formatName = form.first("response_format")?.string.trimmingCharacters(in: .whitespaces).lowercased() ?? ""
        guard let format = formatName.isEmpty ? .json : ResponseFormat(rawValue: formatName) else {
            throw APIError.invalid("field 'response_format' must be json, text, srt, vtt or verbose_json, not '\(clip(formatName))'")
        }
        let streamValue = form.first("stream")?.string.trimmingCharacters(in: .whitespacesAndNewlines).lowercased() ?? ""
        guard ["", "true", "false", "1", "0", "yes", "no"].contains(streamValue) else {
            throw APIError.invalid("field 'stream' must be true or false, not '\(clip(streamValue))'")
        }
        let granularities = Set((form.all("timestamp_granularities[]") + form.all("timestamp_granularities"))
            .map { $0.string.trimmingCharacters(in: .whitespaces).lowercased() })
        for value in granularities where value != "word" && value != "segment" {
            throw APIError.invalid("field 'timestamp_granularities[]' takes 'word' or 'segment', not '\(clip(value))'")
        }
        let item = try RequestFields.item(form.textFields(excluding: ["file", "stream"]), defaults: requestDefaults,
                                          audio: Data(file.body.readableBytesView))
        return OpenAIForm(item: item, format: format, granularities: granularities,
                          stream: ["true", "1", "yes"].contains(streamValue))
    }

    /// The transcript in the `response_format` asked for.
    func openAIReply(_ transcript: Transcript, format: ResponseFormat, granularities: Set<String>) -> Reply {
        let formatter = SubtitleFormatter()
        switch format {
        case .json: return .json(OpenAITextResponse(text: transcript.text, warnings: warnings(transcript)))
        case .text: return .text(transcript.text + "\n")
        case .srt: return .text(formatter.srt(transcript))
        case .vtt: return .text(formatter.vtt(transcript), contentType: "text/vtt; charset=utf-8")
        case .verbose_json:
            var response = OpenAIVerboseResponse(language: Language.englishName(of: transcript.language),
                                                 language_code: transcript.language,
                                                 duration: millis(transcript.duration), text: transcript.text,
                                                 warnings: warnings(transcript))
            if granularities.isEmpty || granularities.contains("segment") {
                response.segments = formatter.cues(for: transcript).enumerated().map { index, cue in
                    let tokens = transcript.tokens[cue.tokens]
                    // An untimed cue (text without token times) spans every token: the mean of all.
                    let meanLogProb = tokens.isEmpty ? transcript.confidence
                        : tokens.reduce(0.0) { $0 + Double($1.logProb) } / Double(tokens.count)
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

    /// The transcript's warnings for a JSON body: nil (left out) when there are none.
    func warnings(_ transcript: Transcript) -> [AudioWarning]? {
        transcript.warnings.isEmpty ? nil : transcript.warnings
    }

    /// The start of a form part when it is printable text (nil for binary bytes such as audio).
    func textPreview(_ body: ByteBuffer) -> String? {
        let bytes = Array(body.readableBytesView.prefix(512))
        guard !bytes.isEmpty, !bytes.contains(where: { $0 < 0x20 && $0 != 0x09 && $0 != 0x0A && $0 != 0x0D }),
              let text = String(validating: bytes, as: UTF8.self) else { return nil }
        return clip(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// OpenAI's model list: every model this service holds, by the name clients select it with.
    func modelList() -> Reply {
        .json(ModelList(data: models.hosts.map(modelListEntry)))
    }

    /// One model, as OpenAI's "retrieve model" answers.
    func modelEntry(_ name: String) throws(APIError) -> Reply {
        guard let host = models.host(named: name) else { throw APIError.unknownModel(name, available: models.names) }
        return .json(modelListEntry(host))
    }

    func modelListEntry(_ host: ModelHost) -> ModelList.Entry {
        .init(id: host.name, created: Int(startedDate.timeIntervalSince1970), digest: host.details.loaded?.digest,
              default: host === models.defaultHost)
    }
}
