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
