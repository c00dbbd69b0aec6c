// Element-wise kernels of the encoder in C: clang vectorises these loops (and builds AVX-512 and
// AVX2 clones chosen at run time), which Swift's generic SIMD types do not on Linux.
#ifndef VANI_CKERNELS_H
#define VANI_CKERNELS_H

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

#ifdef __cplusplus
}
#endif
#endif
