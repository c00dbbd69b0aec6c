// What clients send: one utterance per item, under the names the MLflow service used
// (`audio`, `language`, `decoding`, `timestamps`) or their aliases, alone, in a batch, or in one
// of MLflow's scoring formats.

import ASR
import Foundation

/// One utterance to transcribe, validated.
struct TranscriptionRequest: Sendable {
    var audio: Data
    var language: String
    var decoder: DecoderKind
    var timestamps: Bool
    /// The model named by the request (nil: the default).
    var model: String? = nil
    /// How long audio is cut (`segmentation`); nil: the recognizer's default.
    var segmentation: Segmentation? = nil
}

/// Fields that items inherit when they do not set them (top level of a batch, MLflow `params`).
struct RequestDefaults: Sendable {
    var language: String?
    var decoder: DecoderKind?
    var timestamps: Bool?
    var model: String?
    var segmentation: Segmentation?
}

/// One item of a batch: parsed, or the error to report in its place.
typealias ParsedItem = Result<TranscriptionRequest, APIError>

enum RequestFields {
    static let audio = ["audio", "audio_base64"]
    static let language = ["language", "lang"]
    static let decoder = ["decoding", "decoder"]
    static let timestamps = ["timestamps"]
    static let model = ["model"]
    static let segmentation = ["segmentation"]

    // MARK: - Single items

    /// Reads one item from a JSON object (or a form's text fields as strings). `path` prefixes
    /// field names in messages ("items[2]."). `audio` is the file when it came as its own part
    /// (multipart); otherwise the object's base64 `audio` field is read.
    static func item(_ object: [String: JSONValue], defaults: RequestDefaults = RequestDefaults(),
                     path: String = "", audio file: Data? = nil) throws(APIError) -> TranscriptionRequest {
        let audioData: Data
        if let file {
            audioData = file
        } else {
            guard let audioValue = try field(object, audio, path: path) else {
                throw APIError.missing(path + audio[0], aliases: audio.dropFirst().map { path + $0 })
            }
            audioData = try base64Audio(audioValue, field: path + audio[0])
        }
        var language = try string(object, self.language, path: path).map(normalizedLanguage) ?? defaults.language
        if language?.isEmpty == true { language = nil }
        guard let language else {
            throw APIError.missing(path + self.language[0], aliases: self.language.dropFirst().map { path + $0 })
        }
        let decoder = try self.decoder(object, path: path) ?? defaults.decoder ?? .ctc
        let timestamps = try bool(object, self.timestamps, path: path) ?? defaults.timestamps ?? false
        let model = try modelName(object, path: path) ?? defaults.model
        let segmentation = try self.segmentation(object, path: path) ?? defaults.segmentation
        return TranscriptionRequest(audio: audioData, language: language, decoder: decoder, timestamps: timestamps,
                                    model: model, segmentation: segmentation)
    }

    /// Reads the fields that items may inherit.
    static func defaults(_ object: [String: JSONValue], path: String = "",
                         inherited: RequestDefaults = RequestDefaults()) throws(APIError) -> RequestDefaults {
        var result = inherited
        if let language = try string(object, language, path: path).map(normalizedLanguage), !language.isEmpty {
            result.language = language
        }
        if let decoder = try decoder(object, path: path) { result.decoder = decoder }
        if let timestamps = try bool(object, timestamps, path: path) { result.timestamps = timestamps }
        if let model = try modelName(object, path: path) { result.model = model }
        if let segmentation = try segmentation(object, path: path) { result.segmentation = segmentation }
        return result
    }

    /// The `model` field, trimmed; nil when absent or empty.
    static func modelName(_ object: [String: JSONValue], path: String) throws(APIError) -> String? {
        let name = try string(object, model, path: path)?.trimmingCharacters(in: .whitespacesAndNewlines)
        return name?.isEmpty == false ? name : nil
    }

    // MARK: - Field readers

    /// The value under the first of `names` present and not null.
    static func field(_ object: [String: JSONValue], _ names: [String], path: String) throws(APIError) -> JSONValue? {
        for name in names {
            if let value = object[name], value != .null { return value }
        }
        return nil
    }

    static func string(_ object: [String: JSONValue], _ names: [String], path: String) throws(APIError) -> String? {
        for name in names {
            switch object[name] {
            case nil, .null?: continue
            case .string(let s)?: return s
            case let other?: throw APIError.wrongType(path + name, expected: "a string, not \(other.kind)")
            }
        }
        return nil
    }

