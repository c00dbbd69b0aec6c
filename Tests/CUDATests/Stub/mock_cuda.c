// A host-memory mock of libcuda.so.1, libcublas.so.13 and libcublasLt.so.13 for
// EngineTests/CUDAMockTests (docs/GPU.md, "Optional mock driver for host orchestration"):
// "device" memory is host memory, cuLaunchKernel runs a plain C version of each kernel of
// CUDAKernels.swift by name, cublasGemmEx / cublasGemmStridedBatchedEx are naive column-major
// fp32 GEMMs. It proves the CUDA backend's buffers, offsets, strides, GEMM transposes and op
// order against the CPU engine; it says nothing about the kernels' CUDA arithmetic.
//   -DMOCK_DRIVER   libcuda.so.1      -DMOCK_CUBLAS   libcublas.so.13    -DMOCK_CUBLASLT
#define _GNU_SOURCE 1
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#define EXPORT __attribute__((visibility("default")))
typedef int CUresult;
typedef unsigned long long dptr;

#ifdef MOCK_DRIVER
EXPORT CUresult cuInit(unsigned f) { (void)f; return 0; }
EXPORT CUresult cuGetErrorString(CUresult e, const char **t) { (void)e; *t = "mock error"; return 0; }
EXPORT CUresult cuDriverGetVersion(int *v) { *v = 13000; return 0; }
EXPORT CUresult cuDeviceGetCount(int *n) { *n = 1; return 0; }
EXPORT CUresult cuDeviceGet(int *d, int o) { if (o) return 101; *d = 0; return 0; }
EXPORT CUresult cuDeviceGetName(char *n, int l, int d) { (void)d; strncpy(n, "Vani Mock GPU", (size_t)l); return 0; }
EXPORT CUresult cuDeviceTotalMem_v2(size_t *b, int d) { (void)d; *b = (size_t)1 << 30; return 0; }
EXPORT CUresult cuDeviceGetAttribute(int *v, int a, int d) { (void)d; *v = a == 75 ? 9 : a == 76 ? 0 : 1; return 0; }
EXPORT CUresult cuDevicePrimaryCtxRetain(void **c, int d) { (void)d; *c = (void *)1; return 0; }
EXPORT CUresult cuDevicePrimaryCtxRelease_v2(int d) { (void)d; return 0; }
EXPORT CUresult cuCtxSetCurrent(void *c) { (void)c; return 0; }
EXPORT CUresult cuMemAlloc_v2(dptr *p, size_t n) {
    // Poisoned: a kernel or GEMM that reads what nobody wrote shows up as NaN.
    float *m = malloc(n + 64);
    if (!m) return 2;
    for (size_t i = 0; i < (n + 64) / 4; i++) m[i] = NAN;
    *p = (dptr)m; return 0;
}
EXPORT CUresult cuMemFree_v2(dptr p) { free((void *)p); return 0; }
EXPORT CUresult cuMemGetInfo_v2(size_t *f, size_t *t) { *f = 1; *t = 2; return 0; }
EXPORT CUresult cuMemcpyHtoDAsync_v2(dptr d, const void *s, size_t n, void *st) { (void)st; memcpy((void *)d, s, n); return 0; }
EXPORT CUresult cuMemcpyDtoHAsync_v2(void *d, dptr s, size_t n, void *st) { (void)st; memcpy(d, (void *)s, n); return 0; }
EXPORT CUresult cuMemcpyDtoDAsync_v2(dptr d, dptr s, size_t n, void *st) { (void)st; memmove((void *)d, (void *)s, n); return 0; }
EXPORT CUresult cuMemsetD8Async(dptr d, unsigned char v, size_t n, void *st) { (void)st; memset((void *)d, v, n); return 0; }
EXPORT CUresult cuStreamCreate(void **s, unsigned f) { (void)f; *s = (void *)1; return 0; }
EXPORT CUresult cuStreamSynchronize(void *s) { (void)s; return 0; }
EXPORT CUresult cuStreamDestroy_v2(void *s) { (void)s; return 0; }
EXPORT CUresult cuModuleLoadData(void **m, const void *image) {
    // The image must be the ELF cubin NVRTC made.
    const unsigned char *b = image;
    if (b[0] != 0x7f || b[1] != 'E' || b[2] != 'L' || b[3] != 'F') return 200;   // INVALID_IMAGE
    *m = (void *)1; return 0;
}
EXPORT CUresult cuModuleUnload(void *m) { (void)m; return 0; }
EXPORT CUresult cuModuleGetFunction(void **f, void *m, const char *name) { (void)m; *f = strdup(name); return 0; }
EXPORT CUresult cuEventCreate(void **e, unsigned f) { (void)f; *e = (void *)1; return 0; }
EXPORT CUresult cuEventRecord(void *e, void *s) { (void)e; (void)s; return 0; }
EXPORT CUresult cuEventSynchronize(void *e) { (void)e; return 0; }
EXPORT CUresult cuEventElapsedTime_v2(float *ms, void *a, void *b) { (void)a; (void)b; *ms = 0; return 0; }
EXPORT CUresult cuEventDestroy_v2(void *e) { (void)e; return 0; }

