// Matrix products through OpenBLAS's cblas_sgemm, transposes folded into the call.

import CBLAS
import CKernels

/// Process-wide threading of the numeric code.
public enum BLAS {
    /// Sets the threads one forward pass uses. OpenBLAS itself always runs single-threaded (set
    /// when the library loads) and Vani's pool (`Parallel`) splits each large GEMM by output
    /// columns, attention by heads and the element-wise loops by rows over `count` threads
    /// (measured faster than OpenBLAS's own threading at the encoder's shapes:
    /// Benchmarks/README.md). Process-global: a server running N inferences at once should keep
    /// N × threads ≤ cores. Until this is called, the pool uses every online core.
    public static func setThreads(_ count: Int) {
        openblas_set_num_threads(1)
        vani_pool_set_threads(Int32(max(1, count)))
    }

    /// Products X · Wᵀ with at most this many rows of X use Vani's AVX-512 kernel that reads the
    /// weights in place (Sources/CKernels/gemm.c); longer ones go to OpenBLAS, which is as fast
    /// there (measured: Benchmarks/README.md).
    public static let inPlaceWeightsMaxRows = 512

    /// Whether that kernel can run here (the CPU has AVX-512F).
    public static var inPlaceWeightsGEMM: Bool { vani_sgemm_nt_available() != 0 }

    /// Whether products started on this thread take that kernel now (available, and not turned
    /// off by `withOpenBLASOnly`).
    public static var inPlaceWeightsHere: Bool {
        guard inPlaceWeightsGEMM else { return false }
        let disabled = vani_sgemm_nt_set_disabled_here(1)
        _ = vani_sgemm_nt_set_disabled_here(disabled)
        return disabled == 0
    }

    /// OpenBLAS runs products of at most this many multiply-adds (M·N·K) on its small-matrix
    /// kernels where it has them (SMALL_MATRIX_OPT, 100³), which sum a row differently from its
    /// blocked kernels: a batched product keeps rows that would take them alone on their own.
    public static let openBLASSmallMatrixWork = 100 * 100 * 100

    /// Runs `body` with products started on this thread going to OpenBLAS only (to compare the
    /// two in tests and benchmarks). `body` must not move to another thread.
    public static func withOpenBLASOnly<T>(_ body: () throws -> T) rethrows -> T {
        let previous = vani_sgemm_nt_set_disabled_here(1)
        defer { vani_sgemm_nt_set_disabled_here(previous) }
        return try body()
    }

    /// Threads one forward pass uses (the pool's setting).
    public static var threads: Int { Parallel.threads }

    /// Threads OpenBLAS itself uses for one call (1: set when the library loads).
    public static var openBLASThreads: Int { Int(openblas_get_num_threads()) }

    /// The kernel OpenBLAS chose for this CPU (`Haswell`, `Cooperlake`, …).
    public static var coreName: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }
}

