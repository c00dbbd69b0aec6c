// Products X · Wᵀ with W stored in bf16 or int8 (Sources/CKernels/qgemm.c): the reduced-precision
// twins of `sgemm`'s in-place-weights path. Activations stay fp32 outside the product.

import CKernels

/// The reduced-precision kernels and how they run on this CPU.
public enum ReducedPrecisionKernels {
    /// Whether the bf16 kernel runs on AVX-512 BF16 (`vdpbf16ps`); otherwise it takes the
    /// portable path (same products, slower).
    public static var bf16Native: Bool { vani_gemm_bf16_native() != 0 }
    /// Whether the int8 kernel runs on AVX-512 VNNI (`vpdpbusd`); otherwise it takes the portable
    /// path (the same integer sums, so the same bits, slower).
    public static var int8Native: Bool { vani_gemm_int8_native() != 0 }

    /// Runs `body` with the bf16 and int8 products started on this thread taking the portable
    /// path, as on a CPU without AVX-512 BF16 / VNNI (tests, benchmarks). `body` must not move
    /// to another thread.
    public static func withPortablePath<T>(_ body: () throws -> T) rethrows -> T {
        let previous = vani_qgemm_set_generic_here(1)
        defer { vani_qgemm_set_generic_here(previous) }
        return try body()
    }

    /// bf16 bits of `x` (round to nearest even) into `out`.
    public static func toBF16(_ x: UnsafePointer<Float>, count: Int, into out: UnsafeMutablePointer<UInt16>) {
        vani_f32_to_bf16(x, count, out)
    }

    /// Quantizes each row of w [rows, cols] (row stride `ldw`) to int8 per output channel:
    /// scales[r] = max|w[r]| / 127, q[r] = round(w[r] / scales[r]) (row stride `ldq`, zero past
    /// `cols`), sums[r] = Σ q[r].
    public static func quantizeInt8(_ w: UnsafePointer<Float>, rows: Int, cols: Int, ldw: Int,
                                    into q: UnsafeMutablePointer<Int8>, ldq: Int,
                                    scales: UnsafeMutablePointer<Float>, sums: UnsafeMutablePointer<Int32>) {
        vani_quantize_weights_int8(w, rows, cols, ldw, q, ldq, scales, sums)
    }

    /// sums[r] = Σⱼ q[r, j] for j < cols (row stride `ldq`).
    public static func rowSums(_ q: UnsafePointer<Int8>, rows: Int, cols: Int, ldq: Int,
                               into sums: UnsafeMutablePointer<Int32>) {
        vani_int8_row_sums(q, rows, cols, ldq, sums)
    }
}

/// Parts a product is split into on the pool: every thread for a large product started outside
/// a task, else one (as `sgemm`).
@inline(__always)
private func parts(m: Int, n: Int, k: Int) -> Int32 {
    Int32(2 * m * n * k >= Parallel.minimumGEMMWork && !Parallel.inTask ? Parallel.threads : 1)
}

/// C[m×n] = A[m×k] · Wᵀ + beta · C with W bf16 bits [n, ldw] (ldw ≥ k rounded up to 2, zero
/// past k). A is rounded to bf16; products summed in fp32.
public func gemmBF16(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
                     w: UnsafePointer<UInt16>, ldw: Int, beta: Float = 0,
                     c: UnsafeMutablePointer<Float>, ldc: Int) {
    if m == 0 || n == 0 { return }
    precondition(ldw >= (k + 1) & ~1, "bf16 weights need a row stride ≥ \((k + 1) & ~1), not \(ldw)")
    let done = vani_gemm_bf16(m, n, k, a, lda, w, ldw, beta, c, ldc, parts(m: m, n: n, k: k))
    precondition(done != 0, "bf16 product: out of memory for \(m) rows × \(k)")
}

/// C[m×n] = A[m×k] · (scales ⊙ W)ᵀ + beta · C with W int8 [n, ldw] per output channel (ldw ≥ k
/// rounded up to 4, zero past k; sums[n] = Σ W[n]). Each row of A is quantized to uint8 on the
/// fly; products summed in int32.
public func gemmInt8(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
                     w: UnsafePointer<Int8>, ldw: Int, scales: UnsafePointer<Float>, sums: UnsafePointer<Int32>,
                     beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
    if m == 0 || n == 0 { return }
    precondition(ldw >= (k + 3) & ~3, "int8 weights need a row stride ≥ \((k + 3) & ~3), not \(ldw)")
    let done = vani_gemm_int8(m, n, k, a, lda, w, ldw, scales, sums, beta, c, ldc, parts(m: m, n: n, k: k))
    precondition(done != 0, "int8 product: out of memory for \(m) rows × \(k)")
}
