// The read-only subset of onnx.proto the converter needs, decoded with `ProtobufReader`.
// Field numbers are those of onnx/onnx.proto3 (IR version 8); unknown fields are skipped.

import Foundation

/// ONNX `TensorProto.DataType` values the converter meets.
public enum ONNXDataType: Int32, Sendable {
    case undefined = 0, float = 1, uint8 = 2, int8 = 3, uint16 = 4, int16 = 5, int32 = 6
    case int64 = 7, string = 8, bool = 9, float16 = 10, double = 11, uint32 = 12, uint64 = 13
    case complex64 = 14, complex128 = 15, bfloat16 = 16

    /// Bytes per element in `raw_data` (0 for strings).
    public var size: Int {
        switch self {
        case .undefined, .string: return 0
        case .uint8, .int8, .bool: return 1
        case .uint16, .int16, .float16, .bfloat16: return 2
        case .int32, .uint32, .float: return 4
        case .int64, .uint64, .double, .complex64: return 8
        case .complex128: return 16
        }
    }
}

/// A `TensorProto`: dims, type and where its data lives (not yet loaded for external data).
public struct ONNXTensor: Sendable {
    /// Where the elements are.
    public enum Storage: Sendable {
        /// `raw_data`: a byte range of the model file.
        case raw(Range<Int>)
        /// `float_data`.
        case floats([Float])
        /// `int32_data` (also float16/bfloat16/bool/int8/uint8/int16/uint16 bit patterns).
        case int32s([Int64])
        /// `int64_data` (also `uint64_data`).
        case int64s([Int64])
        /// `double_data`.
        case doubles([Double])
        /// `external_data`: file name relative to the model's folder, byte offset, length.
        case external(location: String, offset: Int, length: Int?)
        /// No data field at all (a zero-element tensor, or a malformed one).
        case none
    }

    public var name: String
    public var dataType: Int32
    public var dims: [Int]
    public var storage: Storage
    /// The bytes of the file this tensor was read from (for `raw`).
    public var store: ByteStore

    /// Known element type, nil for an unknown code.
    public var type: ONNXDataType? { ONNXDataType(rawValue: dataType) }
    /// Elements (product of dims; 1 for a scalar).
    public var count: Int { dims.reduce(1, *) }
}

/// An `AttributeProto` (graphs and sparse tensors are skipped: the converter never needs them).
public struct ONNXAttribute: Sendable {
    public var name: String
    /// `AttributeProto.AttributeType` (1 FLOAT, 2 INT, 3 STRING, 4 TENSOR, 6 FLOATS, 7 INTS, 8 STRINGS, …).
    public var type: Int
    public var f: Float = 0
    public var i: Int64 = 0
    public var s: [UInt8] = []
    public var t: ONNXTensor?
    public var floats: [Float] = []
    public var ints: [Int64] = []
    public var strings: [[UInt8]] = []
}

/// A `NodeProto`.
public struct ONNXNode: Sendable {
    public var name = ""
    public var opType = ""
    public var domain = ""
    public var inputs: [String] = []
    public var outputs: [String] = []
    public var attributes: [ONNXAttribute] = []

    /// The attribute called `name`, if present.
    public func attribute(_ name: String) -> ONNXAttribute? { attributes.first { $0.name == name } }
}

/// A `ValueInfoProto` of a tensor: element type and dims (`nil` for a symbolic or unknown dim).
public struct ONNXValueInfo: Sendable {
    public var name = ""
    public var elemType: Int32 = 0
    public var dims: [Int?] = []
    /// Symbolic dim names, parallel to `dims` ("" where the dim is a value).
    public var dimParams: [String] = []
}

/// A `GraphProto`.
public struct ONNXGraph: Sendable {
    public var name = ""
    public var nodes: [ONNXNode] = []
    public var initializers: [ONNXTensor] = []
    public var inputs: [ONNXValueInfo] = []
    public var outputs: [ONNXValueInfo] = []
    public var valueInfo: [ONNXValueInfo] = []
}

