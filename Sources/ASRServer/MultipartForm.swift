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
        // MultipartKit 4.7 traps (indexes a 128-entry table) on a byte ≥ 0x80 in a part header's
        // name: such a body is refused here, before the library sees it.
        guard headerNamesAreASCII(body, boundary: boundary) else {
            throw APIError(.badRequest, status: .badRequest,
                           "the multipart body is malformed (a part header name is not ASCII): send multipart/form-data with a 'file' part")
        }
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

    /// True unless a line of a part's header block has a byte ≥ 0x80 before its first colon.
    /// A header block runs from the line after a delimiter (`--boundary` at the start or
    /// `CRLF--boundary`) to the first empty line; every delimiter is looked at, so the check is
    /// at least as wide as the parser's own view of where headers are.
    static func headerNamesAreASCII(_ body: ByteBuffer, boundary: String) -> Bool {
        body.withUnsafeReadableBytes { raw -> Bool in
            let bytes = raw.bindMemory(to: UInt8.self)
            let delimiter = Array("--\(boundary)".utf8)
            let n = bytes.count
            func matches(_ pattern: [UInt8], at i: Int) -> Bool {
                guard i >= 0, i + pattern.count <= n else { return false }
                for k in 0..<pattern.count where bytes[i + k] != pattern[k] { return false }
                return true
            }
            var i = 0
            while i < n {
                // A delimiter starts the body or follows CRLF.
                let atDelimiter = matches(delimiter, at: i)
                    && (i == 0 || (i >= 2 && bytes[i - 2] == 13 && bytes[i - 1] == 10))
                guard atDelimiter else { i += 1; continue }
                // Skip to the end of the delimiter line, then check header lines up to an empty one.
                var j = i + delimiter.count
                while j < n && bytes[j] != 10 { j += 1 }
                j += 1
                while j < n {
                    let lineStart = j
                    var sawColon = false
                    while j < n && bytes[j] != 10 {
                        if bytes[j] == UInt8(ascii: ":") { sawColon = true }
                        if !sawColon && bytes[j] >= 0x80 { return false }
                        j += 1
                    }
                    let lineLength = j - lineStart
                    j += 1
                    if lineLength == 0 || (lineLength == 1 && bytes[lineStart] == 13) { break }   // end of headers
                }
                i = j
            }
            return true
        }
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
