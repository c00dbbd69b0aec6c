// Element types and per-tensor descriptions of a safetensors file.

#if _endian(big)
#error("The weights file is little-endian; big-endian hosts are not supported.")
#endif

/// A safetensors element type, spelled as in the header (`"F32"`).
public enum DType: String, Sendable, CaseIterable, Codable {
    case f64 = "F64", f32 = "F32", f16 = "F16", bf16 = "BF16"
    case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8"
    case u64 = "U64", u32 = "U32", u16 = "U16", u8 = "U8"
    case bool = "BOOL"

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .f64, .i64, .u64: return 8
        case .f32, .i32, .u32: return 4
        case .f16, .bf16, .i16, .u16: return 2
        case .i8, .u8, .bool: return 1
        }
    }
}

/// A tensor the writer will write: name, dtype and shape (its bytes come later).
public struct TensorDeclaration: Sendable, Equatable {
    public var name: String
    public var dtype: DType
    public var shape: [Int]
    public init(name: String, dtype: DType, shape: [Int]) {
        self.name = name; self.dtype = dtype; self.shape = shape
    }
    /// Elements (product of the shape; 1 for a scalar).
    public var count: Int { shape.reduce(1, *) }
    /// Bytes of data.
    public var byteCount: Int { count * dtype.size }
}

/// One tensor of an opened file: dtype, shape and its byte range inside the data section.
public struct TensorInfo: Sendable, Equatable {
    public var name: String
    public var dtype: DType
    public var shape: [Int]
    /// Byte range relative to the start of the data section (the header's `data_offsets`).
    public var dataOffsets: Range<Int>
    /// Elements (product of the shape; 1 for a scalar).
    public var count: Int { shape.reduce(1, *) }
}

// MARK: - Half-precision widening

/// IEEE binary16 → binary32, exact (subnormals, infinities and NaN payloads kept).
/// Written by hand because `Float16` is unavailable on x86-64 macOS.
@inline(__always)
func widenHalf(_ h: UInt16) -> Float {
    let sign = UInt32(h & 0x8000) << 16
    let exponent = Int((h >> 10) & 0x1F)
    var mantissa = UInt32(h & 0x03FF)
    if exponent == 0x1F {                                   // inf / NaN
        return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
    }
    if exponent == 0 {
        if mantissa == 0 { return Float(bitPattern: sign) } // ±0
        var e = -1                                          // subnormal: normalise
        repeat { mantissa <<= 1; e += 1 } while mantissa & 0x0400 == 0
        mantissa &= 0x03FF
        return Float(bitPattern: sign | UInt32(127 - 15 - e) << 23 | (mantissa << 13))
    }
    return Float(bitPattern: sign | UInt32(exponent - 15 + 127) << 23 | (mantissa << 13))
}

/// bfloat16 → binary32 (the top half of a float32).
@inline(__always)
func widenBFloat(_ b: UInt16) -> Float { Float(bitPattern: UInt32(b) << 16) }

/// IEEE binary16 bits → Float32; public for the converter, which reads float16 ONNX tensors.
public func float16ToFloat(_ bits: UInt16) -> Float { widenHalf(bits) }
