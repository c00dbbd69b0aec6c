// C = A · Wᵀ (+ beta · C) with W in bf16 or int8: the reduced-precision twins of gemm.c's
// in-place-weights kernel (see include/ckernels.h).
//
// Same shape of work as gemm.c: the short A (activations, fp32) is converted and packed once per
// call into panels of 32 rows, the weights are read in place (row-major [N, ldw]), a micro-kernel
// broadcasts one group of each of 8 weight rows against a panel and keeps an 8 × 32 tile of Cᵀ in
// 16 AVX-512 accumulators over a chunk of K, and the tile is transposed into C through the stack.
//
// bf16: A is rounded to bf16 (round to nearest even) and packed as pairs [K/2][32][2];
//   `vdpbf16ps` adds the two products of a pair into an fp32 lane: acc += a₁·w₁, then acc += a₀·w₀.
// int8: each row i of A is quantized on the fly, asymmetric uint8: a ≈ sᵢ · (qᵢ − zᵢ), q in 0…255,
//   packed as quads [K/4][32][4]; W holds int8 per output channel, w ≈ tₙ · vₙ, v in −127…127,
//   with Σₖ vₙₖ precomputed. `vpdpbusd` sums the four u8 × s8 products of a quad into an int32
//   lane (exact: no saturation), and C[i, n] = sᵢ · tₙ · (Σₖ qᵢₖ vₙₖ − zᵢ · Σₖ vₙₖ).
//
// The portable path (any x86-64 or other CPU, or forced with vani_qgemm_set_generic_here) runs the
// same packing, the same chunks and the same epilogues with plain loops that follow the vector
// instructions' arithmetic: int8 gives the same bits (integer sums are exact), bf16 the same
// products in the same order (the only possible difference is the instruction's flushing of
// denormals to zero).
#include "ckernels.h"
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define PANEL 32     // rows of A per packed panel
#define ROWS 8       // weight rows per tile
#define KC_BF16 2048 // K per pass: a panel's chunk is 128 KB, as gemm.c's 1024 floats
#define KC_INT8 4096 // K per pass: 128 KB of uint8 per panel (a release layer's K fits in one pass)

// MARK: - Dispatch

static _Thread_local int generic_here = 0;

int vani_qgemm_set_generic_here(int generic) {
    int previous = generic_here;
    generic_here = generic;
    return previous;
}

static int cpu_has(int which) {
#if defined(__x86_64__) && defined(__clang__)
    static _Atomic int cached = -1;  // bit 0: bf16 kernel, bit 1: int8 kernel
    int value = atomic_load_explicit(&cached, memory_order_relaxed);
    if (value < 0) {
        __builtin_cpu_init();
        int base = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
        value = (base && __builtin_cpu_supports("avx512bf16") ? 1 : 0) |
                (base && __builtin_cpu_supports("avx512vnni") ? 2 : 0);
        atomic_store_explicit(&cached, value, memory_order_relaxed);
    }
    return (value & which) != 0;
#else
    (void)which;
    return 0;
#endif
}

int vani_gemm_bf16_native(void) { return cpu_has(1); }
int vani_gemm_int8_native(void) { return cpu_has(2); }

// MARK: - Weight preparation (at load)

// Round to nearest even; NaN stays NaN (quiet).
static inline uint16_t to_bf16(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static inline float from_bf16(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, 4);
    return x;
}

#if defined(__x86_64__) && defined(__clang__)
// The same conversions sixteen values at a time (load time: 600M weights take seconds in scalar code).
__attribute__((target("avx512f,avx512bw")))
static void f32_to_bf16_avx512(const float *x, long n, uint16_t *out) {
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i u = _mm512_loadu_si512(x + i);
        __m512i rounded = _mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7fff),
                                           _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1))));
        __m512i quiet = _mm512_or_si512(u, _mm512_set1_epi32(0x400000));
        __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)),
                                                _mm512_set1_epi32(0x7f800000));
        __m512i bits = _mm512_srli_epi32(_mm512_mask_blend_epi32(nan, rounded, quiet), 16);
        _mm256_storeu_si256((__m256i *)(out + i), _mm512_cvtepi32_epi16(bits));
    }
    for (; i < n; i++) out[i] = to_bf16(x[i]);
}