/// A `ModelProto`, plus the file it came from.
public struct ONNXModel: Sendable {
    public var irVersion: Int64 = 0
    /// `(domain, version)`; domain "" is the default `ai.onnx`.
    public var opsets: [(domain: String, version: Int64)] = []
    public var producerName = ""
    public var producerVersion = ""
    public var graph = ONNXGraph()
    /// The `.onnx` file (as given, before resolving symlinks).
    public var url: URL

    /// Decodes a model from the bytes of an `.onnx` file.
    /// - Throws: `ProtobufError` when the bytes are not a well-formed ModelProto.
    public init(store: ByteStore, url: URL) throws(ProtobufError) {
        self.url = url
        var r = ProtobufReader(store)
        var sawGraph = false
        while let (field, wt) = try r.nextField() {
            switch field {
            case 1: try r.expect(wt, is: .varint, field: "ModelProto.ir_version"); irVersion = Int64(bitPattern: try r.readVarint())
            case 2: try r.expect(wt, is: .lengthDelimited, field: "ModelProto.producer_name"); producerName = try r.readString()
            case 3: try r.expect(wt, is: .lengthDelimited, field: "ModelProto.producer_version"); producerVersion = try r.readString()
            case 7:
                try r.expect(wt, is: .lengthDelimited, field: "ModelProto.graph")
                var sub = try r.readMessage()
                graph = try Self.graph(&sub)
                sawGraph = true
            case 8:
                try r.expect(wt, is: .lengthDelimited, field: "ModelProto.opset_import")
                var sub = try r.readMessage()
                var domain = ""; var version: Int64 = 0
                while let (f, w) = try sub.nextField() {
                    switch f {
                    case 1: try sub.expect(w, is: .lengthDelimited, field: "OperatorSetIdProto.domain"); domain = try sub.readString()
                    case 2: try sub.expect(w, is: .varint, field: "OperatorSetIdProto.version"); version = Int64(bitPattern: try sub.readVarint())
                    default: try sub.skip(w)
                    }
                }
                opsets.append((domain, version))
            default: try r.skip(wt)
            }
        }
        guard sawGraph, irVersion > 0 else {
            throw ProtobufError(reason: "no graph or no ir_version: not an ONNX ModelProto")
        }
    }

    /// The default-domain opset version (0 if absent).
    public var opsetVersion: Int64 { opsets.first { $0.domain == "" || $0.domain == "ai.onnx" }?.version ?? 0 }

    // MARK: - Messages

    static func graph(_ r: inout ProtobufReader) throws(ProtobufError) -> ONNXGraph {
        var g = ONNXGraph()
        while let (field, wt) = try r.nextField() {
            switch field {
            case 1:
                try r.expect(wt, is: .lengthDelimited, field: "GraphProto.node")
                var sub = try r.readMessage(); g.nodes.append(try node(&sub))
            case 2: try r.expect(wt, is: .lengthDelimited, field: "GraphProto.name"); g.name = try r.readString()
            case 5:
                try r.expect(wt, is: .lengthDelimited, field: "GraphProto.initializer")
                var sub = try r.readMessage(); g.initializers.append(try tensor(&sub))
            case 11, 12, 13:
                try r.expect(wt, is: .lengthDelimited, field: "GraphProto.input/output/value_info")
                var sub = try r.readMessage()
                let v = try valueInfo(&sub)
                if field == 11 { g.inputs.append(v) } else if field == 12 { g.outputs.append(v) } else { g.valueInfo.append(v) }
            default: try r.skip(wt)
            }
        }
        return g
    }

