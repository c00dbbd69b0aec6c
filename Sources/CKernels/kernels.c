// See include/ckernels.h. Each hot kernel is compiled three times (AVX-512, AVX2+FMA, baseline)
// and the loader picks the best for the CPU, so one binary runs everywhere.
#include "ckernels.h"
#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && defined(__clang__)
#define VANI_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define VANI_CLONES
#endif

static inline float exp_approx(float x) {
    x = x < -87.3f ? -87.3f : (x > 88.3f ? 88.3f : x);
    const float magic = 12582912.0f;  // 1.5 · 2^23: adding it rounds to an integer
    float t = x * 1.44269504088896341f + magic;
    float n = t - magic;
    float r = x - n * 0.693359375f - n * -2.12194440e-4f;
    float z = r * r;
    float y = 1.9875691500e-4f;
    y = y * r + 1.3981999507e-3f;
    y = y * r + 8.3334519073e-3f;
    y = y * r + 4.1665795894e-2f;
    y = y * r + 1.6666665459e-1f;
    y = y * r + 5.0000001201e-1f;
    y = y * z + r + 1.0f;
    int32_t bits;
    memcpy(&bits, &t, 4);
    bits = (bits - 0x4B400000 + 127) << 23;
    float scale;
    memcpy(&scale, &bits, 4);
    return y * scale;
}

float vani_exp(float x) { return exp_approx(x); }

// Sums and maxima in 16 independent lanes: strict IEEE order would keep clang from
// vectorising a plain reduction loop.
#define LANES 16

static inline float sum_lanes(const float *x, long n) {
    float acc[LANES] = {0};
    long i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int l = 0; l < LANES; l++) acc[l] += x[i + l];
    float s = 0.0f;
    for (int l = 0; l < LANES; l++) s += acc[l];
    for (; i < n; i++) s += x[i];
    return s;
}

static inline float max_lanes(const float *x, long n) {
    float acc[LANES];
    for (int l = 0; l < LANES; l++) acc[l] = -INFINITY;
    long i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int l = 0; l < LANES; l++) acc[l] = x[i + l] > acc[l] ? x[i + l] : acc[l];
    float m = -INFINITY;
    for (int l = 0; l < LANES; l++) m = acc[l] > m ? acc[l] : m;
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

static inline float sq_dev_lanes(const float *x, long n, float mean) {
    float acc[LANES] = {0};
    long i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int l = 0; l < LANES; l++) {
            float d = x[i + l] - mean;
            acc[l] += d * d;
        }
    float s = 0.0f;
    for (int l = 0; l < LANES; l++) s += acc[l];
    for (; i < n; i++) {
        float d = x[i] - mean;
        s += d * d;
    }
    return s;
}

VANI_CLONES void vani_silu(float *x, long n) {
    for (long i = 0; i < n; i++) x[i] = x[i] / (1.0f + exp_approx(-x[i]));
}

VANI_CLONES void vani_sigmoid(float *x, long n) {
    for (long i = 0; i < n; i++) x[i] = 1.0f / (1.0f + exp_approx(-x[i]));
}

VANI_CLONES void vani_glu(const float *in, long rows, long channels, float *out) {
    for (long r = 0; r < rows; r++) {
        const float *a = in + r * 2 * channels;
        const float *g = a + channels;
        float *o = out + r * channels;
        for (long c = 0; c < channels; c++) o[c] = a[c] / (1.0f + exp_approx(-g[c]));
    }
}

VANI_CLONES void vani_softmax_rows(float *x, long rows, long cols) {
    for (long r = 0; r < rows; r++) {
        float *row = x + r * cols;
        float m = max_lanes(row, cols);
        for (long c = 0; c < cols; c++) row[c] = exp_approx(row[c] - m);
        float inv = 1.0f / sum_lanes(row, cols);
        for (long c = 0; c < cols; c++) row[c] *= inv;
    }
}

VANI_CLONES void vani_log_softmax_rows(float *x, long rows, long cols) {
    for (long r = 0; r < rows; r++) {
        float *row = x + r * cols;
        float m = max_lanes(row, cols);
        float sum = 0.0f;
        for (long c = 0; c < cols; c++) sum += expf(row[c] - m);
        float lse = m + logf(sum);
        for (long c = 0; c < cols; c++) row[c] -= lse;
    }
}

VANI_CLONES void vani_layer_norm(const float *x, long rows, long cols, const float *gamma,
                                 const float *beta, float eps, float *out) {
    for (long r = 0; r < rows; r++) {
        const float *row = x + r * cols;
        float *o = out + r * cols;
        float mean = sum_lanes(row, cols) / (float)cols;
        float sq = sq_dev_lanes(row, cols, mean);
        float inv = 1.0f / sqrtf(sq / (float)cols + eps);
        for (long c = 0; c < cols; c++) o[c] = (row[c] - mean) * inv * gamma[c] + beta[c];
    }
}

