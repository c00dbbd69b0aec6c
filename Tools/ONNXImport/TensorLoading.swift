// Loading an ONNX file and the elements of its tensors: raw_data, typed fields, external data
// (symlinks resolved, sizes checked), float16/bfloat16/double widened or narrowed to float32.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import WeightFormat

/// Reads a whole file; errors name the file.
func readFile(_ url: URL, purpose: String) throws(ONNXImportError) -> [UInt8] {
    let path = url.path
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
        throw .missingFile(path: path, purpose: purpose)
    }
    guard !isDir.boolValue else { throw .unreadable(path: path, reason: "it is a directory") }
    let (fd, size) = try openForReading(path)
    defer { close(fd) }
    var bytes = [UInt8](repeating: 0, count: size)
    let got = bytes.withUnsafeMutableBytes { preadAll(fd, $0, offset: 0) }
    guard got == size else { throw .unreadable(path: path, reason: "read \(got) of \(size) bytes") }
    return bytes
}

/// Opens `path` read-only and returns the descriptor (the caller closes it) and the file's size.
func openForReading(_ path: String) throws(ONNXImportError) -> (fd: Int32, size: Int) {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { throw .unreadable(path: path, reason: String(cString: strerror(errno))) }
    var st = stat()
    guard fstat(fd, &st) == 0 else {
        let reason = String(cString: strerror(errno))
        close(fd)
        throw .unreadable(path: path, reason: reason)
    }
    return (fd, Int(st.st_size))
}

/// `pread` until `buffer` is full or the file ends; returns bytes read (-1 on error).
func preadAll(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer, offset: Int) -> Int {
    var done = 0
    while done < buffer.count {
        let n = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset + done))
        if n < 0 { if errno == EINTR { continue }; return -1 }
        if n == 0 { break }
        done += n
    }
    return done
}

/// Loads and decodes an `.onnx` file.
public func loadONNX(_ url: URL, purpose: String) throws(ONNXImportError) -> ONNXModel {
    let bytes = try readFile(url, purpose: purpose)
    do {
        return try ONNXModel(store: ByteStore(bytes: bytes, origin: url.path), url: url)
    } catch {
        throw .malformedONNX(path: url.path, reason: error.reason)
    }
}

/// The canonical path of a file (symlinks resolved, as in the Hugging Face cache).
func resolved(_ url: URL) -> URL {
    guard let p = realpath(url.path, nil) else { return url }
    defer { free(p) }
    return URL(fileURLWithPath: String(cString: p))
}

extension ONNXTensor {
    /// The tensor's elements as float32, in row-major order.
    ///
    /// float32 is copied bit for bit; float16 and bfloat16 are widened exactly; double is rounded.
    /// External data is read from `directory/location` (symlinks followed) at `offset`.
    /// - Throws: `.missingFile`, `.shortExternalData`, `.unsupportedTensor`.
    public func floatValues(directory: URL, graphPath: String) throws(ONNXImportError) -> [Float] {
        guard let type, [.float, .float16, .bfloat16, .double].contains(type) else {
            throw .unsupportedTensor(path: graphPath, tensor: name, reason: "element type \(dataType) is not a floating-point type")
        }
        let n = count
        switch storage {
        case .floats(let v):
            guard type == .float else {
                throw .unsupportedTensor(path: graphPath, tensor: name, reason: "float_data used for element type \(dataType)")
            }
            return try checked(v, n, graphPath)
        case .doubles(let v):
            return try checked(v.map { Float($0) }, n, graphPath)
        case .int32s(let v):
            // float16 / bfloat16 bit patterns live in int32_data.
            guard type == .float16 || type == .bfloat16 else {
                throw .unsupportedTensor(path: graphPath, tensor: name, reason: "int32_data used for element type \(dataType)")
            }
            let half = type == .float16
            return try checked(v.map { half ? float16ToFloat(UInt16(truncatingIfNeeded: $0)) : Float(bitPattern: UInt32(UInt16(truncatingIfNeeded: $0)) << 16) }, n, graphPath)
        case .int64s:
            throw .unsupportedTensor(path: graphPath, tensor: name, reason: "int64_data used for element type \(dataType)")
        case .none:
            guard n == 0 else {
                throw .unsupportedTensor(path: graphPath, tensor: name, reason: "no data for \(n) elements")
            }
            return []
        case .raw(let range):
            guard range.count == n * type.size else {
                throw .unsupportedTensor(path: graphPath, tensor: name, reason: "raw_data holds \(range.count) bytes but \(dims) of type \(dataType) needs \(n * type.size)")
            }
            return store.bytes.withUnsafeBytes { all in
                Self.decode(UnsafeRawBufferPointer(rebasing: all[range]), type: type, count: n)
            }
        case let .external(location, offset, length):
            let expected = n * type.size
            if let length, length != expected {
                throw .unsupportedTensor(path: graphPath, tensor: name, reason: "external 'length' \(length) but \(dims) of type \(dataType) needs \(expected) bytes")
            }
            guard !location.hasPrefix("/"), !location.split(separator: "/").contains("..") else {
                throw .unsupportedTensor(path: graphPath, tensor: name, reason: "external location '\(location)' leaves the model folder")
            }
            let file = directory.appendingPathComponent(location)
            let path = file.path
            // A dangling symlink (Hugging Face cache with a missing blob) is a missing file too.
            guard FileManager.default.fileExists(atPath: path) else {
                throw .missingFile(path: path, purpose: "external data of tensor '\(name)' in \(graphPath)")
            }
            let (fd, size) = try openForReading(path)
            defer { close(fd) }
            guard offset + expected <= size else {
                throw .shortExternalData(tensor: name, path: resolved(file).path, needed: offset + expected, size: size)
            }
            if type == .float {
                var out = [Float](repeating: 0, count: n)
                let got = out.withUnsafeMutableBytes { preadAll(fd, $0, offset: offset) }
                guard got == expected else {
                    throw .shortExternalData(tensor: name, path: resolved(file).path, needed: offset + expected, size: offset + max(got, 0))
                }
                return out
            }
            var raw = [UInt8](repeating: 0, count: expected)
            let got = raw.withUnsafeMutableBytes { preadAll(fd, $0, offset: offset) }
            guard got == expected else {
                throw .shortExternalData(tensor: name, path: resolved(file).path, needed: offset + expected, size: offset + max(got, 0))
            }
            return raw.withUnsafeBytes { Self.decode($0, type: type, count: n) }
        }
    }