    static func node(_ r: inout ProtobufReader) throws(ProtobufError) -> ONNXNode {
        var n = ONNXNode()
        while let (field, wt) = try r.nextField() {
            switch field {
            case 1: try r.expect(wt, is: .lengthDelimited, field: "NodeProto.input"); n.inputs.append(try r.readString())
            case 2: try r.expect(wt, is: .lengthDelimited, field: "NodeProto.output"); n.outputs.append(try r.readString())
            case 3: try r.expect(wt, is: .lengthDelimited, field: "NodeProto.name"); n.name = try r.readString()
            case 4: try r.expect(wt, is: .lengthDelimited, field: "NodeProto.op_type"); n.opType = try r.readString()
            case 7: try r.expect(wt, is: .lengthDelimited, field: "NodeProto.domain"); n.domain = try r.readString()
            case 5:
                try r.expect(wt, is: .lengthDelimited, field: "NodeProto.attribute")
                var sub = try r.readMessage(); n.attributes.append(try attribute(&sub))
            default: try r.skip(wt)
            }
        }
        return n
    }

    static func attribute(_ r: inout ProtobufReader) throws(ProtobufError) -> ONNXAttribute {
        var a = ONNXAttribute(name: "", type: 0)
        while let (field, wt) = try r.nextField() {
            switch field {
            case 1: try r.expect(wt, is: .lengthDelimited, field: "AttributeProto.name"); a.name = try r.readString()
            case 20: try r.expect(wt, is: .varint, field: "AttributeProto.type"); a.type = Int(truncatingIfNeeded: try r.readVarint())
            case 2: try r.expect(wt, is: .fixed32, field: "AttributeProto.f"); a.f = Float(bitPattern: try r.readFixed32())
            case 3: try r.expect(wt, is: .varint, field: "AttributeProto.i"); a.i = Int64(bitPattern: try r.readVarint())
            case 4:
                try r.expect(wt, is: .lengthDelimited, field: "AttributeProto.s")
                let range = try r.readLengthDelimited(); a.s = Array(r.store.bytes[range])
            case 5:
                try r.expect(wt, is: .lengthDelimited, field: "AttributeProto.t")
                var sub = try r.readMessage(); a.t = try tensor(&sub)
            case 7: try r.readFloats(wt, into: &a.floats)
            case 8: try r.readVarints(wt, into: &a.ints)
            case 9:
                try r.expect(wt, is: .lengthDelimited, field: "AttributeProto.strings")
                let range = try r.readLengthDelimited(); a.strings.append(Array(r.store.bytes[range]))
            default: try r.skip(wt)
            }
        }
        return a
    }