#define P(i) (*(float **)params[i])
#define I(i) (*(int *)params[i])
#define L(i) (*(long long *)params[i])
#define F(i) (*(float *)params[i])
static float sig(float x) { return 1.0f / (1.0f + expf(-x)); }

EXPORT CUresult cuLaunchKernel(void *f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                               unsigned sh, void *st, void **params, void **extra) {
    (void)gx; (void)gy; (void)gz; (void)bx; (void)by; (void)bz; (void)sh; (void)st; (void)extra;
    const char *k = f;
    if (!strcmp(k, "vani_layernorm_f32")) {
        float *x = P(0), *g = P(1), *b = P(2), *o = P(3); int rows = I(4), cols = I(5); float eps = F(6);
        for (int r = 0; r < rows; r++) {
            float *xr = x + (long)r * cols, *orow = o + (long)r * cols, s = 0, q = 0;
            for (int c = 0; c < cols; c++) s += xr[c];
            float mean = s / cols;
            for (int c = 0; c < cols; c++) { float d = xr[c] - mean; q += d * d; }
            float inv = 1.0f / sqrtf(q / cols + eps);
            for (int c = 0; c < cols; c++) orow[c] = (xr[c] - mean) * inv * g[c] + b[c];
        }
    } else if (!strcmp(k, "vani_add_scaled_f32")) {
        float *x = P(0), *y = P(1), a = F(2); long long n = L(3);
        for (long long i = 0; i < n; i++) x[i] += a * y[i];
    } else if (!strcmp(k, "vani_scale_f32")) {
        float *x = P(0), a = F(1); long long n = L(2);
        for (long long i = 0; i < n; i++) x[i] *= a;
    } else if (!strcmp(k, "vani_bias_silu_f32")) {
        float *x = P(0), *b = P(1); int rows = I(2), cols = I(3);
        for (long i = 0; i < (long)rows * cols; i++) { float v = x[i] + b[i % cols]; x[i] = v * sig(v); }
    } else if (!strcmp(k, "vani_bias_glu_mask_f32")) {
        float *in = P(0), *b = P(1), *o = P(2); int rows = I(3), c = I(4), valid = I(5);
        for (int r = 0; r < rows; r++) for (int j = 0; j < c; j++) {
            float *row = in + (long)r * 2 * c;
            o[(long)r * c + j] = r >= valid ? 0 : (row[j] + b[j]) * sig(row[c + j] + b[c + j]);
        }
    } else if (!strcmp(k, "vani_depthwise_conv_silu_f32")) {
        float *in = P(0), *w = P(1), *b = P(2), *o = P(3); int frames = I(4), ch = I(5), kk = I(6), pad = I(7);
        for (int t = 0; t < frames; t++) for (int c = 0; c < ch; c++) {
            float acc = b[c];
            for (int j = 0; j < kk; j++) { int s = t + j - pad; if (s >= 0 && s < frames) acc += w[j * ch + c] * in[(long)s * ch + c]; }
            o[(long)t * ch + c] = acc * sig(acc);
        }
    } else if (!strcmp(k, "vani_pos_bias_f32")) {
        float *q = P(0), *u = P(1), *v = P(2), *qu = P(3), *qv = P(4); int rows = I(5), d = I(6);
        for (long i = 0; i < (long)rows * d; i++) { qu[i] = q[i] + u[i % d]; qv[i] = q[i] + v[i % d]; }
    } else if (!strcmp(k, "vani_relshift_softmax_f32")) {
        float *s = P(0), *bd = P(1); int heads = I(2), t = I(3); float scale = F(4); int valid = I(5);
        for (int h = 0; h < heads; h++) for (int i = 0; i < t; i++) {
            float *row = s + ((long)h * t + i) * t;
            float *sh = bd + ((long)h * t + i) * (2 * t - 1) + (t - 1 - i);
            if (i >= valid) { for (int j = 0; j < t; j++) row[j] = 0; continue; }
            float m = -INFINITY, sum = 0;
            for (int j = 0; j < valid; j++) { row[j] = (row[j] + sh[j]) * scale; if (row[j] > m) m = row[j]; }
            for (int j = 0; j < valid; j++) { row[j] = expf(row[j] - m); sum += row[j]; }
            for (int j = 0; j < t; j++) row[j] = j < valid ? row[j] / sum : 0;
        }
    } else if (!strcmp(k, "vani_im2col_f32")) {
        float *in = P(0), *col = P(1); int cin = I(2), h = I(3), w = I(4), kk = I(5), st2 = I(6), pad = I(7), oh = I(8), ow = I(9);
        long plane = (long)oh * ow;
        for (int ci = 0; ci < cin; ci++) for (int ky = 0; ky < kk; ky++) for (int kx = 0; kx < kk; kx++)
            for (int oy = 0; oy < oh; oy++) for (int ox = 0; ox < ow; ox++) {
                int iy = oy * st2 + ky - pad, ix = ox * st2 + kx - pad;
                col[((long)(ci * kk + ky) * kk + kx) * plane + (long)oy * ow + ox] =
                    (iy >= 0 && iy < h && ix >= 0 && ix < w) ? in[((long)ci * h + iy) * w + ix] : 0;
            }
    } else if (!strcmp(k, "vani_depthwise_conv2d_f32")) {
        float *in = P(0), *w = P(1), *b = P(2), *o = P(3); int c = I(4), h = I(5), wd = I(6), kk = I(7), st2 = I(8), pad = I(9), oh = I(10), ow = I(11);
        for (int ch = 0; ch < c; ch++) for (int oy = 0; oy < oh; oy++) for (int ox = 0; ox < ow; ox++) {
            float acc = b ? b[ch] : 0;
            for (int ky = 0; ky < kk; ky++) { int iy = oy * st2 + ky - pad; if (iy < 0 || iy >= h) continue;
                for (int kx = 0; kx < kk; kx++) { int ix = ox * st2 + kx - pad; if (ix < 0 || ix >= wd) continue;
                    acc += w[(ch * kk + ky) * kk + kx] * in[((long)ch * h + iy) * wd + ix]; } }
            o[((long)ch * oh + oy) * ow + ox] = acc;
        }
    } else if (!strcmp(k, "vani_bias_relu_planes_f32")) {
        float *p = P(0), *b = P(1); int c = I(2), t = I(3), fw = I(4), valid = I(5);
        for (int ch = 0; ch < c; ch++) for (int ti = 0; ti < t; ti++) for (int j = 0; j < fw; j++) {
            long i = ((long)ch * t + ti) * fw + j;
            float v = p[i] + (b ? b[ch] : 0);
            p[i] = (ti < valid && v > 0) ? v : 0;
        }
    } else if (!strcmp(k, "vani_flatten_mask_f32")) {
        float *p = P(0), *flat = P(1); int c = I(2), t = I(3), fw = I(4), valid = I(5);
        for (int ti = 0; ti < t; ti++) for (int ch = 0; ch < c; ch++) for (int j = 0; j < fw; j++)
            flat[((long)ti * c + ch) * fw + j] = ti < valid ? p[((long)ch * t + ti) * fw + j] : 0;
    } else if (!strcmp(k, "vani_zero_rows_f32")) {
        float *x = P(0); int rows = I(1), cols = I(2), valid = I(3);
        for (int r = valid; r < rows; r++) memset(x + (long)r * cols, 0, (size_t)cols * 4);
    } else if (!strcmp(k, "vani_add_bias_f32")) {
        float *y = P(0), *b = P(1); int rows = I(2), cols = I(3);
        for (long i = 0; i < (long)rows * cols; i++) y[i] += b[i % cols];
    } else {
        return 500;   // NOT_FOUND: a kernel the mock does not know (vani_f32_to_bf16: fp32 mode only)
    }
    return 0;
}
#endif

