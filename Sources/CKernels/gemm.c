// C = alpha · A · Bᵀ + beta · C for a short A (the encoder's activations, M ≤ 512 rows) and a
// row-major B (a weight matrix [N, K], used in place from the memory-mapped weights file).
// See include/ckernels.h.
//
// OpenBLAS copies ("packs") every weight matrix on every call; for the encoder's short inputs
// that copy costs as much as 10–30 % of the product. Here the roles are swapped so the weights
// need no copy: the small A is packed once per call into panels of 32 rows [K][32] (A's rows
// along the vector lanes), and the micro-kernel broadcasts 8 weight rows against one panel,
// producing an 8 × 32 tile of Cᵀ in 16 AVX-512 accumulators over the whole K. The weights are
// read once, row by row (8 rows stay in L1/L2 while every panel of A passes under them); each
// finished 8 × 32 tile of Cᵀ is transposed through the stack into C. Threads split the output
// columns; one output element is one FMA chain over K in order, whatever the thread count.
#include "ckernels.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define PANEL 32  // rows of A per packed panel (two 16-lane vectors)
#define ROWS 8    // weight rows per micro-kernel tile
#ifndef KC
#define KC 1024   // K per pass (a pass's panels of A, ≤ 512 rows × KC, stay in L2)
#endif

typedef struct {
    long m, n, k, panels;
    float alpha, beta;
    const float *a, *b;
    long lda, ldb, ldc;
    float *c, *packed;
    long parts;
} gemm_job;

// Per-thread scratch for the packed panels, grown when needed and freed when its thread exits.
static _Thread_local float *scratch = 0;
static _Thread_local long scratch_floats = 0;
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void make_scratch_key(void) { pthread_key_create(&scratch_key, free); }

static float *scratch_for(long floats) {
    if (floats <= scratch_floats) return scratch;
    pthread_once(&scratch_once, make_scratch_key);
    free(scratch);
    long rounded = (floats + 4095) & ~4095L;
    scratch = aligned_alloc(64, (size_t)rounded * sizeof(float));
    scratch_floats = scratch ? rounded : 0;
    pthread_setspecific(scratch_key, scratch);  // freed by the key's destructor at thread exit
    return scratch;
}

// packed[(q·K + kk)·32 + j] = A[q·32 + j, kk], zero past the last row; in blocks of 64 columns
// of A so the writes of a block stay in L1.
static void pack_panel(void *ctx, long q) {
    const gemm_job *g = ctx;
    float *dst = g->packed + q * g->k * PANEL;
    long rows = g->m - q * PANEL < PANEL ? g->m - q * PANEL : PANEL;
    for (long k0 = 0; k0 < g->k; k0 += 64) {
        long k1 = g->k - k0 < 64 ? g->k : k0 + 64;
        for (long j = 0; j < rows; j++) {
            const float *src = g->a + (q * PANEL + j) * g->lda;
            for (long kk = k0; kk < k1; kk++) dst[kk * PANEL + j] = src[kk];
        }
        for (long j = rows; j < PANEL; j++)
            for (long kk = k0; kk < k1; kk++) dst[kk * PANEL + j] = 0;
    }
}

#if defined(__x86_64__) && defined(__clang__)
// acc[r] += B[r, kk] · panel[kk, 0..<32] for r < rows: 2·rows FMAs with one broadcast weight each.
__attribute__((target("avx512f,fma"), always_inline))
static inline void tile_step(__m512 acc[ROWS][2], int rows, const float *b, long ldb, const float *panel, long kk) {
    __m512 p0 = _mm512_load_ps(panel + kk * PANEL), p1 = _mm512_load_ps(panel + kk * PANEL + 16);
    for (int r = 0; r < rows; r++) {
        __m512 w = _mm512_set1_ps(b[r * ldb + kk]);
        acc[r][0] = _mm512_fmadd_ps(w, p0, acc[r][0]);
        acc[r][1] = _mm512_fmadd_ps(w, p1, acc[r][1]);
    }
}