    static func tensor(_ r: inout ProtobufReader) throws(ProtobufError) -> ONNXTensor {
        var name = ""
        var dataType: Int32 = 0
        var dims: [Int64] = []
        var raw: Range<Int>?
        var floats: [Float] = [], doubles: [Double] = []
        var int32s: [Int64] = [], int64s: [Int64] = []
        var external: [String: String] = [:]
        var location: Int64 = 0
        while let (field, wt) = try r.nextField() {
            switch field {
            case 1: try r.readVarints(wt, into: &dims)
            case 2: try r.expect(wt, is: .varint, field: "TensorProto.data_type"); dataType = Int32(truncatingIfNeeded: try r.readVarint())
            case 4: try r.readFloats(wt, into: &floats)
            case 5: try r.readVarints(wt, into: &int32s)
            case 7, 11: try r.readVarints(wt, into: &int64s)
            case 8: try r.expect(wt, is: .lengthDelimited, field: "TensorProto.name"); name = try r.readString()
            case 9: try r.expect(wt, is: .lengthDelimited, field: "TensorProto.raw_data"); raw = try r.readLengthDelimited()
            case 10: try r.readDoubles(wt, into: &doubles)
            case 13:
                try r.expect(wt, is: .lengthDelimited, field: "TensorProto.external_data")
                var sub = try r.readMessage()
                var key = "", value = ""
                while let (f, w) = try sub.nextField() {
                    switch f {
                    case 1: try sub.expect(w, is: .lengthDelimited, field: "StringStringEntryProto.key"); key = try sub.readString()
                    case 2: try sub.expect(w, is: .lengthDelimited, field: "StringStringEntryProto.value"); value = try sub.readString()
                    default: try sub.skip(w)
                    }
                }
                external[key] = value
            case 14: try r.expect(wt, is: .varint, field: "TensorProto.data_location"); location = Int64(bitPattern: try r.readVarint())
            default: try r.skip(wt)
            }
        }
        guard dims.allSatisfy({ $0 >= 0 && $0 < (1 << 40) }) else {
            throw ProtobufError(reason: "tensor '\(name)' has invalid dims \(dims)")
        }
        let storage: ONNXTensor.Storage
        if location == 1 || !external.isEmpty {
            guard let loc = external["location"], !loc.isEmpty else {
                throw ProtobufError(reason: "tensor '\(name)' is marked external but has no 'location'")
            }
            guard let offset = Int(external["offset"] ?? "0"), offset >= 0 else {
                throw ProtobufError(reason: "tensor '\(name)' has an invalid external 'offset' '\(external["offset"] ?? "")'")
            }
            var length: Int?
            if let l = external["length"] {
                guard let v = Int(l), v >= 0 else {
                    throw ProtobufError(reason: "tensor '\(name)' has an invalid external 'length' '\(l)'")
                }
                length = v
            }
            storage = .external(location: loc, offset: offset, length: length)
        } else if let raw {
            storage = .raw(raw)
        } else if !floats.isEmpty {
            storage = .floats(floats)
        } else if !int32s.isEmpty {
            storage = .int32s(int32s)
        } else if !int64s.isEmpty {
            storage = .int64s(int64s)
        } else if !doubles.isEmpty {
            storage = .doubles(doubles)
        } else {
            storage = .none
        }
        return ONNXTensor(name: name, dataType: dataType, dims: dims.map { Int($0) }, storage: storage, store: r.store)
    }

    static func valueInfo(_ r: inout ProtobufReader) throws(ProtobufError) -> ONNXValueInfo {
        var v = ONNXValueInfo()
        while let (field, wt) = try r.nextField() {
            switch field {
            case 1: try r.expect(wt, is: .lengthDelimited, field: "ValueInfoProto.name"); v.name = try r.readString()
            case 2:
                try r.expect(wt, is: .lengthDelimited, field: "ValueInfoProto.type")
                var type = try r.readMessage()
                while let (f, w) = try type.nextField() {
                    guard f == 1, w == .lengthDelimited else { try type.skip(w); continue }   // tensor_type only
                    var tt = try type.readMessage()
                    while let (f2, w2) = try tt.nextField() {
                        switch f2 {
                        case 1: try tt.expect(w2, is: .varint, field: "TypeProto.Tensor.elem_type"); v.elemType = Int32(truncatingIfNeeded: try tt.readVarint())
                        case 2:
                            try tt.expect(w2, is: .lengthDelimited, field: "TypeProto.Tensor.shape")
                            var shape = try tt.readMessage()
                            while let (f3, w3) = try shape.nextField() {
                                guard f3 == 1, w3 == .lengthDelimited else { try shape.skip(w3); continue }
                                var dim = try shape.readMessage()
                                var value: Int?
                                var param = ""
                                while let (f4, w4) = try dim.nextField() {
                                    switch f4 {
                                    case 1: try dim.expect(w4, is: .varint, field: "Dimension.dim_value"); value = Int(Int64(bitPattern: try dim.readVarint()))
                                    case 2: try dim.expect(w4, is: .lengthDelimited, field: "Dimension.dim_param"); param = try dim.readString()
                                    default: try dim.skip(w4)
                                    }
                                }
                                v.dims.append(value)
                                v.dimParams.append(param)
                            }
                        default: try tt.skip(w2)
                        }
                    }
                }
            default: try r.skip(wt)
            }
        }
        return v
    }
}