__attribute__((target("avx512f,avx512bw")))
static float absmax_avx512(const float *x, long n) {
    __m512 m = _mm512_setzero_ps();
    long i = 0;
    for (; i + 16 <= n; i += 16) m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_loadu_ps(x + i)));
    float r = _mm512_reduce_max_ps(m);
    for (; i < n; i++) r = fmaxf(r, fabsf(x[i]));
    return r;
}

__attribute__((target("avx512f,avx512bw")))
static int32_t quantize_row_avx512(const float *x, long n, float inv, int8_t *q) {
    __m512 vinv = _mm512_set1_ps(inv), lo = _mm512_set1_ps(-127), hi = _mm512_set1_ps(127);
    __m512i sum = _mm512_setzero_si512();
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_roundscale_ps(_mm512_mul_ps(_mm512_loadu_ps(x + i), vinv),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        __m512i t = _mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(v, lo), hi));
        sum = _mm512_add_epi32(sum, t);
        _mm_storeu_si128((__m128i *)(q + i), _mm512_cvtepi32_epi8(t));
    }
    int32_t total = _mm512_reduce_add_epi32(sum);
    for (; i < n; i++) {
        float v = nearbyintf(x[i] * inv);
        v = v > 127 ? 127 : (v < -127 ? -127 : v);
        q[i] = (int8_t)v;
        total += (int32_t)v;
    }
    return total;
}
#define HAVE_AVX512_PREP 1
#endif

static int prep_avx512(void) {
#ifdef HAVE_AVX512_PREP
    static _Atomic int cached = -1;
    int value = atomic_load_explicit(&cached, memory_order_relaxed);
    if (value < 0) {
        __builtin_cpu_init();
        value = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
        atomic_store_explicit(&cached, value, memory_order_relaxed);
    }
    return value && !generic_here;
#else
    return 0;
#endif
}

void vani_f32_to_bf16(const float *x, long n, uint16_t *out) {
#ifdef HAVE_AVX512_PREP
    if (prep_avx512()) { f32_to_bf16_avx512(x, n, out); return; }
#endif
    for (long i = 0; i < n; i++) out[i] = to_bf16(x[i]);
}

void vani_quantize_weights_int8(const float *w, long n, long k, long ldw, int8_t *q, long ldq, float *scales,
                                int32_t *sums) {
    int fast = prep_avx512();
    for (long r = 0; r < n; r++) {
        const float *src = w + r * ldw;
        int8_t *dst = q + r * ldq;
        float amax = 0;
#ifdef HAVE_AVX512_PREP
        if (fast) amax = absmax_avx512(src, k);
        else
#endif
            for (long j = 0; j < k; j++) amax = fmaxf(amax, fabsf(src[j]));
        float scale = amax > 0 ? amax / 127.0f : 1.0f;
        float inv = 1.0f / scale;
        int32_t sum = 0;
#ifdef HAVE_AVX512_PREP
        if (fast) sum = quantize_row_avx512(src, k, inv, dst);
        else
#endif
            for (long j = 0; j < k; j++) {
                float v = nearbyintf(src[j] * inv);
                v = v > 127 ? 127 : (v < -127 ? -127 : v);
                dst[j] = (int8_t)v;
                sum += (int32_t)v;
            }
        for (long j = k; j < ldq; j++) dst[j] = 0;
        scales[r] = scale;
        sums[r] = sum;
    }
    (void)fast;
}

void vani_int8_row_sums(const int8_t *q, long n, long k, long ldq, int32_t *sums) {
    for (long r = 0; r < n; r++) {
        int32_t sum = 0;
        for (long j = 0; j < k; j++) sum += q[r * ldq + j];
        sums[r] = sum;
    }
}

// MARK: - Per-call job

typedef struct {
    long m, n, k, kp, panels, parts;  // kp: K rounded up to the group (2 or 4)
    const float *a;
    long lda;
    const void *w;
    long ldw;
    const float *scales;  // int8: tₙ
    const int32_t *sums;  // int8: Σₖ vₙₖ
    float beta;
    float *c;
    long ldc;
    void *packed;        // bf16: uint16 [panels][kp/2][32][2]; int8: uint8 [panels][kp/4][32][4]
    float *row_scale;    // int8: sᵢ [panels·32]
    int32_t *row_zero;   // int8: zᵢ [panels·32]
    int generic;
} qjob;

