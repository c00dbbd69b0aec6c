// A read-only protobuf wire-format reader, just enough for ONNX files.
//
// Why not swift-protobuf: the converter needs a read-only subset of six messages (ModelProto,
// GraphProto, NodeProto, TensorProto, AttributeProto, ValueInfoProto). swift-protobuf would add
// a dependency, generated code for all of onnx.proto and a code-generator plugin build that costs
// minutes on a cold two-core machine, for about 200 lines of decoding. This reader also keeps
// `raw_data` as a byte range into the file instead of copying it.

/// Bytes of one file, shared (not copied) by every message and tensor parsed from it.
public final class ByteStore: @unchecked Sendable {
    /// The bytes (immutable).
    public let bytes: [UInt8]
    /// Where they came from (for messages).
    public let origin: String
    public init(bytes: [UInt8], origin: String) { self.bytes = bytes; self.origin = origin }
}

/// Why a protobuf message could not be decoded.
public struct ProtobufError: Error, Equatable, Sendable, CustomStringConvertible {
    /// What is wrong, with the byte offset.
    public var reason: String
    public var description: String { reason }
}

/// The wire types of protobuf encoding.
public enum WireType: UInt8, Sendable {
    case varint = 0, fixed64 = 1, lengthDelimited = 2, startGroup = 3, endGroup = 4, fixed32 = 5
}

/// Reads the fields of one message, in order, from a byte range of a `ByteStore`.
public struct ProtobufReader {
    public let store: ByteStore
    /// Next byte to read.
    public private(set) var position: Int
    /// One past the message's last byte.
    public let end: Int

    public init(_ store: ByteStore, range: Range<Int>? = nil) {
        self.store = store
        let r = range ?? 0 ..< store.bytes.count
        position = r.lowerBound
        end = r.upperBound
    }

    public var isAtEnd: Bool { position >= end }

    /// The next field's number and wire type, nil at the end of the message.
    public mutating func nextField() throws(ProtobufError) -> (number: Int, wireType: WireType)? {
        guard position < end else { return nil }
        let at = position
        let key = try readVarint()
        guard let wt = WireType(rawValue: UInt8(key & 7)) else {
            throw ProtobufError(reason: "invalid wire type \(key & 7) at byte \(at)")
        }
        let number = Int(key >> 3)
        guard number > 0, number < (1 << 29) else {
            throw ProtobufError(reason: "invalid field number \(number) at byte \(at)")
        }
        return (number, wt)
    }

    /// A base-128 varint (at most 10 bytes).
    public mutating func readVarint() throws(ProtobufError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        let start = position
        while true {
            guard position < end else { throw ProtobufError(reason: "varint runs past the end of its message at byte \(start)") }
            let b = store.bytes[position]
            position += 1
            guard shift < 64 else { throw ProtobufError(reason: "varint longer than 10 bytes at byte \(start)") }
            result |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { return result }
            shift += 7
        }
    }

    /// A little-endian 4-byte value.
    public mutating func readFixed32() throws(ProtobufError) -> UInt32 {
        guard end - position >= 4 else { throw ProtobufError(reason: "fixed32 runs past the end at byte \(position)") }
        var v: UInt32 = 0
        for i in 0..<4 { v |= UInt32(store.bytes[position + i]) << (8 * UInt32(i)) }
        position += 4
        return v
    }

    /// A little-endian 8-byte value.
    public mutating func readFixed64() throws(ProtobufError) -> UInt64 {
        guard end - position >= 8 else { throw ProtobufError(reason: "fixed64 runs past the end at byte \(position)") }
        var v: UInt64 = 0
        for i in 0..<8 { v |= UInt64(store.bytes[position + i]) << (8 * UInt64(i)) }
        position += 8
        return v
    }