// One tile: C[m0 + i, n0 + r] = alpha · Σ_kk A[m0 + i, kk] · B[n0 + r, kk] + beta · C[…] for
// i < mrows (≤ 32, A's rows in the packed panel) and r < rows (≤ ROWS weight rows at b).
// With `next`, the next ROWS weight rows are fetched towards L2 while the tile runs.
__attribute__((target("avx512f,fma")))
static void tile_avx512(long rows, const float *b, long ldb, const float *panel, long k, long mrows,
                        float alpha, float beta, float *c, long ldc, const float *next) {
    __m512 acc[ROWS][2];
    for (int r = 0; r < ROWS; r++) { acc[r][0] = _mm512_setzero_ps(); acc[r][1] = _mm512_setzero_ps(); }
    if (rows == ROWS) {
        for (long k0 = 0; k0 < k; k0 += 16) {
            if (next)  // one line of each next row per 16 steps, as fast as this tile reads its own
                for (int r = 0; r < ROWS; r++) _mm_prefetch((const char *)(next + r * ldb + k0), _MM_HINT_T1);
            long k1 = k - k0 < 16 ? k : k0 + 16;
            for (long kk = k0; kk < k1; kk++) tile_step(acc, ROWS, b, ldb, panel, kk);
        }
    } else {
        for (long kk = 0; kk < k; kk++) tile_step(acc, (int)rows, b, ldb, panel, kk);
    }
    // The tile is Cᵀ (weight rows × A rows): transpose it through the stack into C's rows.
    float t[ROWS][PANEL] __attribute__((aligned(64)));
    for (int r = 0; r < ROWS; r++) { _mm512_store_ps(t[r], acc[r][0]); _mm512_store_ps(t[r] + 16, acc[r][1]); }
    for (long i = 0; i < mrows; i++) {
        float *out = c + i * ldc;
        if (beta == 0) {
            for (long r = 0; r < rows; r++) out[r] = alpha * t[r][i];
        } else {
            for (long r = 0; r < rows; r++) out[r] = alpha * t[r][i] + beta * out[r];
        }
    }
}
#define HAVE_TILE 1
#endif

#ifdef HAVE_TILE
// Part p of the output columns: every tile of those columns.
static void compute_part(void *ctx, long p) {
    const gemm_job *g = ctx;
    long blocks = (g->n + ROWS - 1) / ROWS;
    long n0 = blocks * p / g->parts * ROWS, n1 = blocks * (p + 1) / g->parts * ROWS;
    if (n1 > g->n) n1 = g->n;
    // K in chunks of at most KC so the chunk of every panel stays in L2; the chunks after the
    // first add into C.
    for (long k0 = 0; k0 < g->k; k0 += KC) {
        long kc = g->k - k0 < KC ? g->k - k0 : KC;
        float beta = k0 == 0 ? g->beta : 1;
        for (long i = n0; i < n1; i += ROWS) {
            long rows = g->n - i < ROWS ? g->n - i : ROWS;
            for (long q = 0; q < g->panels; q++) {
                long mrows = g->m - q * PANEL < PANEL ? g->m - q * PANEL : PANEL;
                // The first panel's pass also pulls the next block of weight rows towards L2.
                const float *next = q == 0 && rows == ROWS && i + 2 * ROWS <= n1 ? g->b + (i + ROWS) * g->ldb + k0 : 0;
                tile_avx512(rows, g->b + i * g->ldb + k0, g->ldb, g->packed + (q * g->k + k0) * PANEL, kc, mrows,
                            g->alpha, beta, g->c + q * PANEL * g->ldc + i, g->ldc, next);
            }
        }
    }
}
#endif

static _Thread_local int disabled_here = 0;

int vani_sgemm_nt_set_disabled_here(int disabled) {
    int previous = disabled_here;
    disabled_here = disabled;
    return previous;
}

int vani_sgemm_nt_available(void) {
#ifdef HAVE_TILE
    static _Atomic int cached = -1;
    int value = atomic_load_explicit(&cached, memory_order_relaxed);
    if (value < 0) {
        __builtin_cpu_init();
        value = __builtin_cpu_supports("avx512f") ? 1 : 0;
        atomic_store_explicit(&cached, value, memory_order_relaxed);
    }
    return value;
#else
    return 0;
#endif
}

int vani_sgemm_nt(long m, long n, long k, float alpha, const float *a, long lda, const float *b, long ldb,
                  float beta, float *c, long ldc, int threads) {
#ifdef HAVE_TILE
    if (disabled_here || !vani_sgemm_nt_available() || m < 1 || n < 1 || k < 1) return 0;
    gemm_job g = {.m = m, .n = n, .k = k, .alpha = alpha, .beta = beta, .a = a, .b = b,
                  .lda = lda, .ldb = ldb, .ldc = ldc, .c = c};
    g.panels = (m + PANEL - 1) / PANEL;
    g.packed = scratch_for(g.panels * PANEL * k);
    if (!g.packed) return 0;
    long blocks = (n + ROWS - 1) / ROWS;
    g.parts = threads < 1 ? 1 : (threads > blocks ? blocks : threads);
    if (g.parts > 1) vani_pool_run(g.panels, pack_panel, &g);
    else for (long q = 0; q < g.panels; q++) pack_panel(&g, q);
    vani_pool_run(g.parts, compute_part, &g);
    return 1;
#else
    (void)m; (void)n; (void)k; (void)alpha; (void)a; (void)lda; (void)b; (void)ldb;
    (void)beta; (void)c; (void)ldc; (void)threads;
    return 0;
#endif
}