static _Thread_local void *scratch = 0;
static _Thread_local size_t scratch_bytes = 0;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void make_scratch_key(void) { pthread_key_create(&scratch_key, free); }

// Per-thread scratch for the packed panels, grown when needed and freed when its thread exits.
static void *scratch_for(size_t bytes) {
    if (bytes <= scratch_bytes) return scratch;
    pthread_once(&scratch_once, make_scratch_key);
    free(scratch);
    size_t rounded = (bytes + 65535) & ~(size_t)65535;
    scratch = aligned_alloc(64, rounded);
    scratch_bytes = scratch ? rounded : 0;
    pthread_setspecific(scratch_key, scratch);
    return scratch;
}

// MARK: - Packing

#if defined(__x86_64__) && defined(__clang__)
static void pack_bf16_row_avx512(const float *src, long k, long kp, uint16_t *dst);
static void pack_int8_row_avx512(const float *src, long k, long kp, uint8_t *dst, float *scale_out,
                                 int32_t *zero_out);
#define CAN_PACK_AVX512 1
#endif

// Panel q of A as bf16 pairs: packed[(q·kp/2 + p)·64 + 2j + e] = bf16(A[q·32 + j, 2p + e]), zero
// past the last row and past K.
static void pack_bf16(void *ctx, long q) {
    const qjob *g = ctx;
    uint16_t *dst = (uint16_t *)g->packed + q * g->kp * PANEL;
    long rows = g->m - q * PANEL < PANEL ? g->m - q * PANEL : PANEL;
    for (long j = 0; j < PANEL; j++) {
        const float *src = j < rows ? g->a + (q * PANEL + j) * g->lda : 0;
#ifdef CAN_PACK_AVX512
        if (src && !g->generic) {
            pack_bf16_row_avx512(src, g->k, g->kp, dst + 2 * j);
            continue;
        }
#endif
        for (long kk = 0; kk < g->kp; kk++) {
            uint16_t v = src && kk < g->k ? to_bf16(src[kk]) : 0;
            dst[(kk >> 1) * 2 * PANEL + 2 * j + (kk & 1)] = v;
        }
    }
}

// Panel q of A quantized per row (asymmetric uint8) and packed as quads:
// packed[(q·kp/4 + p)·128 + 4j + e] = q(A[q·32 + j, 4p + e]).
static void pack_int8(void *ctx, long q) {
    const qjob *g = ctx;
    uint8_t *dst = (uint8_t *)g->packed + q * g->kp * PANEL;
    long rows = g->m - q * PANEL < PANEL ? g->m - q * PANEL : PANEL;
    for (long j = 0; j < PANEL; j++) {
        long i = q * PANEL + j;
        if (j >= rows) {
            for (long kk = 0; kk < g->kp; kk++) dst[(kk >> 2) * 4 * PANEL + 4 * j + (kk & 3)] = 0;
            g->row_scale[i] = 0;
            g->row_zero[i] = 0;
            continue;
        }
        const float *src = g->a + i * g->lda;
#ifdef CAN_PACK_AVX512
        if (!g->generic) {
            pack_int8_row_avx512(src, g->k, g->kp, dst + 4 * j, &g->row_scale[i], &g->row_zero[i]);
            continue;
        }
#endif
        float lo = 0, hi = 0;  // the range always holds 0, so 0 is exact and zᵢ is in 0…255
        for (long kk = 0; kk < g->k; kk++) { lo = fminf(lo, src[kk]); hi = fmaxf(hi, src[kk]); }
        float scale = hi > lo ? (hi - lo) / 255.0f : 1.0f;
        float inv = 1.0f / scale;
        float zero = nearbyintf(-lo * inv);
        zero = zero < 0 ? 0 : (zero > 255 ? 255 : zero);
        for (long kk = 0; kk < g->kp; kk++) {
            uint8_t v = 0;
            if (kk < g->k) {
                float t = nearbyintf(src[kk] * inv) + zero;
                v = (uint8_t)(t < 0 ? 0 : (t > 255 ? 255 : t));
            }
            dst[(kk >> 2) * 4 * PANEL + 4 * j + (kk & 3)] = v;
        }
        g->row_scale[i] = scale;
        g->row_zero[i] = (int32_t)zero;
    }
}

