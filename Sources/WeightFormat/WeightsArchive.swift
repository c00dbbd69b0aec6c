// The engine's side of the weights file: map it read-only, check the header strictly, hand out
// Float32 views without copying. Opening costs the header parse only, whatever the file's size.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// A safetensors file mapped into memory.
///
/// Immutable after `init` except for the "used" bookkeeping, which a lock guards; the mapping
/// lives as long as the archive or any `FloatWeights` that borrows from it.
public final class WeightsArchive: @unchecked Sendable {
    /// The file's `__metadata__` (empty when absent).
    public let metadata: [String: String]
    /// Path the archive was opened from (for messages).
    public let path: String
    /// Bytes of the file.
    public let fileSize: Int
    /// Offset of the data section from the start of the file.
    public let dataStart: Int

    private let base: UnsafeRawPointer
    private let infos: [String: TensorInfo]
    private let order: [String]
    private let lock = NSLock()
    private var used = Set<String>()

    /// Maps the file and validates its header: JSON form, known dtypes, non-negative shapes,
    /// every byte range inside the data section and equal to dtype × shape, no overlap, no hole.
    /// - Throws: `WeightFormatError` naming the file (and tensor) and what to do.
    public init(contentsOf url: URL) throws(WeightFormatError) {
        let path = url.path
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw .cannotOpen(path: path, reason: SafetensorsWriter.errnoText()) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .cannotOpen(path: path, reason: SafetensorsWriter.errnoText()) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw .cannotOpen(path: path, reason: "not a regular file") }
        let size = Int(st.st_size)
        guard size >= 8 else { throw .truncated(path: path, fileSize: size, needed: 8) }
        guard let m = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), m != MAP_FAILED else {
            throw .cannotOpen(path: path, reason: "mmap: " + SafetensorsWriter.errnoText())
        }
        let base = UnsafeRawPointer(m)
        do {
            let parsed = try Self.parseHeader(base: base, fileSize: size, path: path)
            self.metadata = parsed.metadata
            self.infos = parsed.infos
            self.order = parsed.order
            self.dataStart = parsed.dataStart
        } catch {
            munmap(m, size)
            throw error
        }
        self.base = base
        self.fileSize = size
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: base), fileSize) }

    /// Tensor names in file order.
    public var tensorNames: [String] { order }

    /// Dtype, shape and byte range of a tensor, nil if absent. Does not mark it used.
    public func info(_ name: String) -> TensorInfo? { infos[name] }

    /// The raw little-endian bytes of a tensor (borrowed from the mapping; valid while the
    /// archive lives). Does not mark it used.
    public func rawBytes(_ name: String) -> UnsafeRawBufferPointer? {
        guard let t = infos[name] else { return nil }
        return UnsafeRawBufferPointer(start: base + dataStart + t.dataOffsets.lowerBound,
                                      count: t.dataOffsets.count)
    }

    /// A tensor as stored (its dtype and bytes, nothing widened), checked against `shape` and
    /// recorded as used: for weights kept in a narrower type (bf16, int8 with scales) that a
    /// kernel reads directly.
    /// - Throws: `.missingTensor`, `.shapeMismatch`.
    public func raw(_ name: String, shape: [Int]) throws(WeightFormatError) -> RawTensor {
        guard let t = infos[name] else { throw .missingTensor(path: path, tensor: name) }
        guard t.shape == shape else {
            throw .shapeMismatch(path: path, tensor: name, expected: shape, actual: t.shape)
        }
        let bytes = UnsafeRawBufferPointer(start: base + dataStart + t.dataOffsets.lowerBound,
                                           count: t.dataOffsets.count)
        lock.lock(); used.insert(name); lock.unlock()
        return RawTensor(info: t, bytes: bytes, owner: self)
    }

    /// Float32 view of a tensor with the expected shape: borrows the mapping for aligned F32,
    /// widens F16/BF16 (and copies misaligned F32) into owned storage. Records the name as used.
    /// - Throws: `.missingTensor`, `.shapeMismatch`, `.unsupportedDType`.
    public func floats(_ name: String, shape: [Int]) throws(WeightFormatError) -> FloatWeights {
        guard let t = infos[name] else { throw .missingTensor(path: path, tensor: name) }
        guard t.shape == shape else {
            throw .shapeMismatch(path: path, tensor: name, expected: shape, actual: t.shape)
        }
        return try floats(name)
    }

    /// Float32 view of a tensor with whatever shape the file records. Records the name as used.
    public func floats(_ name: String) throws(WeightFormatError) -> FloatWeights {
        guard let t = infos[name] else { throw .missingTensor(path: path, tensor: name) }
        let start = base + dataStart + t.dataOffsets.lowerBound
        let n = t.count
        let result: FloatWeights
        switch t.dtype {
        case .f32:
            if Int(bitPattern: start) % MemoryLayout<Float>.alignment == 0 {
                result = FloatWeights(shape: t.shape,
                                      borrowing: start.assumingMemoryBound(to: Float.self), owner: self)
            } else {
                let p = UnsafeMutablePointer<Float>.allocate(capacity: max(n, 1))
                UnsafeMutableRawPointer(p).copyMemory(from: start, byteCount: n * 4)
                result = FloatWeights(shape: t.shape, owning: p)
            }
        case .f16, .bf16:
            let p = UnsafeMutablePointer<Float>.allocate(capacity: max(n, 1))
            let half = t.dtype == .f16
            for i in 0..<n {
                let bits = start.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)
                p[i] = half ? widenHalf(bits) : widenBFloat(bits)
            }
            result = FloatWeights(shape: t.shape, owning: p)
        default:
            throw .unsupportedDType(path: path, tensor: name, dtype: t.dtype.rawValue)
        }
        lock.lock(); used.insert(name); lock.unlock()
        return result
    }

    /// Hints that a tensor's pages are no longer needed (the kernel may drop them; they are read
    /// from the file again if touched). For tools that scan a large file once, such as
    /// `vani-convert --verify`; views of the tensor stay valid.
    public func evict(_ name: String) {
        guard let t = infos[name], t.dataOffsets.count > 0 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let end = dataStart + t.dataOffsets.upperBound
        // Whole pages only: a page shared with a neighbour that is still in use is simply kept.
        let firstFull = (dataStart + t.dataOffsets.lowerBound + page - 1) / page * page
        let lastFull = end / page * page
        guard lastFull > firstFull else { return }
        madvise(UnsafeMutableRawPointer(mutating: base + firstFull), lastFull - firstFull, Int32(MADV_DONTNEED))
    }

    /// Names never asked for through `floats`, in file order. The engine calls this after
    /// loading and refuses a file with tensors left over.
    public func unusedNames() -> [String] {
        lock.lock(); defer { lock.unlock() }
        return order.filter { !used.contains($0) }
    }

    // MARK: - Header validation

    struct Parsed {
        var metadata: [String: String]
        var infos: [String: TensorInfo]
        var order: [String]
        var dataStart: Int
    }

    static func parseHeader(base: UnsafeRawPointer, fileSize: Int, path: String)
        throws(WeightFormatError) -> Parsed
    {
        let n64 = base.loadUnaligned(as: UInt64.self).littleEndian
        guard n64 <= UInt64(fileSize - 8) else {
            // A length past the end is either truncation or garbage; absurd lengths are garbage.
            if n64 > 100_000_000 {
                throw .corruptHeader(path: path, reason: "the header length field says \(n64) bytes")
            }
            throw .truncated(path: path, fileSize: fileSize, needed: 8 + Int(n64))
        }
        let n = Int(n64)
        guard n >= 2 else { throw .corruptHeader(path: path, reason: "the header is \(n) bytes long") }
        let headerBytes = UnsafeRawBufferPointer(start: base + 8, count: n)
        guard headerBytes[0] == UInt8(ascii: "{") else {
            throw .corruptHeader(path: path, reason: "the header does not start with '{'")
        }
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: Data(headerBytes), options: [])
        } catch {
            throw .corruptHeader(path: path, reason: "the header is not valid JSON (\(error.localizedDescription))")
        }
        guard let object = json as? [String: Any] else {
            throw .corruptHeader(path: path, reason: "the header is not a JSON object")
        }
        var metadata: [String: String] = [:]
        if let meta = object["__metadata__"] {
            guard let dict = meta as? [String: Any] else {
                throw .corruptHeader(path: path, reason: "__metadata__ is not an object")
            }
            for (k, v) in dict {
                guard let s = v as? String else {
                    throw .corruptHeader(path: path, reason: "__metadata__['\(k)'] is not a string")
                }
                metadata[k] = s
            }
        }
        let dataStart = 8 + n
        let dataSize = fileSize - dataStart
        var infos: [String: TensorInfo] = [:]
        for (name, value) in object where name != "__metadata__" {
            guard let entry = value as? [String: Any] else {
                throw .badEntry(path: path, tensor: name, reason: "the entry is not an object")
            }
            guard let dtypeText = entry["dtype"] as? String else {
                throw .badEntry(path: path, tensor: name, reason: "no dtype")
            }
            guard let dtype = DType(rawValue: dtypeText) else {
                throw .badEntry(path: path, tensor: name, reason: "unknown dtype '\(dtypeText)'")
            }
            guard let shapeAny = entry["shape"] as? [Any], let shape = integers(shapeAny),
                  shape.allSatisfy({ $0 >= 0 }) else {
                throw .badEntry(path: path, tensor: name, reason: "shape is not a list of non-negative integers")
            }
            guard let offAny = entry["data_offsets"] as? [Any], let off = integers(offAny),
                  off.count == 2 else {
                throw .badEntry(path: path, tensor: name, reason: "data_offsets is not a pair of integers")
            }
            if off[1] > dataSize, off[0] >= 0, off[0] <= off[1] {
                // A range past the end: the file was cut short (or the header is garbage).
                throw .truncated(path: path, fileSize: fileSize, needed: dataStart + off[1])
            }
            guard off[0] >= 0, off[0] <= off[1] else {
                throw .badOffsets(path: path, tensor: name,
                                  reason: "bytes \(off[0])..<\(off[1]) lie outside the \(dataSize)-byte data section")
            }
            var count = 1
            for d in shape {
                let (c, overflow) = count.multipliedReportingOverflow(by: d)
                guard !overflow else { throw .badEntry(path: path, tensor: name, reason: "shape \(shape) overflows") }
                count = c
            }
            guard off[1] - off[0] == count * dtype.size else {
                throw .badOffsets(path: path, tensor: name,
                                  reason: "holds \(off[1] - off[0]) bytes but \(dtype.rawValue) \(shape) needs \(count * dtype.size)")
            }
            infos[name] = TensorInfo(name: name, dtype: dtype, shape: shape, dataOffsets: off[0] ..< off[1])
        }
        // Contiguous, no overlap, no hole, and the data section ends with the last tensor.
        let sorted = infos.values.sorted {
            ($0.dataOffsets.lowerBound, $0.dataOffsets.upperBound, $0.name)
                < ($1.dataOffsets.lowerBound, $1.dataOffsets.upperBound, $1.name)
        }
        var end = 0
        for t in sorted {
            guard t.dataOffsets.lowerBound == end else {
                let what = t.dataOffsets.lowerBound < end ? "overlaps the previous tensor" : "leaves a hole"
                throw .badOffsets(path: path, tensor: t.name,
                                  reason: "starts at byte \(t.dataOffsets.lowerBound) but the previous tensor ends at \(end) (\(what))")
            }
            end = t.dataOffsets.upperBound
        }
        guard end == dataSize else {
            if end > dataSize {
                throw .truncated(path: path, fileSize: fileSize, needed: dataStart + end)
            }
            throw .badOffsets(path: path, tensor: sorted.last?.name ?? "(none)",
                              reason: "the tensors end at byte \(end) but the data section has \(dataSize) bytes")
        }
        return Parsed(metadata: metadata, infos: infos, order: sorted.map(\.name), dataStart: dataStart)
    }

    private static func integers(_ values: [Any]) -> [Int]? {
        var out: [Int] = []
        out.reserveCapacity(values.count)
        for v in values {
            // JSONSerialization yields NSNumber; reject fractions and booleans.
            guard let number = v as? NSNumber, String(cString: number.objCType) != "c",
                  let i = Int(exactly: number.doubleValue), number.int64Value == Int64(i) else { return nil }
            out.append(i)
        }
        return out
    }
}

