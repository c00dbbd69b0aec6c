// A JSON document as plain values, so the service can accept several field names and report
// wrong types by field name instead of Codable's coding paths.

import Foundation
import Hummingbird

/// Any JSON value.
enum JSONValue: Decodable, Sendable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null; return }
        if let value = try? container.decode(Bool.self) { self = .bool(value); return }
        if let value = try? container.decode(Double.self) { self = .number(value); return }
        if let value = try? container.decode(String.self) { self = .string(value); return }
        if let value = try? container.decode([JSONValue].self) { self = .array(value); return }
        self = .object(try container.decode([String: JSONValue].self))
    }

    /// Parses a request body.
    /// - Throws: `BAD_REQUEST` naming what is wrong with the JSON.
    static func parse(_ buffer: ByteBuffer) throws(APIError) -> JSONValue {
        guard buffer.readableBytes > 0 else { throw APIError.badJSON("the body is empty") }
        do {
            // Parse the buffer in place: a copy would double the memory of a 160 MiB body.
            return try buffer.withUnsafeReadableBytes { raw in
                let bytes = Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: raw.baseAddress!), count: raw.count,
                                 deallocator: .none)
                return try JSONDecoder().decode(JSONValue.self, from: bytes)
            }
        } catch let DecodingError.dataCorrupted(context) {
            throw APIError.badJSON(context.underlyingError.map { short($0) } ?? context.debugDescription)
        } catch {
            throw APIError.badJSON(short(error))
        }
    }

    /// The name of the type for messages: "a string", "an array", ….
    var kind: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

/// The first line of an error's description, cut to a length fit for a client message.
private func short(_ error: any Error) -> String {
    let text = "\(error)".split(separator: "\n").first.map(String.init) ?? "unreadable"
    return text.count > 200 ? String(text.prefix(200)) + "…" : text
}

/// Encodes response bodies.
enum JSONBody {
    static func encode<T: Encodable>(_ value: T) -> ByteBuffer {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Every type encoded here is made of strings, numbers and arrays: encoding cannot fail.
        let data = (try? encoder.encode(value)) ?? Data(#"{"error_code":"INTERNAL_ERROR","message":"encoding failed"}"#.utf8)
        return ByteBuffer(bytes: data)
    }
}