// MARK: - Epilogue (shared by both paths)

// t[r][i]: Cᵀ of one K chunk (weight row n0 + r, A row i0 + i), already in fp32. `first`: the chunk
// that starts at K = 0, where beta applies; later chunks add to C.
static void store_tile(const float t[ROWS][PANEL], long rows, long mrows, int first, const qjob *g, long i0,
                       long n0) {
    for (long i = 0; i < mrows; i++) {
        float *out = g->c + (i0 + i) * g->ldc + n0;
        if (first && g->beta == 0) {
            for (long r = 0; r < rows; r++) out[r] = t[r][i];
        } else {
            float beta = first ? g->beta : 1;
            for (long r = 0; r < rows; r++) out[r] = t[r][i] + beta * out[r];
        }
    }
}

// int8 chunk sums to fp32: v = float(Σ qv − [first] zᵢ·Σv) · (sᵢ · tₙ), the same operations in the
// same order on both paths.
static inline float dequant(int32_t acc, int32_t zero, int32_t sum, float s, float t, int first) {
    return (float)(acc - (first ? zero * sum : 0)) * (s * t);
}

// MARK: - Portable tiles

static void tile_bf16_generic(long rows, const uint16_t *w, long ldw, const uint16_t *panel, long pairs,
                              float t[ROWS][PANEL]) {
    for (long r = 0; r < ROWS; r++)
        for (long i = 0; i < PANEL; i++) t[r][i] = 0;
    for (long r = 0; r < rows; r++) {
        for (long p = 0; p < pairs; p++) {
            float w0 = from_bf16(w[r * ldw + 2 * p]), w1 = from_bf16(w[r * ldw + 2 * p + 1]);
            const uint16_t *a = panel + p * 2 * PANEL;
            for (long i = 0; i < PANEL; i++) {
                float acc = t[r][i];
                acc += w1 * from_bf16(a[2 * i + 1]);  // as vdpbf16ps: the odd element first
                acc += w0 * from_bf16(a[2 * i]);
                t[r][i] = acc;
            }
        }
    }
}

static void tile_int8_generic(long rows, const int8_t *w, long ldw, const uint8_t *panel, long quads,
                              float t[ROWS][PANEL], const qjob *g, long i0, long n0, int first) {
    for (long r = 0; r < rows; r++) {
        int32_t acc[PANEL] = {0};
        for (long p = 0; p < quads; p++) {
            const int8_t *wr = w + r * ldw + 4 * p;
            const uint8_t *a = panel + p * 4 * PANEL;
            for (long i = 0; i < PANEL; i++)
                acc[i] += a[4 * i] * wr[0] + a[4 * i + 1] * wr[1] + a[4 * i + 2] * wr[2] + a[4 * i + 3] * wr[3];
        }
        for (long i = 0; i < PANEL; i++)
            t[r][i] = dequant(acc[i], g->row_zero[i0 + i], g->sums[n0 + r], g->row_scale[i0 + i], g->scales[n0 + r],
                              first);
    }
}

// MARK: - AVX-512 tiles

