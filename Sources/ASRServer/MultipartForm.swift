// multipart/form-data bodies (OpenAI's /v1/audio/transcriptions), parsed with MultipartKit.

import Foundation
import Hummingbird
import MultipartKit

/// The parts of a form, by field name.
struct MultipartForm: Sendable {
    struct Part: Sendable {
        var name: String
        var filename: String?
        var contentType: String?
        var body: ByteBuffer
        var string: String { String(buffer: body) }
    }

    var parts: [Part]

    func first(_ name: String) -> Part? { parts.first { $0.name == name } }
    func all(_ name: String) -> [Part] { parts.filter { $0.name == name } }

    /// The text fields as a JSON-like object (the first part of each name, as a string), so a
    /// form is read by the same field reader as a JSON body.
    func textFields(excluding excluded: Set<String>) -> [String: JSONValue] {
        var fields: [String: JSONValue] = [:]
        for part in parts where !excluded.contains(part.name) && fields[part.name] == nil {
            fields[part.name] = .string(part.string)
        }
        return fields
    }

    /// The boundary of a `multipart/form-data` content type, or nil if it is not one.
    static func boundary(contentType: String) -> String? {
        let pieces = contentType.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        guard pieces.first?.lowercased() == "multipart/form-data" else { return nil }
        for piece in pieces.dropFirst() {
            let pair = piece.split(separator: "=", maxSplits: 1).map(String.init)
            guard pair.count == 2, pair[0].lowercased() == "boundary" else { continue }
            let value = pair[1].trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            return value.isEmpty ? nil : value
        }
        return nil
    }

    /// Parses a body.
    /// - Throws: `BAD_REQUEST` when the body is not well-formed multipart data.
    static func parse(_ body: ByteBuffer, boundary: String) throws(APIError) -> MultipartForm {
        let parser = MultipartParser(boundary: boundary)
        var parts: [Part] = []
        var headers: [(String, String)] = []
        var current = ByteBuffer()
        parser.onHeader = { name, value in headers.append((name, value)) }
        parser.onBody = { chunk in current.writeBuffer(&chunk) }
        parser.onPartComplete = {
            var disposition: [String: String] = [:]
            var contentType: String?
            for (name, value) in headers {
                switch name.lowercased() {
                case "content-disposition": disposition = parameters(value)
                case "content-type": contentType = value
                default: break
                }
            }
            if let name = disposition["name"] {
                parts.append(Part(name: name, filename: disposition["filename"], contentType: contentType, body: current))
            }
            headers = []
            current = ByteBuffer()
        }
        do {
            try parser.execute(body)
        } catch {
            throw APIError(.badRequest, status: .badRequest,
                           "the multipart body is malformed: send multipart/form-data with a 'file' part")
        }
        return MultipartForm(parts: parts)
    }

    /// `form-data; name="file"; filename="a.wav"` → ["name": "file", "filename": "a.wav"].
    private static func parameters(_ header: String) -> [String: String] {
        var result: [String: String] = [:]
        for piece in header.split(separator: ";").dropFirst() {
            let pair = piece.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard pair.count == 2 else { continue }
            var value = pair[1]
            if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") { value = String(value.dropFirst().dropLast()) }
            result[pair[0].lowercased()] = value
        }
        return result
    }
}
