// Streaming safetensors writer: the header is computed from the declared shapes up front, then
// the tensors' bytes are appended one by one, so converting a 2.4 GB model needs memory for one
// tensor at a time, never the whole model.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Writes one safetensors file.
///
/// Declare every tensor (name, dtype, shape) and the metadata at `init`; the writer lays them out
/// contiguously in the declared order, writes the header (padded with spaces so the data section
/// starts 64-byte aligned), then accepts each tensor's bytes with `write` in that same order.
/// The file appears under its final name only after `finish()`; until then it is
/// `<name>.partial`, which is removed if the writer is dropped unfinished.
public final class SafetensorsWriter {
    /// The declared tensors with their byte ranges in the data section.
    public let layout: [TensorInfo]
    /// Bytes of the whole file (header included).
    public let fileSize: Int
    /// Bytes before the data section (8 + padded header).
    public let dataStart: Int
    /// Data bytes written so far.
    public private(set) var bytesWritten = 0

    private let url: URL
    private let partialPath: String
    private var fd: Int32
    private var next = 0
    private var finished = false

    /// Creates `<url>.partial` and writes the header.
    /// - Throws: `WeightFormatError.writeFailed` on a duplicate or empty name, a negative
    ///   dimension, or an I/O error.
    public init(url: URL, tensors: [TensorDeclaration], metadata: [String: String])
        throws(WeightFormatError)
    {
        self.url = url
        partialPath = url.path + ".partial"
        var seen = Set<String>()
        var infos: [TensorInfo] = []
        var offset = 0
        for t in tensors {
            guard !t.name.isEmpty, t.name != "__metadata__", seen.insert(t.name).inserted else {
                throw .writeFailed(path: url.path, reason: "tensor name '\(t.name)' is empty, reserved or declared twice")
            }
            guard t.shape.allSatisfy({ $0 >= 0 }) else {
                throw .writeFailed(path: url.path, reason: "tensor '\(t.name)' has a negative dimension \(t.shape)")
            }
            infos.append(TensorInfo(name: t.name, dtype: t.dtype, shape: t.shape,
                                    dataOffsets: offset ..< offset + t.byteCount))
            offset += t.byteCount
        }
        layout = infos
        var header = Array(Self.headerJSON(infos, metadata: metadata).utf8)
        // Pad with spaces (valid JSON whitespace) so that 8 + header is a multiple of 64.
        while (8 + header.count) % 64 != 0 { header.append(0x20) }
        dataStart = 8 + header.count
        fileSize = dataStart + offset

        fd = open(partialPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw .writeFailed(path: partialPath, reason: Self.errnoText()) }
        var prefix = [UInt8](repeating: 0, count: 8)
        let n = UInt64(header.count)
        for i in 0..<8 { prefix[i] = UInt8(truncatingIfNeeded: n >> (8 * UInt64(i))) }
        let written = prefix.withUnsafeBytes { writeAllResult($0) }
            .flatMap { header.withUnsafeBytes { writeAllResult($0) } }
        if case .failure(let error) = written {
            close(fd); fd = -1; unlink(partialPath)
            throw error
        }
    }

    deinit {
        if fd >= 0 { close(fd) }
        if !finished { unlink(partialPath) }
    }

    /// The name of the tensor whose bytes `write` expects next, nil when all are written.
    public var nextTensor: String? { next < layout.count ? layout[next].name : nil }

    /// Appends the bytes of the next declared tensor; `name` must be that tensor and `bytes`
    /// exactly its size (little-endian elements).
    public func write(_ name: String, bytes: UnsafeRawBufferPointer) throws(WeightFormatError) {
        guard next < layout.count, layout[next].name == name else {
            throw .writeFailed(path: url.path, reason: "tensor '\(name)' written out of order; expected '\(nextTensor ?? "nothing more")'")
        }
        let expected = layout[next].dataOffsets.count
        guard bytes.count == expected else {
            throw .writeFailed(path: url.path, reason: "tensor '\(name)' got \(bytes.count) bytes, declared \(expected)")
        }
        try writeAll(bytes)
        bytesWritten += bytes.count
        next += 1
    }

    /// Appends the next declared tensor from Float32 values (the tensor must be declared F32).
    public func write(_ name: String, floats: UnsafeBufferPointer<Float>) throws(WeightFormatError) {
        if next < layout.count, layout[next].name == name, layout[next].dtype != .f32 {
            throw .writeFailed(path: url.path, reason: "tensor '\(name)' is declared \(layout[next].dtype.rawValue), got F32 values")
        }
        try write(name, bytes: UnsafeRawBufferPointer(floats))
    }

    /// Checks that every tensor was written, flushes, and renames `<name>.partial` to the name.
    public func finish() throws(WeightFormatError) {
        guard next == layout.count else {
            throw .writeFailed(path: url.path, reason: "finished after \(next) of \(layout.count) tensors; '\(layout[next].name)' is missing")
        }
        guard fsync(fd) == 0 || errno == EINVAL else {
            throw .writeFailed(path: partialPath, reason: Self.errnoText())
        }
        close(fd); fd = -1
        guard rename(partialPath, url.path) == 0 else {
            throw .writeFailed(path: url.path, reason: Self.errnoText())
        }
        finished = true
    }

    /// Writes a whole file from in-memory tensors (small files and tests).
    public static func write(url: URL, tensors: [(TensorDeclaration, [UInt8])],
                             metadata: [String: String]) throws(WeightFormatError) {
        let writer = try SafetensorsWriter(url: url, tensors: tensors.map(\.0), metadata: metadata)
        for (decl, bytes) in tensors {
            let r = bytes.withUnsafeBytes { b in
                Result { () throws(WeightFormatError) in try writer.write(decl.name, bytes: b) }
            }
            try r.get()
        }
        try writer.finish()
    }

    // MARK: - Internals

    private func writeAllResult(_ bytes: UnsafeRawBufferPointer) -> Result<Void, WeightFormatError> {
        Result { () throws(WeightFormatError) in try writeAll(bytes) }
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer) throws(WeightFormatError) {
        guard var p = bytes.baseAddress else { return }
        var left = bytes.count
        while left > 0 {
            let n = Glibc_write(fd, p, min(left, 1 << 30))
            if n < 0 {
                if errno == EINTR { continue }
                throw .writeFailed(path: partialPath, reason: Self.errnoText())
            }
            p += n; left -= n
        }
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }

    /// The header as compact JSON: `__metadata__` first (keys sorted), then the tensors in order.
    static func headerJSON(_ infos: [TensorInfo], metadata: [String: String]) -> String {
        var s = "{"
        var first = true
        if !metadata.isEmpty {
            s += "\"__metadata__\":{"
            s += metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(metadata[$0]!))" }
                .joined(separator: ",")
            s += "}"
            first = false
        }
        for t in infos {
            if !first { s += "," }
            first = false
            s += "\(jsonString(t.name)):{\"dtype\":\"\(t.dtype.rawValue)\",\"shape\":["
            s += t.shape.map(String.init).joined(separator: ",")
            s += "],\"data_offsets\":[\(t.dataOffsets.lowerBound),\(t.dataOffsets.upperBound)]}"
        }
        return s + "}"
    }

    /// A JSON string literal (RFC 8259 escapes; non-ASCII passes through as UTF-8).
    static func jsonString(_ text: String) -> String {
        var out = "\""
        for u in text.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20:
                let hex = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }
}

/// `write(2)` under a name that does not clash with the writer's own `write` methods.
@inline(__always)
private func Glibc_write(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int {
    #if canImport(Glibc) || canImport(Musl) || canImport(Darwin)
    return write(fd, p, n)
    #endif
}