#if defined(__x86_64__) && defined(__clang__)
static inline int32_t load32(const void *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

__attribute__((target("avx512f,avx512bw,avx512bf16")))
static void tile_bf16_avx512(long rows, const uint16_t *w, long ldw, const uint16_t *panel, long pairs,
                             float t[ROWS][PANEL], const uint16_t *next) {
    __m512 acc[ROWS][2];
    for (int r = 0; r < ROWS; r++) { acc[r][0] = _mm512_setzero_ps(); acc[r][1] = _mm512_setzero_ps(); }
    if (rows == ROWS) {
        for (long p0 = 0; p0 < pairs; p0 += 32) {
            if (next)  // one line (32 pairs) of each of the next rows per 32 steps
                for (int r = 0; r < ROWS; r++) _mm_prefetch((const char *)(next + r * ldw + 2 * p0), _MM_HINT_T1);
            long p1 = pairs - p0 < 32 ? pairs : p0 + 32;
            for (long p = p0; p < p1; p++) {
                __m512bh a0 = (__m512bh)_mm512_load_si512(panel + p * 2 * PANEL);
                __m512bh a1 = (__m512bh)_mm512_load_si512(panel + p * 2 * PANEL + PANEL);
                for (int r = 0; r < ROWS; r++) {
                    __m512bh b = (__m512bh)_mm512_set1_epi32(load32(w + r * ldw + 2 * p));
                    acc[r][0] = _mm512_dpbf16_ps(acc[r][0], a0, b);
                    acc[r][1] = _mm512_dpbf16_ps(acc[r][1], a1, b);
                }
            }
        }
    } else {
        for (long p = 0; p < pairs; p++) {
            __m512bh a0 = (__m512bh)_mm512_load_si512(panel + p * 2 * PANEL);
            __m512bh a1 = (__m512bh)_mm512_load_si512(panel + p * 2 * PANEL + PANEL);
            for (int r = 0; r < rows; r++) {
                __m512bh b = (__m512bh)_mm512_set1_epi32(load32(w + r * ldw + 2 * p));
                acc[r][0] = _mm512_dpbf16_ps(acc[r][0], a0, b);
                acc[r][1] = _mm512_dpbf16_ps(acc[r][1], a1, b);
            }
        }
    }
    for (int r = 0; r < ROWS; r++) { _mm512_storeu_ps(t[r], acc[r][0]); _mm512_storeu_ps(t[r] + 16, acc[r][1]); }
}

__attribute__((target("avx512f,avx512bw,avx512vnni")))
static void tile_int8_avx512(long rows, const int8_t *w, long ldw, const uint8_t *panel, long quads,
                             float t[ROWS][PANEL], const int8_t *next, const qjob *g, long i0, long n0, int first) {
    __m512i acc[ROWS][2];
    for (int r = 0; r < ROWS; r++) { acc[r][0] = _mm512_setzero_si512(); acc[r][1] = _mm512_setzero_si512(); }
    if (rows == ROWS) {
        for (long p0 = 0; p0 < quads; p0 += 16) {
            if (next)  // one line (16 quads) of each of the next rows per 16 steps
                for (int r = 0; r < ROWS; r++) _mm_prefetch((const char *)(next + r * ldw + 4 * p0), _MM_HINT_T1);
            long p1 = quads - p0 < 16 ? quads : p0 + 16;
            for (long p = p0; p < p1; p++) {
                __m512i a0 = _mm512_load_si512(panel + p * 4 * PANEL);
                __m512i a1 = _mm512_load_si512(panel + p * 4 * PANEL + 2 * PANEL);
                for (int r = 0; r < ROWS; r++) {
                    __m512i b = _mm512_set1_epi32(load32(w + r * ldw + 4 * p));
                    acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], a0, b);
                    acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], a1, b);
                }
            }
        }
    } else {
        for (long p = 0; p < quads; p++) {
            __m512i a0 = _mm512_load_si512(panel + p * 4 * PANEL);
            __m512i a1 = _mm512_load_si512(panel + p * 4 * PANEL + 2 * PANEL);
            for (int r = 0; r < rows; r++) {
                __m512i b = _mm512_set1_epi32(load32(w + r * ldw + 4 * p));
                acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], a0, b);
                acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], a1, b);
            }
        }
    }
    // dequant() sixteen lanes at a time: the same operations in the same order.
    __m512 s0 = _mm512_loadu_ps(g->row_scale + i0), s1 = _mm512_loadu_ps(g->row_scale + i0 + 16);
    __m512i z0 = _mm512_loadu_si512(g->row_zero + i0), z1 = _mm512_loadu_si512(g->row_zero + i0 + 16);
    for (int r = 0; r < rows; r++) {
        __m512i sum = _mm512_set1_epi32(first ? g->sums[n0 + r] : 0);
        __m512 tn = _mm512_set1_ps(g->scales[n0 + r]);
        __m512i v0 = _mm512_sub_epi32(acc[r][0], _mm512_mullo_epi32(z0, sum));
        __m512i v1 = _mm512_sub_epi32(acc[r][1], _mm512_mullo_epi32(z1, sum));
        _mm512_storeu_ps(t[r], _mm512_mul_ps(_mm512_cvtepi32_ps(v0), _mm512_mul_ps(s0, tn)));
        _mm512_storeu_ps(t[r] + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(v1), _mm512_mul_ps(s1, tn)));
    }
}
#define HAVE_AVX512_TILES 1
#endif

