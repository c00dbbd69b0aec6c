// NumPy's .npy format for float32 arrays: what `vani features --output` writes and what the
// reference fixtures are stored as.

import Foundation

/// Why an .npy file could not be read or written.
public enum NPYError: Error, CustomStringConvertible, Sendable, Equatable {
    case io(String)
    case notNPY(String)
    case unsupported(String)

    public var description: String {
        switch self {
        case .io(let detail): return "Cannot read or write the .npy file: \(detail). Check the path."
        case .notNPY(let detail): return "Not a valid .npy file: \(detail). Re-save it with numpy.save."
        case .unsupported(let detail):
            return "Unsupported .npy contents: \(detail). Save a C-ordered float32 array "
                + "(`np.save(f, a.astype(np.float32))`)."
        }
    }
}

/// Reads and writes `.npy` files (format 1.0 written; 1.0–3.0 read). Writes little-endian
/// float32 in C order; reads float32, float64, int16, int32 and int64 (converted to Float).
public enum NPY {
    /// Writes `values` with `shape` (row-major) as a float32 `.npy` file.
    public static func write(_ values: [Float], shape: [Int], to url: URL) throws(NPYError) {
        do {
            try encode(values, shape: shape).write(to: url, options: .atomic)
        } catch {
            throw .io("\(url.path): \(error.localizedDescription)")
        }
    }

    /// The bytes of a float32 `.npy` file holding `values` with `shape`.
    public static func encode(_ values: [Float], shape: [Int]) -> Data {
        precondition(shape.reduce(1, *) == values.count,
                     "NPY.encode: \(values.count) values for shape \(shape)")
        let dims = shape.map(String.init).joined(separator: ", ")
        let tuple = shape.count == 1 ? "(\(dims),)" : "(\(dims))"
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(tuple), }"
        // Magic (6) + version (2) + length (2) + header + "\n" is padded to 64 bytes.
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        let length = UInt16(header.utf8.count)
        data.append(contentsOf: [UInt8(length & 0xFF), UInt8(length >> 8)])
        data.append(contentsOf: Array(header.utf8))
        values.withUnsafeBufferPointer { buffer in
            for v in buffer {
                let bits = v.bitPattern.littleEndian
                withUnsafeBytes(of: bits) { data.append(contentsOf: $0) }
            }
        }
        return data
    }

    /// Reads an `.npy` file: its shape and its values in C order, as Float.
    public static func read(_ url: URL) throws(NPYError) -> (shape: [Int], values: [Float]) {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw .io("\(url.path): \(error.localizedDescription)")
        }
        return try decode(data)
    }

    /// Parses the bytes of an `.npy` file.
    public static func decode(_ data: Data) throws(NPYError) -> (shape: [Int], values: [Float]) {
        let bytes = [UInt8](data)
        guard bytes.count >= 10, bytes[0] == 0x93, Array(bytes[1..<6]) == Array("NUMPY".utf8) else {
            throw .notNPY("missing the \\x93NUMPY magic")
        }
        let major = bytes[6]
        let headerLength: Int
        let headerStart: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw .notNPY("short header") }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            headerStart = 12
        default:
            throw .unsupported("format version \(major)")
        }
        guard headerStart + headerLength <= bytes.count else { throw .notNPY("header runs past the end") }
        let header = String(decoding: bytes[headerStart..<(headerStart + headerLength)], as: UTF8.self)

        guard let descr = field(header, "descr") else { throw .notNPY("no 'descr' in \(header)") }
        let d = descr.trimmingCharacters(in: CharacterSet(charactersIn: "'\" "))
        guard let fortran = field(header, "fortran_order") else { throw .notNPY("no 'fortran_order'") }
        if fortran.trimmingCharacters(in: .whitespaces) != "False" {
            throw .unsupported("Fortran-ordered array")
        }
        guard let shapeText = field(header, "shape") else { throw .notNPY("no 'shape' in \(header)") }
        let shape = shapeText.trimmingCharacters(in: CharacterSet(charactersIn: "() "))
            .split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }.compactMap { Int($0) }
        guard shape.allSatisfy({ $0 >= 0 }) else { throw .notNPY("negative dimension in \(shapeText)") }
        let (count, overflow) = shape.reduce((1, false)) { acc, dim in
            let r = acc.0.multipliedReportingOverflow(by: dim)
            return (r.partialValue, acc.1 || r.overflow)
        }
        guard !overflow else { throw .notNPY("shape \(shapeText) too large") }

        let width: Int
        let convert: (UnsafeRawBufferPointer, Int) -> Float
        switch d {
        case "<f4", "|f4":
            width = 4; convert = { Float(bitPattern: $0.loadUnaligned(fromByteOffset: $1 * 4, as: UInt32.self).littleEndian) }
        case "<f8":
            width = 8; convert = { Float(Double(bitPattern: $0.loadUnaligned(fromByteOffset: $1 * 8, as: UInt64.self).littleEndian)) }
        case "<i2":
            width = 2; convert = { Float(Int16(littleEndian: $0.loadUnaligned(fromByteOffset: $1 * 2, as: Int16.self))) }
        case "<i4":
            width = 4; convert = { Float(Int32(littleEndian: $0.loadUnaligned(fromByteOffset: $1 * 4, as: Int32.self))) }
        case "<i8":
            width = 8; convert = { Float(Int64(littleEndian: $0.loadUnaligned(fromByteOffset: $1 * 8, as: Int64.self))) }
        default:
            throw .unsupported("dtype \(d)")
        }
        let start = headerStart + headerLength
        guard count <= (bytes.count - start) / width else {
            throw .notNPY("shape \(shape) needs \(count * width) bytes, file has \(bytes.count - start)")
        }
        let values = bytes[start...].withUnsafeBytes { raw in (0..<count).map { convert(raw, $0) } }
        return (shape, values)
    }

    /// The text of `key`'s value in the header dict (up to the next top-level comma or brace).
    private static func field(_ header: String, _ key: String) -> String? {
        guard let keyRange = header.range(of: "'\(key)'") ?? header.range(of: "\"\(key)\"") else { return nil }
        var rest = header[keyRange.upperBound...].drop(while: { $0 == " " || $0 == ":" })
        var depth = 0
        var value = ""
        while let c = rest.first {
            if c == "(" { depth += 1 }
            if c == ")" { depth -= 1 }
            if depth == 0 && (c == "," || c == "}") { break }
            value.append(c)
            rest = rest.dropFirst()
            if depth == 0 && c == ")" { break }
        }
        return value
    }
}