    /// The tensor's elements as Int64 (integer and bool types; for shapes and small constants).
    public func intValues(directory: URL, graphPath: String) throws(ONNXImportError) -> [Int64] {
        guard let type, [.int64, .int32, .int16, .int8, .uint8, .uint16, .uint32, .uint64, .bool].contains(type) else {
            throw .unsupportedTensor(path: graphPath, tensor: name, reason: "element type \(dataType) is not an integer type")
        }
        switch storage {
        case .int32s(let v), .int64s(let v): return v
        case .raw(let range):
            let size = type.size
            guard range.count == count * size else {
                throw .unsupportedTensor(path: graphPath, tensor: name, reason: "raw_data holds \(range.count) bytes for \(count) elements")
            }
            return store.bytes.withUnsafeBytes { all in
                let b = UnsafeRawBufferPointer(rebasing: all[range])
                return (0..<count).map { i -> Int64 in
                    switch type {
                    case .int64, .uint64: return b.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self)
                    case .int32: return Int64(b.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self))
                    case .uint32: return Int64(b.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))
                    case .int16: return Int64(b.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self))
                    case .uint16: return Int64(b.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                    case .int8: return Int64(Int8(bitPattern: b[i]))
                    default: return Int64(b[i])
                    }
                }
            }
        case .none where count == 0: return []
        default:
            throw .unsupportedTensor(path: graphPath, tensor: name, reason: "integer tensor stored externally or in a float field")
        }
    }

    private func checked(_ v: [Float], _ n: Int, _ graphPath: String) throws(ONNXImportError) -> [Float] {
        guard v.count == n else {
            throw .unsupportedTensor(path: graphPath, tensor: name, reason: "holds \(v.count) values but dims \(dims) need \(n)")
        }
        return v
    }

    static func decode(_ b: UnsafeRawBufferPointer, type: ONNXDataType, count n: Int) -> [Float] {
        switch type {
        case .float:
            return [Float](unsafeUninitializedCapacity: n) { out, done in
                UnsafeMutableRawBufferPointer(out).copyMemory(from: UnsafeRawBufferPointer(rebasing: b[0 ..< 4 * n]))
                done = n
            }
        case .float16:
            return (0..<n).map { float16ToFloat(b.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self)) }
        case .bfloat16:
            return (0..<n).map { Float(bitPattern: UInt32(b.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self)) << 16) }
        default:
            return (0..<n).map { Float(b.loadUnaligned(fromByteOffset: 8 * $0, as: Double.self)) }
        }
    }
}