/// C[m×n] = alpha · op(A) · op(B) + beta · C, row-major; op transposes when asked.
/// `a` is m×k (k×m when `transA`), `b` is k×n (n×k when `transB`).
@inline(__always)
public func sgemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
                  alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                  b: UnsafePointer<Float>, ldb: Int,
                  beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
    if m == 0 || n == 0 { return }
    if k == 0 {
        // BLAS leaves C untouched for k = 0 only when beta = 1; make the other cases explicit.
        for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
        return
    }
    if m == 1 {
        // One row (an RNN-T step): sgemv, which reads op(B) once instead of packing it.
        // y[n] = alpha · op(B)ᵀ · a + beta · y, with a the single row of op(A).
        let incA = transA ? lda : 1
        cblas_sgemv(CblasRowMajor, transB ? CblasNoTrans : CblasTrans,
                    Int32(transB ? n : k), Int32(transB ? k : n), alpha, b, Int32(ldb),
                    a, Int32(incA), beta, c, 1)
        return
    }
    // One OpenBLAS call on a block of the product (transposes as asked).
    func blas(_ m: Int, _ n: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>) {
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
    let threads = Parallel.threads
    let large = 2 * m * n * k >= Parallel.minimumGEMMWork
    if !transA, transB, m <= BLAS.inPlaceWeightsMaxRows,
       vani_sgemm_nt(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, Int32(large && !Parallel.inTask ? threads : 1)) != 0 {
        return   // X · Wᵀ with a short X: the kernel that reads W in place (Sources/CKernels/gemm.c)
    }
    if large {
        // Split C into up to 4 blocks of columns (each thread streams its own rows of a [N, K]
        // weight), or of rows when C is narrow, each one single-threaded OpenBLAS call spread
        // over the pool. The blocks depend on the shape only, so the result is the same bits
        // whatever the thread count (OpenBLAS may sum a smaller block in another order).
        let byColumns = n >= m || n >= 256
        let extent = byColumns ? n : m
        let parts = min(4, extent / 256)
        if parts > 1 {
            Parallel.forEach(parts) { p in
                let lo = (extent * p / parts) & ~15
                let hi = p == parts - 1 ? extent : (extent * (p + 1) / parts) & ~15
                if byColumns {
                    blas(m, hi - lo, a, b + (transB ? lo * ldb : lo), c + lo)
                } else {
                    blas(hi - lo, n, a + (transA ? lo : lo * lda), b, c + lo * ldc)
                }
            }
            return
        }
    }
    blas(m, n, a, b, c)
}

/// A batch of independent products with fixed strides between operands (attention heads):
/// for i in 0..<batch, C_i = alpha · op(A_i) · op(B_i) + beta · C_i.
public func batchedSgemm(batch: Int, transA: Bool = false, transB: Bool = false,
                         m: Int, n: Int, k: Int, alpha: Float = 1,
                         a: UnsafePointer<Float>, lda: Int, strideA: Int,
                         b: UnsafePointer<Float>, ldb: Int, strideB: Int,
                         beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int, strideC: Int) {
    for i in 0..<batch {
        sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
              a: a + i * strideA, lda: lda, b: b + i * strideB, ldb: ldb,
              beta: beta, c: c + i * strideC, ldc: ldc)
    }
}

/// A PyTorch Linear: y[rows×out] = x[rows×in] · Wᵀ + bias, with W stored [out, in].
/// With `accumulate`, adds into y instead of overwriting it.
public func linear(_ x: UnsafePointer<Float>, rows: Int, inFeatures: Int,
                   weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, outFeatures: Int,
                   into y: UnsafeMutablePointer<Float>, accumulate: Bool = false) {
    var beta: Float = accumulate ? 1 : 0
    if let bias {
        if accumulate {
            addBias(rows: rows, cols: outFeatures, bias: bias, into: y)
        } else {
            for r in 0..<rows { (y + r * outFeatures).update(from: bias, count: outFeatures) }
            beta = 1
        }
    }
    sgemm(transA: false, transB: true, m: rows, n: outFeatures, k: inFeatures,
          a: x, lda: inFeatures, b: weight, ldb: inFeatures, beta: beta, c: y, ldc: outFeatures)
}

/// dst[cols×rows] = srcᵀ for a row-major src[rows×cols] (OpenBLAS's out-of-place transpose).
public func transpose(_ src: UnsafePointer<Float>, rows: Int, cols: Int, into dst: UnsafeMutablePointer<Float>) {
    if rows == 0 || cols == 0 { return }
    cblas_somatcopy(CblasRowMajor, CblasTrans, Int32(rows), Int32(cols), 1, src, Int32(cols), dst, Int32(rows))
}

/// y += alpha · x over `count` elements (a residual connection).
@inline(__always)
public func addScaled(_ x: UnsafePointer<Float>, alpha: Float, into y: UnsafeMutablePointer<Float>, count: Int) {
    if count == 0 { return }
    Parallel.chunks(count) { start, n in cblas_saxpy(Int32(n), alpha, x + start, 1, y + start, 1) }
}

/// x *= alpha over `count` elements.
@inline(__always)
public func scale(_ x: UnsafeMutablePointer<Float>, by alpha: Float, count: Int) {
    if count == 0 { return }
    Parallel.chunks(count) { start, n in cblas_sscal(Int32(n), alpha, x + start, 1) }
}
