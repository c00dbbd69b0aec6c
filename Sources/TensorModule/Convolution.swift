// Convolutions a Conformer needs: 1-D depthwise over time (the conv module), pointwise as a
// Linear, and 2-D 3×3 stride-2 convolutions for the subsampling front (dense via im2col + sgemm,
// depthwise directly).

import CKernels

/// Output length of a convolution along one axis.
@inline(__always)
public func convOutputSize(_ input: Int, kernel: Int, stride: Int, padding: Int) -> Int {
    (input + 2 * padding - kernel) / stride + 1
}

/// Depthwise 1-D convolution over time, channel-last: out[t, c] = bias[c] +
/// Σ_k weight[k, c] · x[t + k − padding, c] (zero outside [0, frames)).
/// `x` and `out` are [frames, channels] and must not alias; `weight` is kernel-major [kernel, channels]
/// (transpose PyTorch's [channels, 1, kernel] once at load).
public func depthwiseConv1d(_ x: UnsafePointer<Float>, frames: Int, channels: Int,
                            weight: UnsafePointer<Float>, kernel: Int, bias: UnsafePointer<Float>?,
                            padding: Int, into out: UnsafeMutablePointer<Float>) {
    Parallel.rows(frames, cols: channels * kernel) { range in
        depthwiseConv1dFrames(x, frames: frames, channels: channels, weight: weight, kernel: kernel,
                              bias: bias, padding: padding, into: out, range: range)
    }
}

/// The output frames `range` of `depthwiseConv1d`.
@inline(__always)
private func depthwiseConv1dFrames(_ x: UnsafePointer<Float>, frames: Int, channels: Int,
                                   weight: UnsafePointer<Float>, kernel: Int, bias: UnsafePointer<Float>?,
                                   padding: Int, into out: UnsafeMutablePointer<Float>, range: Range<Int>) {
    for t in range {
        let o = out + t * channels
        if let bias { o.update(from: bias, count: channels) } else { o.update(repeating: 0, count: channels) }
        for k in 0..<kernel {
            let src = t + k - padding
            if src < 0 || src >= frames { continue }
            let xi = x + src * channels
            let w = weight + k * channels
            for c in 0..<channels { o[c] += w[c] * xi[c] }
        }
    }
}

/// Shape of one 2-D convolution: input [channelsIn, height, width] → output [channelsOut, outHeight, outWidth].
public struct Conv2dShape: Sendable, Equatable {
    /// Input channels, input height (frames), input width (bins), output channels.
    public var channelsIn, height, width, channelsOut: Int
    /// Square kernel size, stride, zero padding, groups (1 or the channel count).
    public var kernel, stride, padding, groups: Int

    public init(channelsIn: Int, height: Int, width: Int, channelsOut: Int,
                kernel: Int = 3, stride: Int = 2, padding: Int = 1, groups: Int = 1) {
        precondition(channelsIn % groups == 0 && channelsOut % groups == 0,
                     "groups \(groups) must divide channels \(channelsIn) → \(channelsOut)")
        self.channelsIn = channelsIn; self.height = height; self.width = width
        self.channelsOut = channelsOut; self.kernel = kernel; self.stride = stride
        self.padding = padding; self.groups = groups
    }

    public var outHeight: Int { convOutputSize(height, kernel: kernel, stride: stride, padding: padding) }
    public var outWidth: Int { convOutputSize(width, kernel: kernel, stride: stride, padding: padding) }
    /// Floats of scratch `conv2d` needs (the im2col matrix for dense convolutions).
    public var scratchCount: Int {
        groups == 1 ? channelsIn * kernel * kernel * outHeight * outWidth : 0
    }
}

/// The im2col matrix of a dense 2-D convolution: col[(ci·k + ky)·k + kx, oy·ow + ox] =
/// input[ci, oy·s + ky − p, ox·s + kx − p] (zero outside), [channelsIn·k·k, outHeight·outWidth],
/// so the convolution is one product weight[channelsOut, channelsIn·k·k] · col.
/// `col` holds `shape.scratchCount` floats.
public func im2col(_ input: UnsafePointer<Float>, shape: Conv2dShape, into col: UnsafeMutablePointer<Float>) {
    let (h, w, k, s, p) = (shape.height, shape.width, shape.kernel, shape.stride, shape.padding)
    let (oh, ow) = (shape.outHeight, shape.outWidth)
    let plane = oh * ow
    for ci in 0..<shape.channelsIn {
        for ky in 0..<k {
            for kx in 0..<k {
                let row = col + ((ci * k + ky) * k + kx) * plane
                for oy in 0..<oh {
                    let iy = oy * s + ky - p
                    let dst = row + oy * ow
                    if iy < 0 || iy >= h { dst.update(repeating: 0, count: ow); continue }
                    let src = input + (ci * h + iy) * w
                    for ox in 0..<ow {
                        let ix = ox * s + kx - p
                        dst[ox] = (ix >= 0 && ix < w) ? src[ix] : 0
                    }
                }
            }
        }
    }
}

/// 2-D convolution, PyTorch semantics (cross-correlation, zero padding), for groups = 1 (im2col +
/// sgemm) or groups = channelsIn = channelsOut (depthwise, direct).
/// `weight` is [channelsOut, channelsIn/groups, kernel, kernel]; `scratch` holds `shape.scratchCount` floats.
public func conv2d(_ input: UnsafePointer<Float>, shape: Conv2dShape,
                   weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                   into output: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>?) {
    let (h, w, k, s, p) = (shape.height, shape.width, shape.kernel, shape.stride, shape.padding)
    let (oh, ow) = (shape.outHeight, shape.outWidth)
    let plane = oh * ow
    if shape.groups == 1 {
        guard let col = scratch else { preconditionFailure("dense conv2d needs scratch of \(shape.scratchCount) floats") }
        im2col(input, shape: shape, into: col)
        let kk = shape.channelsIn * k * k
        if let bias {
            for co in 0..<shape.channelsOut { (output + co * plane).update(repeating: bias[co], count: plane) }
        }
        sgemm(m: shape.channelsOut, n: plane, k: kk, a: weight, lda: kk, b: col, ldb: plane,
              beta: bias == nil ? 0 : 1, c: output, ldc: plane)
    } else {
        precondition(shape.groups == shape.channelsIn && shape.groups == shape.channelsOut,
                     "only groups = 1 or depthwise (groups = channels) are supported, got groups \(shape.groups) for \(shape.channelsIn) → \(shape.channelsOut)")
        // Channels are independent: split them over the pool (Sources/CKernels/kernels.c).
        Parallel.rows(shape.channelsIn, cols: plane * k * k) { channels in
            vani_depthwise_conv2d(input, channels.lowerBound, channels.upperBound, h, w, k, s, p, oh, ow,
                                  weight, bias, output)
        }
    }
}