    static func bool(_ object: [String: JSONValue], _ names: [String], path: String) throws(APIError) -> Bool? {
        for name in names {
            switch object[name] {
            case nil, .null?: continue
            case .bool(let b)?: return b
            // Data frames turn booleans into 0/1 or strings; accept those spellings only.
            case .number(let n)? where n == 0 || n == 1: return n == 1
            case .string(let s)?:
                switch s.lowercased() {
                case "true", "1", "yes": return true
                case "false", "0", "no", "": return false
                default: throw APIError.wrongType(path + name, expected: "a boolean, not '\(clip(s))'")
                }
            case let other?: throw APIError.wrongType(path + name, expected: "a boolean, not \(other.kind)")
            }
        }
        return nil
    }

    static func decoder(_ object: [String: JSONValue], path: String) throws(APIError) -> DecoderKind? {
        guard let name = try string(object, decoder, path: path) else { return nil }
        return try decoderKind(name, field: path + decoder[0])
    }

    static func segmentation(_ object: [String: JSONValue], path: String) throws(APIError) -> Segmentation? {
        guard let name = try string(object, segmentation, path: path) else { return nil }
        let trimmed = name.lowercased().trimmingCharacters(in: .whitespaces)
        if trimmed.isEmpty { return nil }
        guard let value = Segmentation(rawValue: trimmed) else {
            throw APIError.invalid("field '\(path + segmentation[0])' must be 'vad', 'windows' or 'off', not '\(clip(name))'")
        }
        return value
    }

    static func decoderKind(_ name: String, field: String) throws(APIError) -> DecoderKind {
        switch name.lowercased().trimmingCharacters(in: .whitespaces) {
        case "ctc", "": return .ctc
        case "rnnt", "rnn-t", "rnn_t", "transducer": return .rnnt
        default: throw APIError.invalid("field '\(field)' must be 'ctc' or 'rnnt', not '\(clip(name))'")
        }
    }

    static func normalizedLanguage(_ code: String) -> String {
        code.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
    }

    // MARK: - Base64

    /// Decodes base64 audio: standard or URL-safe alphabet, padding optional, line breaks and a
    /// `data:audio/...;base64,` prefix tolerated.
    static func base64Audio(_ value: JSONValue, field: String) throws(APIError) -> Data {
        guard case .string(var text) = value else {
            throw APIError.wrongType(field, expected: "a base64 string, not \(value.kind)")
        }
        if text.hasPrefix("data:"), let comma = text.firstIndex(of: ",") {
            text = String(text[text.index(after: comma)...])
        }
        guard let data = decodeBase64(text) else {
            throw APIError.invalid("field '\(field)' is not valid base64: send the audio file's bytes base64-encoded")
        }
        guard !data.isEmpty else {
            throw APIError.invalid("field '\(field)' is empty: send the audio file's bytes base64-encoded")
        }
        return data
    }

    static func decodeBase64(_ text: String) -> Data? {
        if let data = Data(base64Encoded: text) { return data }
        // The slow path copies the text once; only odd encodings get here.
        var bytes = [UInt8]()
        bytes.reserveCapacity(text.utf8.count + 3)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "\t"): continue
            case UInt8(ascii: "-"): bytes.append(UInt8(ascii: "+"))
            case UInt8(ascii: "_"): bytes.append(UInt8(ascii: "/"))
            default: bytes.append(byte)
            }
        }
        while bytes.count % 4 != 0 { bytes.append(UInt8(ascii: "=")) }
        return Data(base64Encoded: Data(bytes))
    }
}

/// A client's value as it may be echoed in a message or a log line: cut to `length`
/// characters and with control characters written as escapes, so a huge or multi-line value
/// can neither flood a response nor forge a log line.
func clip(_ s: String, to length: Int = 40) -> String {
    let cut = s.count > length ? String(s.prefix(length)) + "…" : s
    return escapingControlCharacters(cut)
}

/// `\n`, `\r`, `\t` and `\u{…}` in place of control characters.
func escapingControlCharacters(_ s: String) -> String {
    guard s.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else { return s }
    var out = ""
    for scalar in s.unicodeScalars {
        switch scalar {
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where scalar.properties.generalCategory == .control:
            out += "\\u{\(String(scalar.value, radix: 16))}"
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out
}