    /// The byte range of a length-delimited field (bytes, string, sub-message, packed scalars).
    public mutating func readLengthDelimited() throws(ProtobufError) -> Range<Int> {
        let at = position
        let n = try readVarint()
        guard n <= UInt64(end - position) else {
            throw ProtobufError(reason: "length-delimited field of \(n) bytes at byte \(at) runs past the end of its message (\(end - position) left)")
        }
        let r = position ..< position + Int(n)
        position += Int(n)
        return r
    }

    /// A sub-message reader over the next length-delimited field.
    public mutating func readMessage() throws(ProtobufError) -> ProtobufReader {
        ProtobufReader(store, range: try readLengthDelimited())
    }

    /// A UTF-8 string field (invalid sequences are repaired, never trapped on).
    public mutating func readString() throws(ProtobufError) -> String {
        let r = try readLengthDelimited()
        return String(decoding: store.bytes[r], as: UTF8.self)
    }

    /// Skips a field's value of the given wire type.
    public mutating func skip(_ wireType: WireType) throws(ProtobufError) {
        switch wireType {
        case .varint: _ = try readVarint()
        case .fixed64: _ = try readFixed64()
        case .fixed32: _ = try readFixed32()
        case .lengthDelimited: _ = try readLengthDelimited()
        case .startGroup, .endGroup:
            throw ProtobufError(reason: "groups (deprecated wire types 3/4) are not supported, at byte \(position)")
        }
    }

    // MARK: Repeated scalars (packed or one per field)

    /// Appends a repeated varint field's values (`int64`, `int32`, enums; packed or not).
    public mutating func readVarints(_ wireType: WireType, into out: inout [Int64]) throws(ProtobufError) {
        switch wireType {
        case .varint: out.append(Int64(bitPattern: try readVarint()))
        case .lengthDelimited:
            var sub = try readMessage()
            while !sub.isAtEnd { out.append(Int64(bitPattern: try sub.readVarint())) }
        default: throw ProtobufError(reason: "repeated varint field with wire type \(wireType) at byte \(position)")
        }
    }

    /// Appends a repeated `float` field's values (packed or not).
    public mutating func readFloats(_ wireType: WireType, into out: inout [Float]) throws(ProtobufError) {
        switch wireType {
        case .fixed32: out.append(Float(bitPattern: try readFixed32()))
        case .lengthDelimited:
            var sub = try readMessage()
            guard (sub.end - sub.position) % 4 == 0 else {
                throw ProtobufError(reason: "packed floats of \(sub.end - sub.position) bytes (not a multiple of 4) at byte \(sub.position)")
            }
            out.reserveCapacity(out.count + (sub.end - sub.position) / 4)
            while !sub.isAtEnd { out.append(Float(bitPattern: try sub.readFixed32())) }
        default: throw ProtobufError(reason: "repeated float field with wire type \(wireType) at byte \(position)")
        }
    }

    /// Appends a repeated `double` field's values (packed or not).
    public mutating func readDoubles(_ wireType: WireType, into out: inout [Double]) throws(ProtobufError) {
        switch wireType {
        case .fixed64: out.append(Double(bitPattern: try readFixed64()))
        case .lengthDelimited:
            var sub = try readMessage()
            guard (sub.end - sub.position) % 8 == 0 else {
                throw ProtobufError(reason: "packed doubles of \(sub.end - sub.position) bytes (not a multiple of 8) at byte \(sub.position)")
            }
            while !sub.isAtEnd { out.append(Double(bitPattern: try sub.readFixed64())) }
        default: throw ProtobufError(reason: "repeated double field with wire type \(wireType) at byte \(position)")
        }
    }

    /// Fails unless the field has the wire type the schema gives it.
    public func expect(_ wireType: WireType, is wanted: WireType, field: String) throws(ProtobufError) {
        guard wireType == wanted else {
            throw ProtobufError(reason: "field \(field) has wire type \(wireType.rawValue), expected \(wanted.rawValue), near byte \(position)")
        }
    }
}