// The packing of one row of A, sixteen values at a time (the same values as pack_*_row).
__attribute__((target("avx512f,avx512bw,avx512bf16")))
static void pack_bf16_row_avx512(const float *src, long k, long kp, uint16_t *dst) {
    for (long kk = 0; kk < kp; kk += 16) {
        long lanes = kp - kk < 16 ? kp - kk : 16;
        __mmask16 in = (__mmask16)(k - kk >= 16 ? 0xffff : (k > kk ? (1u << (k - kk)) - 1 : 0));
        __m256i h = (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(in, src + kk));
        int32_t pairs[8];
        _mm256_storeu_si256((__m256i *)pairs, h);
        for (long e = 0; e < lanes / 2; e++) memcpy(dst + ((kk >> 1) + e) * 2 * PANEL, &pairs[e], 4);
    }
}

__attribute__((target("avx512f,avx512bw")))
static void pack_int8_row_avx512(const float *src, long k, long kp, uint8_t *dst, float *scale_out,
                                 int32_t *zero_out) {
    __m512 lo = _mm512_setzero_ps(), hi = _mm512_setzero_ps();
    for (long kk = 0; kk < k; kk += 16) {
        __mmask16 in = (__mmask16)(k - kk >= 16 ? 0xffff : (1u << (k - kk)) - 1);
        __m512 x = _mm512_maskz_loadu_ps(in, src + kk);
        lo = _mm512_min_ps(lo, x);
        hi = _mm512_max_ps(hi, x);
    }
    float l = _mm512_reduce_min_ps(lo), h = _mm512_reduce_max_ps(hi);
    float scale = h > l ? (h - l) / 255.0f : 1.0f;
    float inv = 1.0f / scale;
    float zero = nearbyintf(-l * inv);
    zero = zero < 0 ? 0 : (zero > 255 ? 255 : zero);
    __m512 vinv = _mm512_set1_ps(inv), vzero = _mm512_set1_ps(zero);
    __m512 vmin = _mm512_setzero_ps(), vmax = _mm512_set1_ps(255);
    for (long kk = 0; kk < kp; kk += 16) {
        long lanes = kp - kk < 16 ? kp - kk : 16;
        __mmask16 in = (__mmask16)(k - kk >= 16 ? 0xffff : (k > kk ? (1u << (k - kk)) - 1 : 0));
        __m512 x = _mm512_maskz_loadu_ps(in, src + kk);
        __m512 t = _mm512_add_ps(_mm512_roundscale_ps(_mm512_mul_ps(x, vinv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC),
                                 vzero);
        t = _mm512_min_ps(_mm512_max_ps(t, vmin), vmax);
        __m128i b = _mm512_cvtepi32_epi8(_mm512_maskz_cvtps_epi32(in, t));
        int32_t quads[4];
        _mm_storeu_si128((__m128i *)quads, b);
        for (long e = 0; e < lanes / 4; e++) memcpy(dst + ((kk >> 2) + e) * 4 * PANEL, &quads[e], 4);
    }
    *scale_out = scale;
    *zero_out = (int32_t)zero;
}
#define HAVE_AVX512_PACK 1

// MARK: - Parts of the output

static void part_bf16(void *ctx, long part) {
    const qjob *g = ctx;
    long blocks = (g->n + ROWS - 1) / ROWS;
    long n0 = blocks * part / g->parts * ROWS, n1 = blocks * (part + 1) / g->parts * ROWS;
    if (n1 > g->n) n1 = g->n;
    const uint16_t *w = g->w, *packed = g->packed;
    float t[ROWS][PANEL] __attribute__((aligned(64)));
    for (long k0 = 0; k0 < g->kp; k0 += KC_BF16) {
        long kc = g->kp - k0 < KC_BF16 ? g->kp - k0 : KC_BF16;
        for (long i = n0; i < n1; i += ROWS) {
            long rows = g->n - i < ROWS ? g->n - i : ROWS;
            for (long q = 0; q < g->panels; q++) {
                long mrows = g->m - q * PANEL < PANEL ? g->m - q * PANEL : PANEL;
                const uint16_t *wt = w + i * g->ldw + k0, *panel = packed + (q * g->kp + k0) * PANEL;
#ifdef HAVE_AVX512_TILES
                if (!g->generic) {
                    const uint16_t *next = q == 0 && rows == ROWS && i + 2 * ROWS <= n1 ? wt + ROWS * g->ldw : 0;
                    tile_bf16_avx512(rows, wt, g->ldw, panel, kc / 2, t, next);
                } else
#endif
                    tile_bf16_generic(rows, wt, g->ldw, panel, kc / 2, t);
                store_tile(t, rows, mrows, k0 == 0, g, q * PANEL, i);
            }
        }
    }
}

static void part_int8(void *ctx, long part) {
    const qjob *g = ctx;
    long blocks = (g->n + ROWS - 1) / ROWS;
    long n0 = blocks * part / g->parts * ROWS, n1 = blocks * (part + 1) / g->parts * ROWS;
    if (n1 > g->n) n1 = g->n;
    const int8_t *w = g->w;
    const uint8_t *packed = g->packed;
    float t[ROWS][PANEL] __attribute__((aligned(64)));
    for (long k0 = 0; k0 < g->kp; k0 += KC_INT8) {
        long kc = g->kp - k0 < KC_INT8 ? g->kp - k0 : KC_INT8;
        for (long i = n0; i < n1; i += ROWS) {
            long rows = g->n - i < ROWS ? g->n - i : ROWS;
            for (long q = 0; q < g->panels; q++) {
                long mrows = g->m - q * PANEL < PANEL ? g->m - q * PANEL : PANEL;
                const int8_t *wt = w + i * g->ldw + k0;
                const uint8_t *panel = packed + (q * g->kp + k0) * PANEL;
#ifdef HAVE_AVX512_TILES
                if (!g->generic) {
                    const int8_t *next = q == 0 && rows == ROWS && i + 2 * ROWS <= n1 ? wt + ROWS * g->ldw : 0;
                    tile_int8_avx512(rows, wt, g->ldw, panel, kc / 4, t, next, g, q * PANEL, i, k0 == 0);
                } else
#endif
                    tile_int8_generic(rows, wt, g->ldw, panel, kc / 4, t, g, q * PANEL, i, k0 == 0);
                store_tile(t, rows, mrows, k0 == 0, g, q * PANEL, i);
            }
        }
    }
}

// MARK: - Entry points

static int run(qjob *g, int int8, int threads) {
    if (g->m < 1 || g->n < 1) return 1;
    g->panels = (g->m + PANEL - 1) / PANEL;
    size_t packed_bytes = (size_t)g->panels * PANEL * g->kp * (int8 ? 1 : 2);
    size_t rows = (size_t)g->panels * PANEL;
    char *base = scratch_for(packed_bytes + (int8 ? rows * 8 : 0));
    if (!base) return 0;
    g->packed = base;
    g->row_scale = (float *)(base + packed_bytes);
    g->row_zero = (int32_t *)(base + packed_bytes + rows * 4);
    long blocks = (g->n + ROWS - 1) / ROWS;
    g->parts = threads < 1 ? 1 : (threads > blocks ? blocks : threads);
    vani_task_fn pack = int8 ? pack_int8 : pack_bf16;
    if (g->parts > 1) vani_pool_run(g->panels, pack, g);
    else for (long q = 0; q < g->panels; q++) pack(g, q);
    vani_pool_run(g->parts, int8 ? part_int8 : part_bf16, g);
    return 1;
}

int vani_gemm_bf16(long m, long n, long k, const float *a, long lda, const uint16_t *w, long ldw, float beta,
                   float *c, long ldc, int threads) {
    qjob g = {.m = m, .n = n, .k = k, .kp = (k + 1) & ~1L, .a = a, .lda = lda, .w = w, .ldw = ldw,
              .beta = beta, .c = c, .ldc = ldc, .generic = generic_here || !vani_gemm_bf16_native()};
    return run(&g, 0, threads);
}

int vani_gemm_int8(long m, long n, long k, const float *a, long lda, const int8_t *w, long ldw,
                   const float *scales, const int32_t *sums, float beta, float *c, long ldc, int threads) {
    qjob g = {.m = m, .n = n, .k = k, .kp = (k + 3) & ~3L, .a = a, .lda = lda, .w = w, .ldw = ldw,
              .scales = scales, .sums = sums, .beta = beta, .c = c, .ldc = ldc,
              .generic = generic_here || !vani_gemm_int8_native()};
    return run(&g, 1, threads);
}