/// A Float32 tensor handed out by `WeightsArchive.floats`: borrowed from the mapping (which it
/// keeps alive) or owned (widened or realigned copy).
public final class FloatWeights: @unchecked Sendable {
    /// The tensor's shape as recorded in the file.
    public let shape: [Int]
    /// First element; valid as long as this object lives.
    public let pointer: UnsafePointer<Float>
    /// Elements.
    public var count: Int { shape.reduce(1, *) }
    /// The elements as a buffer; valid only while this object lives (keep a reference, or use
    /// `withUnsafeBufferPointer` or `array`).
    public var buffer: UnsafeBufferPointer<Float> { UnsafeBufferPointer(start: pointer, count: count) }
    /// Calls `body` with the elements while keeping the storage alive.
    public func withUnsafeBufferPointer<R, E: Error>(_ body: (UnsafeBufferPointer<Float>) throws(E) -> R) throws(E) -> R {
        defer { withExtendedLifetime(self) {} }
        return try body(buffer)
    }
    /// A copy of the elements.
    public var array: [Float] { withUnsafeBufferPointer { Array($0) } }

    private let owner: AnyObject?
    private let owned: UnsafeMutablePointer<Float>?

    init(shape: [Int], borrowing pointer: UnsafePointer<Float>, owner: AnyObject) {
        self.shape = shape; self.pointer = pointer; self.owner = owner; self.owned = nil
    }