VANI_CLONES void vani_bias_silu(float *x, long rows, long cols, const float *bias) {
    for (long r = 0; r < rows; r++) {
        float *row = x + r * cols;
        for (long c = 0; c < cols; c++) {
            float v = row[c] + bias[c];
            row[c] = v / (1.0f + exp_approx(-v));
        }
    }
}

VANI_CLONES void vani_bias_glu(const float *in, long rows, long channels, const float *bias, float *out) {
    for (long r = 0; r < rows; r++) {
        const float *a = in + r * 2 * channels;
        const float *g = a + channels;
        float *o = out + r * channels;
        for (long c = 0; c < channels; c++)
            o[c] = (a[c] + bias[c]) / (1.0f + exp_approx(-(g[c] + bias[channels + c])));
    }
}

VANI_CLONES void vani_add_bias(float *y, long rows, long cols, const float *bias) {
    for (long r = 0; r < rows; r++) {
        float *row = y + r * cols;
        for (long c = 0; c < cols; c++) row[c] += bias[c];
    }
}

// Depthwise 2-D convolution over channels c0..<c1 (PyTorch cross-correlation, zero padding), in
// the order of the portable Swift loop it replaces: acc = bias; for ky, for kx: acc += w · x over
// the taps inside the input, without FMA contraction, so the bits are the same. Interior outputs of
// a 3×3 kernel take a branch-free loop the compiler vectorises along the row.
#pragma clang fp contract(off)
static void dw_point(const float *src, long h, long w, long k, long s, long p, const float *wc, float b, long oy,
                     long ox, float *out) {
    float acc = b;
    for (long ky = 0; ky < k; ky++) {
        long iy = oy * s + ky - p;
        if (iy < 0 || iy >= h) continue;
        for (long kx = 0; kx < k; kx++) {
            long ix = ox * s + kx - p;
            if (ix < 0 || ix >= w) continue;
            acc += wc[ky * k + kx] * src[iy * w + ix];
        }
    }
    *out = acc;
}

VANI_CLONES static void dw_row3(const float *r0, const float *r1, const float *r2, const float *wc, float b, long s,
                                long x0, long n, float *dst) {
    float w0 = wc[0], w1 = wc[1], w2 = wc[2], w3 = wc[3], w4 = wc[4], w5 = wc[5], w6 = wc[6], w7 = wc[7], w8 = wc[8];
    for (long i = 0; i < n; i++) {
        long x = x0 + i * s;
        float acc = b;
        acc += w0 * r0[x]; acc += w1 * r0[x + 1]; acc += w2 * r0[x + 2];
        acc += w3 * r1[x]; acc += w4 * r1[x + 1]; acc += w5 * r1[x + 2];
        acc += w6 * r2[x]; acc += w7 * r2[x + 1]; acc += w8 * r2[x + 2];
        dst[i] = acc;
    }
}

void vani_depthwise_conv2d(const float *input, long c0, long c1, long h, long w, long k, long s, long p, long oh,
                           long ow, const float *weight, const float *bias, float *output) {
    // Outputs whose taps all lie inside the input along x: ox·s − p ≥ 0 and ox·s + k − 1 − p < w.
    long lo = (p + s - 1) / s, hi = w - k + p >= 0 ? (w - k + p) / s + 1 : 0;
    if (hi > ow) hi = ow;
    if (lo > hi) lo = hi;
    for (long c = c0; c < c1; c++) {
        const float *src = input + c * h * w;
        float *dst = output + c * oh * ow;
        const float *wc = weight + c * k * k;
        float b = bias ? bias[c] : 0;
        for (long oy = 0; oy < oh; oy++) {
            long iy = oy * s - p;
            if (k == 3 && iy >= 0 && iy + 2 < h) {
                for (long ox = 0; ox < lo; ox++) dw_point(src, h, w, k, s, p, wc, b, oy, ox, dst + oy * ow + ox);
                dw_row3(src + iy * w, src + (iy + 1) * w, src + (iy + 2) * w, wc, b, s, lo * s - p, hi - lo,
                        dst + oy * ow + lo);
                for (long ox = hi; ox < ow; ox++) dw_point(src, h, w, k, s, p, wc, b, oy, ox, dst + oy * ow + ox);
            } else {
                for (long ox = 0; ox < ow; ox++) dw_point(src, h, w, k, s, p, wc, b, oy, ox, dst + oy * ow + ox);
            }
        }
    }
}
#pragma clang fp contract(on)
