// The encoder's element-wise work on the GPU, as CUDA C source compiled by NVRTC at first use
// to the device's exact architecture (a cubin, never PTX JIT; docs/GPU.md pitfall 3). The source
// has no #include (NVRTC 13 ships no headers, pitfall 5): bf16 is `unsigned short` with its own
// round-to-nearest-even. Every kernel mirrors one CPU op of ConformerEncoder's forward pass in
// the same order of operations; the names say which. Layouts are row-major like the CPU's.

/// The kernel source and the names of its entry points.
public enum CUDAKernels {
    /// Every `extern "C" __global__` entry point in `source`, in order (the compile gate and the
    /// module loader check each one).
    public static let names = [
        "vani_layernorm_f32", "vani_add_scaled_f32", "vani_scale_f32", "vani_bias_silu_f32",
        "vani_bias_glu_mask_f32", "vani_depthwise_conv_silu_f32", "vani_pos_bias_f32",
        "vani_relshift_softmax_f32", "vani_im2col_f32", "vani_depthwise_conv2d_f32", "vani_bias_relu_planes_f32",
        "vani_flatten_mask_f32", "vani_zero_rows_f32", "vani_f32_to_bf16", "vani_add_bias_f32",
    ]

    /// Threads per block the host side launches the row kernels with (a multiple of 32; the
    /// reductions assume it).
    public static let rowThreads = 256

    /// The CUDA C source (no includes; extern "C" names, so no mangling).
    public static let source = #"""
// Vani encoder kernels (Sources/Backend/CUDAKernels.swift). fp32 storage; bf16 only as a cast.
#define VANI_ROW_THREADS 256

__device__ __forceinline__ float vani_warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float vani_warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
// Block-wide sum for blockDim.x a multiple of 32 (at most 1024); every thread gets the result.
__device__ __forceinline__ float vani_block_sum(float v, float *shared) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = vani_warp_sum(v);
    __syncthreads();
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    float total = lane < warps ? shared[lane] : 0.0f;
    return vani_warp_sum(total);
}
__device__ __forceinline__ float vani_block_max(float v, float *shared) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = vani_warp_max(v);
    __syncthreads();
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    float m = lane < warps ? shared[lane] : -3.402823466e38f;
    return vani_warp_max(m);
}
__device__ __forceinline__ float vani_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

// LayerNorm over each row of x [rows, cols] into out (may alias x): mean, then the variance of
// the centred values (two passes, fp32, like TensorModule.layerNorm). One block per row.
extern "C" __global__ void vani_layernorm_f32(const float *x, const float *gamma, const float *beta,
                                              float *out, int rows, int cols, float eps) {
    __shared__ float shared[32];
    int row = blockIdx.x;
    if (row >= rows) return;
    const float *xr = x + (long long)row * cols;
    float *orow = out + (long long)row * cols;
    float s = 0.0f;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) s += xr[c];
    float mean = vani_block_sum(s, shared) / cols;
    float q = 0.0f;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) { float d = xr[c] - mean; q += d * d; }
    float inv = rsqrtf(vani_block_sum(q, shared) / cols + eps);
    __syncthreads();   // every read of the row is done before an aliased write
    for (int c = threadIdx.x; c < cols; c += blockDim.x) orow[c] = (xr[c] - mean) * inv * gamma[c] + beta[c];
}

// x[i] += alpha · y[i] (the ½-weighted feed-forward residual).
extern "C" __global__ void vani_add_scaled_f32(float *x, const float *y, float alpha, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] += alpha * y[i];
}

// x[i] *= factor (xscaling by √d).
extern "C" __global__ void vani_scale_f32(float *x, float factor, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] *= factor;
}

// x [rows, cols] ← SiLU(x + bias) (FF linear1's epilogue; cuBLASLt has no SiLU epilogue).
extern "C" __global__ void vani_bias_silu_f32(float *x, const float *bias, int rows, int cols) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long long)rows * cols) return;
    float v = x[i] + bias[i % cols];
    x[i] = v * vani_sigmoid(v);
}