#ifdef MOCK_CUBLASLT
EXPORT size_t cublasLtGetVersion(void) { return 130000; }
#endif

#ifdef MOCK_CUBLAS
EXPORT int cublasCreate_v2(void **h) { *h = (void *)1; return 0; }
EXPORT int cublasDestroy_v2(void *h) { (void)h; return 0; }
EXPORT int cublasSetStream_v2(void *h, void *s) { (void)h; (void)s; return 0; }
EXPORT int cublasSetWorkspace_v2(void *h, void *w, size_t n) { (void)h; (void)w; (void)n; return 0; }
EXPORT int cublasSetMathMode(void *h, int m) { (void)h; (void)m; return 0; }
EXPORT int cublasGetProperty(int t, int *v) { *v = t == 0 ? 13 : 0; return 0; }
// Column-major C (m×n) = α·op(A)·op(B) + β·C, fp32 only (type 0, compute 68).
static int gemm(int ta, int tb, int m, int n, int k, const float *alpha, const float *A, int lda,
                const float *B, int ldb, const float *beta, float *C, int ldc) {
    for (int j = 0; j < n; j++) for (int i = 0; i < m; i++) {
        double acc = 0;
        for (int l = 0; l < k; l++) {
            float a = ta ? A[l + (long)i * lda] : A[i + (long)l * lda];
            float b = tb ? B[j + (long)l * ldb] : B[l + (long)j * ldb];
            acc += (double)a * b;
        }
        float *c = C + i + (long)j * ldc;
        *c = (float)(*alpha * acc) + (*beta != 0 ? *beta * *c : 0);
    }
    return 0;
}
EXPORT int cublasGemmEx(void *h, int ta, int tb, int m, int n, int k, const void *alpha, const void *A, int at, int lda,
                        const void *B, int bt, int ldb, const void *beta, void *C, int ct, int ldc, int compute, int algo) {
    (void)h; (void)algo;
    if (at != 0 || bt != 0 || ct != 0 || compute != 68) return 15;   // NOT_SUPPORTED
    return gemm(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}
EXPORT int cublasGemmStridedBatchedEx(void *h, int ta, int tb, int m, int n, int k, const void *alpha,
                                      const void *A, int at, int lda, long long sa, const void *B, int bt, int ldb, long long sb,
                                      const void *beta, void *C, int ct, int ldc, long long sc, int count, int compute, int algo) {
    (void)h; (void)algo;
    if (at != 0 || bt != 0 || ct != 0 || compute != 68) return 15;
    for (int b = 0; b < count; b++)
        gemm(ta, tb, m, n, k, alpha, (const float *)A + b * sa, lda, (const float *)B + b * sb, ldb, beta, (float *)C + b * sc, ldc);
    return 0;
}
#endif
