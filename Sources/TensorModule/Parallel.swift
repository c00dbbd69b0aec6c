// Fork-join parallel loops on the C pool of CKernels (pool.c): the caller takes part, nothing is
// allocated per step, and a step started from inside a task (or while another thread holds the
// pool) runs serially, so nested or concurrent use is safe.

import CKernels

/// Parallel loops over the threads set by `BLAS.setThreads`.
public enum Parallel {
    /// Threads taking part in a step, the caller included.
    public static var threads: Int { Int(vani_pool_threads()) }

    /// Runs `body` with steps started on this thread using `threads` threads, without changing
    /// the process setting (for code embedding Vani that wants its own setting per call, and for
    /// tests that must not disturb others). `body` must not move to another thread (no `await`).
    public static func withThreads<T>(_ threads: Int, _ body: () throws -> T) rethrows -> T {
        let previous = vani_pool_set_local_threads(Int32(max(1, threads)))
        defer { vani_pool_set_local_threads(previous) }
        return try body()
    }

    /// True on a thread that is running a task of a step.
    public static var inTask: Bool { vani_pool_in_task() != 0 }

    /// GEMMs with fewer floating-point operations than this run on one thread (a split would
    /// cost more in hand-over than it saves: about 20 µs of work).
    public static let minimumGEMMWork = 8_000_000

    /// Runs `body(i)` for every i in 0..<count, spread over the pool; returns when all are done.
    /// `body` must be safe to call from several threads at once for different indices.
    public static func forEach(_ count: Int, _ body: (Int) -> Void) {
        if count <= 0 { return }
        if count == 1 { return body(0) }
        // pool.c decides whether to share the step or run it serially here.
        withoutActuallyEscaping(body) { escapable in
            var task = escapable
            withUnsafeMutablePointer(to: &task) { pointer in
                vani_pool_run(count, { context, index in
                    context!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(index)
                }, pointer)
            }
        }
    }

    /// Splits 0..<count into at most `threads` contiguous ranges of at least `minimumChunk`
    /// items and runs `body(range)` on each in parallel.
    public static func forRanges(_ count: Int, minimumChunk: Int = 1, _ body: (Range<Int>) -> Void) {
        if count <= 0 { return }
        let parts = max(1, min(threads, count / max(1, minimumChunk)))
        if parts == 1 || inTask {
            body(0..<count)
            return
        }
        forEach(parts) { p in body((count * p / parts)..<(count * (p + 1) / parts)) }
    }

    /// Element-wise work smaller than this many values stays on one thread.
    public static let minimumElementWork = 32_768

    /// Runs `body(rows)` over row ranges of a [rows, cols] buffer, in parallel when the buffer
    /// is large enough to pay for the hand-over.
    @inline(__always)
    public static func rows(_ rows: Int, cols: Int, _ body: (Range<Int>) -> Void) {
        if threads <= 1 || rows * cols < minimumElementWork || rows < 2 {
            body(0..<rows)
            return
        }
        forRanges(rows, minimumChunk: max(1, minimumElementWork / (2 * max(1, cols))), body)
    }

    /// Runs `body(start, count)` over chunks of a flat buffer of `count` values (chunk starts
    /// are multiples of 16), in parallel when it is large enough.
    @inline(__always)
    public static func chunks(_ count: Int, _ body: (_ start: Int, _ count: Int) -> Void) {
        if threads <= 1 || count < minimumElementWork {
            body(0, count)
            return
        }
        let blocks = (count + 15) / 16
        forRanges(blocks, minimumChunk: minimumElementWork / 32) { r in
            let start = r.lowerBound * 16
            body(start, min(count, r.upperBound * 16) - start)
        }
    }
}
