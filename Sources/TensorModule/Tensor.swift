// Tensor: an owned, 64-byte aligned float32 buffer with a row-major shape, and the scratch
// arena that lets a forward pass run with no allocation inside its layer loop.

/// An owned float32 tensor, row-major, 64-byte aligned.
///
/// The storage is a class so a `Tensor` is cheap to pass around; it is `@unchecked Sendable`
/// because the engine only writes a tensor before sharing it (weights) or keeps it private to
/// one call (activations).
public struct Tensor: @unchecked Sendable {
    public let shape: [Int]
    private let storage: AlignedBuffer

    /// A zero-filled tensor of `shape`.
    public init(zeros shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        self.shape = shape
        self.storage = AlignedBuffer(count: shape.reduce(1, *))
    }

    /// A tensor holding `values` (row-major) with `shape`.
    public init(shape: [Int], values: [Float]) {
        precondition(shape.reduce(1, *) == values.count,
                     "shape \(shape) holds \(shape.reduce(1, *)) values, got \(values.count)")
        self.init(zeros: shape)
        values.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { storage.pointer.update(from: base, count: values.count) }
        }
    }

    /// Number of elements.
    public var count: Int { storage.count }
    /// Mutable pointer to the first element.
    public var pointer: UnsafeMutablePointer<Float> { storage.pointer }
    /// The elements, copied out.
    public var values: [Float] { Array(UnsafeBufferPointer(start: storage.pointer, count: storage.count)) }
}

/// A 64-byte aligned allocation of floats, freed with its owner; zero-filled unless the owner
/// promises to write before reading (the scratch arena).
final class AlignedBuffer {
    let pointer: UnsafeMutablePointer<Float>
    let count: Int

    init(count: Int, zeroed: Bool = true) {
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 4, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        if zeroed { pointer.initialize(repeating: 0, count: max(count, 1)) }
    }

    deinit { UnsafeMutableRawPointer(pointer).deallocate() }
}

/// A bump allocator over one aligned block: plan the whole forward pass's scratch once,
/// hand out slices with `allocate`, and `reset` between calls. Not thread-safe: one arena per call.
public final class ScratchArena {
    private let buffer: AlignedBuffer
    private var used = 0
    /// A measuring arena hands out no memory: it only counts what is asked of it.
    private let measuring: Bool

    /// An arena holding `capacity` floats.
    public init(capacity: Int) {
        buffer = AlignedBuffer(count: capacity, zeroed: false)
        measuring = false
    }

    private init(measuring: Void) {
        buffer = AlignedBuffer(count: 16, zeroed: false)
        self.measuring = true
    }

    /// The capacity `carve` needs: runs it on an arena that only counts (the pointers it hands
    /// out must not be used), so a plan's size comes from the very code that carves it.
    public static func capacity(for carve: (ScratchArena) -> Void) -> Int {
        let arena = ScratchArena(measuring: ())
        carve(arena)
        return arena.used
    }

    /// Floats the arena holds.
    public var capacity: Int { buffer.count }
    /// Floats handed out since the last reset (or rewind).
    public var allocated: Int { used }

    /// A slice of `count` floats, 64-byte aligned, with unspecified contents.
    /// A request past the capacity is a planning bug and stops the program.
    public func allocate(_ count: Int) -> UnsafeMutablePointer<Float> {
        let start = used
        let rounded = (count + 15) & ~15
        if measuring {
            used = start + rounded
            return buffer.pointer
        }
        precondition(start + rounded <= buffer.count,
                     "scratch arena overflow: \(start) + \(rounded) floats > capacity \(buffer.count)")
        used = start + rounded
        return buffer.pointer + start
    }

    /// A zero-filled slice of `count` floats.
    public func allocateZeroed(_ count: Int) -> UnsafeMutablePointer<Float> {
        let p = allocate(count)
        if !measuring { p.update(repeating: 0, count: count) }
        return p
    }

    /// Releases everything handed out.
    public func reset() { used = 0 }

    /// A mark to `rewind` to, releasing what was handed out after it.
    public var mark: Int { used }
    public func rewind(to mark: Int) {
        precondition(mark <= used, "rewind past the current position")
        used = mark
    }

    /// Floats `allocate(count)` takes, alignment included: use it when planning a capacity.
    public static func footprint(_ count: Int) -> Int { (count + 15) & ~15 }
}
