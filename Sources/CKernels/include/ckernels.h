// Element-wise kernels of the encoder in C: clang vectorises these loops (and builds AVX-512 and
// AVX2 clones chosen at run time), which Swift's generic SIMD types do not on Linux.
#ifndef VANI_CKERNELS_H
#define VANI_CKERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// e^x with inputs clamped to [-87.3, 88.3]; ≈ 1 ulp (Cephes polynomial).
float vani_exp(float x);
/// x = x · sigmoid(x), in place.
void vani_silu(float *x, long n);
/// x = 1 / (1 + e^-x), in place.
void vani_sigmoid(float *x, long n);
/// out[r, c] = in[r, c] · sigmoid(in[r, channels + c]); in is [rows, 2·channels].
void vani_glu(const float *in, long rows, long channels, float *out);
/// Softmax of each row of x [rows, cols], in place.
void vani_softmax_rows(float *x, long rows, long cols);
/// Log-softmax of each row of x [rows, cols], in place.
void vani_log_softmax_rows(float *x, long rows, long cols);
/// LayerNorm over the last axis (biased variance); x and out may alias.
void vani_layer_norm(const float *x, long rows, long cols, const float *gamma, const float *beta,
                     float eps, float *out);
/// x[r, c] = silu(x[r, c] + bias[c]) over [rows, cols]: a Linear's bias fused with the activation.
void vani_bias_silu(float *x, long rows, long cols, const float *bias);
/// out[r, c] = (in[r, c] + b[c]) · sigmoid(in[r, channels + c] + b[channels + c]): pointwise
/// conv bias fused with the GLU.
void vani_bias_glu(const float *in, long rows, long channels, const float *bias, float *out);
/// y[r, c] += bias[c].
void vani_add_bias(float *y, long rows, long cols, const float *bias);
/// Depthwise conv2d (groups = channels) of channels c0..<c1: input [C, h, w], weight [C, k, k],
/// bias [C] or NULL, output [C, oh, ow]; stride s, zero padding p. Sums in a fixed order (bias, then
/// taps by row and column), the same bits whatever the split of channels.
void vani_depthwise_conv2d(const float *input, long c0, long c1, long h, long w, long k, long s, long p, long oh,
                           long ow, const float *weight, const float *bias, float *output);

// MARK: fork-join pool (pool.c)

/// A task of a parallel step: called once for each index in 0..<tasks.
typedef void (*vani_task_fn)(void *ctx, long index);
/// Threads that take part in a parallel step, the caller included (default 1: serial).
/// Starts worker threads as needed; they spin briefly after each step, then sleep.
void vani_pool_set_threads(int threads);
/// Overrides the setting for the calling thread only (0 removes the override); returns the
/// previous override. Steps and splits started on this thread use it.
int vani_pool_set_local_threads(int threads);
/// The threads a step started on this thread uses (its override, else the process setting).
int vani_pool_threads(void);
/// 1 on a thread that is running a task of the pool.
int vani_pool_in_task(void);
/// Runs fn(ctx, i) for i in 0..<tasks on the pool and the calling thread; returns when all are
/// done. Runs them serially on the caller when the pool has one thread, when called from inside
/// a task, or when another thread is running a step at the same time.
void vani_pool_run(long tasks, vani_task_fn fn, void *ctx);

// MARK: GEMM over weights used in place (gemm.c)

/// 1 when `vani_sgemm_nt` can run on this CPU (AVX-512F).
int vani_sgemm_nt_available(void);
/// With 1, `vani_sgemm_nt` called on this thread declines (returns 0); returns the previous value.
int vani_sgemm_nt_set_disabled_here(int disabled);
/// C[m×n] = alpha · A[m×k] · B[n×k]ᵀ + beta · C (row-major; beta 0 never reads C), over
/// `threads` parts of the pool. Meant for short A (m up to a few hundred rows) and a large B
/// (weights): B is read in place, only A is packed. Returns 0 (and does nothing) when the CPU
/// lacks AVX-512F or scratch memory cannot be had; the caller then uses BLAS.
int vani_sgemm_nt(long m, long n, long k, float alpha, const float *a, long lda, const float *b, long ldb,
                  float beta, float *c, long ldc, int threads);

// MARK: GEMM over bf16 / int8 weights used in place (qgemm.c)

/// 1 when the bf16 kernel runs on AVX-512 BF16 (`vdpbf16ps`) here; 0: the portable path.
int vani_gemm_bf16_native(void);
/// 1 when the int8 kernel runs on AVX-512 VNNI (`vpdpbusd`) here; 0: the portable path.
int vani_gemm_int8_native(void);
/// With 1, the bf16 and int8 kernels called on this thread take the portable path (to test it
/// on a CPU that has the instructions); returns the previous value.
int vani_qgemm_set_generic_here(int generic);
/// out[i] = bf16(x[i]), rounded to nearest even.
void vani_f32_to_bf16(const float *x, long n, uint16_t *out);
/// Per output channel (row) r of w [n, k] (row stride ldw): scales[r] = max|w[r]| / 127,
/// q[r, j] = round(w[r, j] / scales[r]) in -127…127 (row stride ldq ≥ k, zero-padded past k),
/// sums[r] = Σⱼ q[r, j].
void vani_quantize_weights_int8(const float *w, long n, long k, long ldw, int8_t *q, long ldq, float *scales,
                                int32_t *sums);
/// sums[r] = Σⱼ q[r, j] over j < k for int8 rows stored with stride ldq.
void vani_int8_row_sums(const int8_t *q, long n, long k, long ldq, int32_t *sums);
/// C[m×n] = A[m×k] · Wᵀ + beta · C with W bf16 [n, ldw], ldw ≥ k rounded up to 2 and W zero past
/// k; A is rounded to bf16, products summed in fp32. Over `threads` parts of the pool. Returns 0
/// (doing nothing) only when scratch memory cannot be had.
int vani_gemm_bf16(long m, long n, long k, const float *a, long lda, const uint16_t *w, long ldw, float beta,
                   float *c, long ldc, int threads);
/// C[m×n] = dequant(quant(A) · Wᵀ) + beta · C with W int8 [n, ldw] per output channel
/// (w ≈ scales[n] · W[n, j]; ldw ≥ k rounded up to 4, W zero past k; sums[n] = Σⱼ W[n, j]);
/// each row of A quantized to asymmetric uint8 on the fly, products summed in int32. Returns 0
/// (doing nothing) only when scratch memory cannot be had.
int vani_gemm_int8(long m, long n, long k, const float *a, long lda, const int8_t *w, long ldw,
                   const float *scales, const int32_t *sums, float beta, float *c, long ldc, int threads);

#ifdef __cplusplus
}
#endif
#endif
