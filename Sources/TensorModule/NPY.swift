// NumPy .npy files (format 1.0/2.0, little-endian float32/float64, C or Fortran order): the reference dumps the
// tests compare against and the `vani features` output.

import Foundation

/// Errors reading an .npy file.
public enum NPYError: Error, CustomStringConvertible, Sendable {
    case unreadable(String)
    case badHeader(String)

    public var description: String {
        switch self {
        case .unreadable(let path): return "cannot read \(path): check the path"
        case .badHeader(let why): return "not a float32 C-order .npy file (\(why)): save it with numpy.save(x.astype('<f4'))"
        }
    }
}

/// Reads and writes float32 .npy arrays.
public enum NPY {
    /// Reads a little-endian float32 (or float64, narrowed) array, C or Fortran order, as C order.
    public static func read(_ url: URL) throws -> (shape: [Int], values: [Float]) {
        guard let data = try? Data(contentsOf: url) else { throw NPYError.unreadable(url.path) }
        return try parse(data)
    }

    /// Parses .npy bytes.
    public static func parse(_ data: Data) throws -> (shape: [Int], values: [Float]) {
        let bytes = [UInt8](data)
        guard bytes.count >= 10, bytes[0] == 0x93, Array(bytes[1...5]) == Array("NUMPY".utf8) else {
            throw NPYError.badHeader("missing magic")
        }
        let major = bytes[6]
        let headerLength: Int
        let headerStart: Int
        if major == 1 {
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        } else {
            guard bytes.count >= 12 else { throw NPYError.badHeader("short header") }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            headerStart = 12
        }
        guard headerStart + headerLength <= bytes.count,
              let header = String(bytes: bytes[headerStart..<headerStart + headerLength], encoding: .ascii) else {
            throw NPYError.badHeader("truncated header")
        }
        let fortran = header.contains("'fortran_order': True")
        let isF8 = header.contains("'<f8'")
        guard header.contains("'<f4'") || isF8 else { throw NPYError.badHeader("dtype in \(header)") }
        guard let open = header.range(of: "'shape': ("), let close = header[open.upperBound...].firstIndex(of: ")") else {
            throw NPYError.badHeader("no shape")
        }
        let shape = header[open.upperBound..<close].split(separator: ",")
            .compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        let count = shape.reduce(1, *)
        let start = headerStart + headerLength
        let width = isF8 ? 8 : 4
        guard bytes.count - start >= count * width else { throw NPYError.badHeader("data shorter than shape \(shape)") }
        var values = [Float](repeating: 0, count: count)
        bytes.withUnsafeBytes { raw in
            for i in 0..<count {
                if isF8 {
                    values[i] = Float(Double(bitPattern: raw.loadUnaligned(fromByteOffset: start + 8 * i, as: UInt64.self).littleEndian))
                } else {
                    values[i] = Float(bitPattern: raw.loadUnaligned(fromByteOffset: start + 4 * i, as: UInt32.self).littleEndian)
                }
            }
        }
        if fortran && shape.count > 1 {
            // Column-major on disk: element (i0, i1, …) sits at i0 + s0·(i1 + s1·(…)). Reorder to C order.
            var c = [Float](repeating: 0, count: count)
            var index = [Int](repeating: 0, count: shape.count)
            for flat in 0..<count {
                var f = 0
                var stride = 1
                for axis in 0..<shape.count { f += index[axis] * stride; stride *= shape[axis] }
                c[flat] = values[f]
                var axis = shape.count - 1
                while axis >= 0 {
                    index[axis] += 1
                    if index[axis] < shape[axis] { break }
                    index[axis] = 0
                    axis -= 1
                }
            }
            values = c
        }
        return (shape, values)
    }

    /// .npy bytes (format 1.0) for a float32 array of `shape`.
    public static func encode(_ values: [Float], shape: [Int]) -> Data {
        precondition(shape.reduce(1, *) == values.count, "shape \(shape) does not hold \(values.count) values")
        let dims = shape.map(String.init).joined(separator: ", ") + (shape.count == 1 ? "," : "")
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(dims)), }"
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        let length = UInt16(header.utf8.count)
        data.append(contentsOf: [UInt8(length & 0xff), UInt8(length >> 8)])
        data.append(contentsOf: Array(header.utf8))
        for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
        return data
    }

    /// Writes a float32 array of `shape` to `url`.
    public static func write(_ values: [Float], shape: [Int], to url: URL) throws {
        try encode(values, shape: shape).write(to: url)
    }
}