// GLU of pointwise_conv1's product: in [rows, 2c] (+ bias [2c]) → out [rows, c] =
// a · σ(b), a the first half; rows ≥ valid are zeroed (padded frames before the depthwise conv).
extern "C" __global__ void vani_bias_glu_mask_f32(const float *in, const float *bias, float *out,
                                                  int rows, int c, int valid) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long long)rows * c) return;
    int r = (int)(i / c), k = (int)(i % c);
    if (r >= valid) { out[i] = 0.0f; return; }
    const float *row = in + (long long)r * 2 * c;
    float a = row[k] + bias[k], b = row[c + k] + bias[c + k];
    out[i] = a * vani_sigmoid(b);
}

// Depthwise conv1d over time with the batch norm folded into weight and bias, then SiLU:
// in, out [frames, channels]; weight kernel-major [kernel, channels]; zero padding `pad`.
// Same order as TensorModule.depthwiseConv1d: bias first, then the taps in order.
extern "C" __global__ void vani_depthwise_conv_silu_f32(const float *in, const float *weight, const float *bias,
                                                        float *out, int frames, int channels, int kernel, int pad) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long long)frames * channels) return;
    int t = (int)(i / channels), c = (int)(i % channels);
    float acc = bias[c];
    for (int k = 0; k < kernel; k++) {
        int src = t + k - pad;
        if (src < 0 || src >= frames) continue;
        acc += weight[k * channels + c] * in[(long long)src * channels + c];
    }
    out[i] = acc * vani_sigmoid(acc);
}

// q [rows, d] → qu = q + pos_bias_u, qv = q + pos_bias_v (biases [d] = [heads, dK]).
extern "C" __global__ void vani_pos_bias_f32(const float *q, const float *u, const float *v,
                                             float *qu, float *qv, int rows, int d) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long long)rows * d) return;
    int k = (int)(i % d);
    qu[i] = q[i] + u[k];
    qv[i] = q[i] + v[k];
}

// Relative-position scores and softmax, one block per (head, query row):
// scores [heads, T, T] holds ac = (q+u)·kᵀ and becomes the attention weights;
// bd [heads, T, 2T−1] holds (q+v)·pᵀ; rel_shift takes bd[i, T−1−i+j] for key j.
// s = (ac + bd) · scale; keys j ≥ validKeys are masked (weight 0); rows ≥ validKeys give zeros.
extern "C" __global__ void vani_relshift_softmax_f32(float *scores, const float *bd, int heads, int t,
                                                     float scale, int validKeys) {
    __shared__ float shared[32];
    int h = blockIdx.y, i = blockIdx.x;
    if (h >= heads || i >= t) return;
    float *row = scores + ((long long)h * t + i) * t;
    const float *shifted = bd + ((long long)h * t + i) * (2 * t - 1) + (t - 1 - i);
    if (i >= validKeys) {
        for (int j = threadIdx.x; j < t; j += blockDim.x) row[j] = 0.0f;
        return;
    }
    float m = -3.402823466e38f;
    for (int j = threadIdx.x; j < validKeys; j += blockDim.x) {
        float s = (row[j] + shifted[j]) * scale;
        row[j] = s;
        m = fmaxf(m, s);
    }
    m = vani_block_max(m, shared);
    float sum = 0.0f;
    for (int j = threadIdx.x; j < validKeys; j += blockDim.x) { float e = expf(row[j] - m); row[j] = e; sum += e; }
    float inv = 1.0f / vani_block_sum(sum, shared);
    for (int j = threadIdx.x; j < t; j += blockDim.x) row[j] = j < validKeys ? row[j] * inv : 0.0f;
}

