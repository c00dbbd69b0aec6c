#!/usr/bin/env python3
"""Writes the numpy reference fixtures for TensorModule's ops to Tests/Fixtures/ops/.

Each op gets its inputs and expected output as float32 .npy files named `<op>.<role>.npy`.
The references are computed in float64 numpy and stored as float32. Run from the repository root:

    python3 Tools/reference/make_op_fixtures.py

Only numpy is needed. The seed is fixed, so reruns write identical files.
"""
import os
import numpy as np

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "Fixtures", "ops")
rng = np.random.default_rng(20261125)


def save(name, **arrays):
    for role, a in arrays.items():
        np.save(os.path.join(OUT, f"{name}.{role}.npy"), np.ascontiguousarray(a, dtype="<f4"))


def randn(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def f64(a):
    return a.astype(np.float64)


def main():
    os.makedirs(OUT, exist_ok=True)
    # sgemm with every transpose combination: C = A'·B' with A' m×k, B' k×n.
    m, n, k = 7, 5, 9
    for ta in (0, 1):
        for tb in (0, 1):
            a = randn(k, m) if ta else randn(m, k)
            b = randn(n, k) if tb else randn(k, n)
            c0 = randn(m, n)
            ref = 1.5 * (f64(a).T if ta else f64(a)) @ (f64(b).T if tb else f64(b)) + 0.5 * f64(c0)
            save(f"sgemm_t{ta}{tb}", a=a, b=b, c0=c0, out=ref)
    # batched sgemm: attention-like q·kᵀ per head.
    q, kk = randn(3, 6, 4), randn(3, 8, 4)
    save("batched", a=q, b=kk, out=np.einsum("hid,hjd->hij", f64(q), f64(kk)))
    # linear y = x·Wᵀ + b
    x, w, b = randn(6, 10), randn(12, 10), randn(12)
    save("linear", x=x, w=w, b=b, out=f64(x) @ f64(w).T + f64(b))
    # layer norm
    x, g, be = randn(5, 33) * 3 + 1, randn(33), randn(33)
    mu = f64(x).mean(-1, keepdims=True)
    var = f64(x).var(-1, keepdims=True)
    save("layernorm", x=x, gamma=g, beta=be, out=(f64(x) - mu) / np.sqrt(var + 1e-5) * f64(g) + f64(be))
    # softmax / log-softmax with a wide range
    x = randn(4, 257) * 8
    e = np.exp(f64(x) - f64(x).max(-1, keepdims=True))
    save("softmax", x=x, out=e / e.sum(-1, keepdims=True))
    lse = np.log(np.exp(f64(x) - f64(x).max(-1, keepdims=True)).sum(-1, keepdims=True)) + f64(x).max(-1, keepdims=True)
    save("logsoftmax", x=x, out=f64(x) - lse)
    # activations
    x = randn(300) * 6
    save("silu", x=x, out=f64(x) / (1 + np.exp(-f64(x))))
    save("sigmoid", x=x, out=1 / (1 + np.exp(-f64(x))))
    save("relu", x=x, out=np.maximum(f64(x), 0))
    save("tanh", x=x, out=np.tanh(f64(x)))
    # GLU over the last axis: first half · sigmoid(second half)
    x = randn(7, 2 * 11)
    save("glu", x=x, out=f64(x[:, :11]) / (1 + np.exp(-f64(x[:, 11:]))))
    # bias broadcast and residual
    x, b = randn(6, 9), randn(9)
    save("addbias", x=x, b=b, out=f64(x) + f64(b))
    x, y = randn(50), randn(50)
    save("addscaled", x=x, y=y, out=f64(y) + 0.5 * f64(x))
    # depthwise conv1d over time, channel-last, PyTorch weight layout [C, 1, K], padding (K-1)/2
    T, C, K = 13, 6, 9
    x, w, b = randn(T, C), randn(C, 1, K), randn(C)
    pad = (K - 1) // 2
    xp = np.pad(f64(x), ((pad, pad), (0, 0)))
    out = np.stack([(xp[t:t + K] * f64(w)[:, 0, :].T).sum(0) for t in range(T)]) + f64(b)
    save("dwconv1d", x=x, w=w, b=b, out=out)
    # conv2d 3×3 stride 2 pad 1: dense (Cin 1 and 3) and depthwise
    def conv2d(x, w, b, groups):
        cin, h, wd = x.shape
        cout = w.shape[0]
        oh, ow = (h + 2 - 3) // 2 + 1, (wd + 2 - 3) // 2 + 1
        xp = np.pad(f64(x), ((0, 0), (1, 1), (1, 1)))
        out = np.zeros((cout, oh, ow))
        per = cin // groups
        for co in range(cout):
            g = co // (cout // groups)
            for oy in range(oh):
                for ox in range(ow):
                    patch = xp[g * per:(g + 1) * per, 2 * oy:2 * oy + 3, 2 * ox:2 * ox + 3]
                    out[co, oy, ox] = (patch * f64(w[co])).sum() + b[co]
        return out
    for name, cin, cout, groups in (("conv2d_c1", 1, 4, 1), ("conv2d_c3", 3, 5, 1), ("conv2d_dw", 4, 4, 4)):
        x = randn(cin, 11, 10)
        w, b = randn(cout, cin // groups, 3, 3), randn(cout)
        save(name, x=x, w=w, b=b, out=conv2d(x, w, b, groups))
    # transpose and argmax
    x = randn(7, 12)
    save("transpose", x=x, out=x.T)
    x = randn(40, 257)
    save("argmax", x=x, out=x.argmax(-1).astype(np.float32))
    # fused bias + SiLU and bias + GLU (the encoder's FF and conv-module passes)
    x, b = randn(5, 24) * 4, randn(24)
    v = f64(x) + f64(b)
    save("bias_silu", x=x, b=b, out=v / (1 + np.exp(-v)))
    x, b = randn(6, 2 * 13) * 3, randn(2 * 13)
    v = f64(x) + f64(b)
    save("bias_glu", x=x, b=b, out=v[:, :13] / (1 + np.exp(-v[:, 13:])))


if __name__ == "__main__":
    main()