    init(shape: [Int], owning pointer: UnsafeMutablePointer<Float>) {
        self.shape = shape; self.pointer = UnsafePointer(pointer); self.owner = nil; self.owned = pointer
    }

    /// Copies `values` into owned storage (for tests and computed tensors).
    public convenience init(shape: [Int], values: [Float]) {
        precondition(shape.reduce(1, *) == values.count, "FloatWeights: shape \(shape) needs \(shape.reduce(1, *)) values, got \(values.count)")
        let p = UnsafeMutablePointer<Float>.allocate(capacity: max(values.count, 1))
        p.initialize(from: values, count: values.count)
        self.init(shape: shape, owning: p)
    }

    deinit { owned?.deallocate() }
}

/// A tensor exactly as the file stores it, borrowed from the mapping (which it keeps alive):
/// what `WeightsArchive.raw` hands out for weights that stay in their stored type.
public struct RawTensor: @unchecked Sendable {
    /// Dtype, shape and byte range in the file.
    public let info: TensorInfo
    /// The little-endian bytes; valid while this value (or the archive) lives.
    public let bytes: UnsafeRawBufferPointer
    /// Keeps the mapping alive.
    let owner: WeightsArchive
    /// The stored element type.
    public var dtype: DType { info.dtype }
    /// The stored shape.
    public var shape: [Int] { info.shape }
}
