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

    /// Parses a request body. `NaN`, `Infinity` and `-Infinity` outside strings — what Python's
    /// `json` writes for a DataFrame's gaps, and what MLflow's own scoring server accepts — read
    /// as null, i.e. a missing value.
    /// - Throws: `BAD_REQUEST` saying what is wrong, in words for the client (never a type name).
    static func parse(_ buffer: ByteBuffer) throws(APIError) -> JSONValue {
        guard buffer.readableBytes > 0 else { throw APIError.badJSON("the body is empty") }
        // Parse the buffer in place: a copy would double the memory of a 160 MiB body.
        let first: Result<JSONValue, any Error> = buffer.withUnsafeReadableBytes { raw in
            let bytes = Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: raw.baseAddress!), count: raw.count,
                             deallocator: .none)
            return Result { try JSONDecoder().decode(JSONValue.self, from: bytes) }
        }
        switch first {
        case .success(let value): return value
        case .failure(let error):
            if let rewritten = buffer.withUnsafeReadableBytes({ pythonConstantsAsNull($0) }),
               let value = try? JSONDecoder().decode(JSONValue.self, from: rewritten) {
                return value
            }
            throw APIError.badJSON(describe(error))
        }
    }

    /// The bytes with `NaN`, `Infinity` and `-Infinity` outside strings replaced by `null`, or
    /// nil when there are none.
    static func pythonConstantsAsNull(_ raw: UnsafeRawBufferPointer) -> Data? {
        let bytes = raw.bindMemory(to: UInt8.self)
        let tokens: [[UInt8]] = [Array("-Infinity".utf8), Array("Infinity".utf8), Array("NaN".utf8)]
        var out = Data()
        var inString = false, escaped = false, replaced = false
        var i = 0
        outer: while i < bytes.count {
            let byte = bytes[i]
            if inString {
                if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true }
                else if byte == UInt8(ascii: "\"") { inString = false }
            } else if byte == UInt8(ascii: "\"") {
                inString = true
            } else if byte == UInt8(ascii: "N") || byte == UInt8(ascii: "I") || byte == UInt8(ascii: "-") {
                for token in tokens where i + token.count <= bytes.count
                    && zip(token, bytes[i..<(i + token.count)]).allSatisfy({ $0 == $1 }) {
                    out.append(contentsOf: Array("null".utf8))
                    i += token.count
                    replaced = true
                    continue outer
                }
            }
            out.append(byte)
            i += 1
        }
        return replaced ? out : nil
    }

    /// What is wrong with a body the decoder refused, in words for the client.
    private static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.dataCorrupted:
            return "it is not well-formed JSON"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
            let path = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return "a value\(path.isEmpty ? "" : " at \(clip(path, to: 60))") cannot be read (a number out of range?)"
        default:
            return "it cannot be read"
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