// im2col of one dense subsampling stage: input [cin, h, w] → col [cin·k·k, oh·ow], zero padding,
// the CPU's row order ((ci·k + ky)·k + kx).
extern "C" __global__ void vani_im2col_f32(const float *input, float *col, int cin, int h, int w,
                                           int k, int stride, int pad, int oh, int ow) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    long long plane = (long long)oh * ow;
    if (i >= (long long)cin * k * k * plane) return;
    int p = (int)(i % plane);
    int r = (int)(i / plane);
    int kx = r % k, ky = (r / k) % k, ci = r / (k * k);
    int oy = p / ow, ox = p % ow;
    int iy = oy * stride + ky - pad, ix = ox * stride + kx - pad;
    col[i] = (iy >= 0 && iy < h && ix >= 0 && ix < w) ? input[((long long)ci * h + iy) * w + ix] : 0.0f;
}

// Depthwise 3×3 (any k) stride-s conv of the subsampling: input [c, h, w] → out [c, oh, ow],
// bias first then taps in (ky, kx) order, like vani_depthwise_conv2d in CKernels.
extern "C" __global__ void vani_depthwise_conv2d_f32(const float *input, const float *weight, const float *bias,
                                                     float *out, int c, int h, int w, int k, int stride, int pad,
                                                     int oh, int ow) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    long long plane = (long long)oh * ow;
    if (i >= (long long)c * plane) return;
    int ch = (int)(i / plane), p = (int)(i % plane);
    int oy = p / ow, ox = p % ow;
    float acc = bias ? bias[ch] : 0.0f;
    for (int ky = 0; ky < k; ky++) {
        int iy = oy * stride + ky - pad;
        if (iy < 0 || iy >= h) continue;
        for (int kx = 0; kx < k; kx++) {
            int ix = ox * stride + kx - pad;
            if (ix < 0 || ix >= w) continue;
            acc += weight[(ch * k + ky) * k + kx] * input[((long long)ch * h + iy) * w + ix];
        }
    }
    out[i] = acc;
}

// planes [c, t, f] ← ReLU(planes + bias[c]) (bias may be null: already added), then rows
// (time steps) ≥ validT zeroed: the release's subsampling does not mask, so a padded batch
// must zero the padding after every stage to equal the lone utterance (docs/GPU.md pitfall 8).
extern "C" __global__ void vani_bias_relu_planes_f32(float *planes, const float *bias, int c, int t, int f, int validT) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    long long plane = (long long)t * f;
    if (i >= (long long)c * plane) return;
    int ch = (int)(i / plane), ti = (int)((i % plane) / f);
    float v = planes[i] + (bias ? bias[ch] : 0.0f);
    planes[i] = (ti < validT && v > 0.0f) ? v : 0.0f;
}

// (C, T', F') → (T', C·F') with index c·F' + f; rows ≥ validT zeroed.
extern "C" __global__ void vani_flatten_mask_f32(const float *planes, float *flat, int c, int t, int f, int validT) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long long)c * t * f) return;
    int ti = (int)(i / ((long long)c * f));
    int rest = (int)(i % ((long long)c * f));
    int ch = rest / f, fi = rest % f;
    flat[i] = ti < validT ? planes[((long long)ch * t + ti) * f + fi] : 0.0f;
}

// x [rows, cols]: rows ≥ valid set to zero.
extern "C" __global__ void vani_zero_rows_f32(float *x, int rows, int cols, int valid) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long long)rows * cols) return;
    if ((int)(i / cols) >= valid) x[i] = 0.0f;
}

// y [rows, cols] += bias [cols] (the weight products' bias after cuBLAS; cuBLASLt's BIAS
// epilogue would fuse it: docs/GPU.md).
extern "C" __global__ void vani_add_bias_f32(float *y, const float *bias, int rows, int cols) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < (long long)rows * cols) y[i] += bias[i % cols];
}

// fp32 → bf16 bits with round-to-nearest-even (NaN kept quiet), as ReducedPrecision's bf16(from:).
extern "C" __global__ void vani_f32_to_bf16(const float *in, unsigned short *out, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    unsigned int bits = __float_as_uint(in[i]);
    if ((bits & 0x7fffffffu) > 0x7f800000u) { out[i] = (unsigned short)((bits >> 16) | 0x40u); return; }
    bits += 0x7fffu + ((bits >> 16) & 1u);
    out[i] = (unsigned short)(bits >> 16);
}
"""#
}
