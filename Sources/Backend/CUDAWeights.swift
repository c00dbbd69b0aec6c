// The encoder's weights on the device, uploaded once: fp32 as loaded, or (bf16 mode) the
// matrices Precision.isReduced names rounded to bf16 on the host (round-to-nearest-even, as
// TensorModule's bf16 conversion), biases and norms fp32.

import CCUDA
import ConformerModel
import TensorModule

/// Device pointers of every encoder weight. Owned by `CUDABackend`, which frees them.
struct DeviceWeights: @unchecked Sendable {
    /// A weight matrix W [out, in] and its bias [out] (0: none).
    struct Linear {
        let weight: CUdeviceptr
        let bias: CUdeviceptr
        let inFeatures: Int
        let outFeatures: Int
        let isBF16: Bool
    }
    struct Norm { let gamma: CUdeviceptr; let beta: CUdeviceptr }
    struct Stage { let main: Linear; let depthwiseKernel: CUdeviceptr; let depthwiseBias: CUdeviceptr }
    struct Layer {
        let normFeedForward1: Norm, ff1Linear1: Linear, ff1Linear2: Linear
        let normSelfAtt: Norm, linearQ: Linear, linearK: Linear, linearV: Linear, linearOut: Linear, linearPos: Linear
        let posBiasU: CUdeviceptr, posBiasV: CUdeviceptr
        let normConv: Norm, pointwiseConv1: Linear, depthwiseKernelMajor: CUdeviceptr, depthwiseBias: CUdeviceptr
        let pointwiseConv2: Linear
        let normFeedForward2: Norm, ff2Linear1: Linear, ff2Linear2: Linear
        let normOut: Norm
    }

    let stages: [Stage]
    let preEncodeOut: Linear
    let layers: [Layer]
    /// Every allocation, for `release`.
    let allocations: [CUdeviceptr]
    /// Bytes on the device.
    let bytes: Int

    init(model: ConformerASRModel, mode: CUDABackend.Mode, driver: CUDADriver) throws {
        var allocations: [CUdeviceptr] = []
        var bytes = 0
        let d = driver.table.pointee
        func upload(_ pointer: UnsafeRawPointer, _ count: Int) throws -> CUdeviceptr {
            var p: CUdeviceptr = 0
            try CUDABackend.check(d.cuMemAlloc(&p, count), "cuMemAlloc(\(count) bytes of weights)", driver)
            allocations.append(p)
            bytes += count
            // Synchronous (stream 0): the host memory is the mapped file or a transient buffer.
            try CUDABackend.check(d.cuMemcpyHtoDAsync(p, pointer, count, nil), "upload weights", driver)
            try CUDABackend.check(d.cuStreamSynchronize(nil), "cuStreamSynchronize", driver)
            return p
        }
        func floats(_ pointer: UnsafePointer<Float>, _ count: Int) throws -> CUdeviceptr {
            try upload(UnsafeRawPointer(pointer), count * 4)
        }
        func linear(_ w: LinearWeights, reduced: Bool) throws -> Linear {
            guard case .fp32(let matrix) = w.storage else {
                throw CUDAFailure(description: "the CUDA backend uploads fp32 weights: load the model in fp32 (it converts to bf16 itself)")
            }
            let count = w.outFeatures * w.inFeatures
            let weight: CUdeviceptr
            let bf16 = reduced && mode == .bf16
            if bf16 {
                var half = [UInt16](repeating: 0, count: count)
                for i in 0..<count { half[i] = Self.bf16(matrix.pointer[i]) }
                weight = try half.withUnsafeBytes { try upload($0.baseAddress!, count * 2) }
            } else {
                weight = try floats(matrix.pointer, count)
            }
            let bias = try w.bias.map { try floats($0.pointer, w.outFeatures) } ?? 0
            return Linear(weight: weight, bias: bias, inFeatures: w.inFeatures, outFeatures: w.outFeatures, isBF16: bf16)
        }
        func norm(_ n: NormWeights) throws -> Norm {
            Norm(gamma: try floats(n.gamma.pointer, n.gamma.count), beta: try floats(n.beta.pointer, n.beta.count))
        }
        let encoder = model.encoder.weights
        var stages: [Stage] = []
        for stage in encoder.preEncode.stages {
            switch stage.convolution {
            case .dense(let conv):
                stages.append(Stage(main: try linear(conv, reduced: false), depthwiseKernel: 0, depthwiseBias: 0))
            case .depthwise(let kernel, let bias, let pointwise):
                stages.append(Stage(main: try linear(pointwise, reduced: false),
                                    depthwiseKernel: try floats(kernel.pointer, kernel.count),
                                    depthwiseBias: try floats(bias.pointer, bias.count)))
            }
        }
        self.stages = stages
        preEncodeOut = try linear(encoder.preEncode.out, reduced: true)
        var layers: [Layer] = []
        for l in encoder.layers {
            let a = l.selfAttn
            layers.append(Layer(
                normFeedForward1: try norm(l.normFeedForward1),
                ff1Linear1: try linear(l.feedForward1.linear1, reduced: true),
                ff1Linear2: try linear(l.feedForward1.linear2, reduced: true),
                normSelfAtt: try norm(l.normSelfAtt),
                linearQ: try linear(a.linearQ, reduced: true), linearK: try linear(a.linearK, reduced: true),
                linearV: try linear(a.linearV, reduced: true), linearOut: try linear(a.linearOut, reduced: true),
                linearPos: try linear(a.linearPos, reduced: true),
                posBiasU: try floats(a.posBiasU.pointer, a.posBiasU.count),
                posBiasV: try floats(a.posBiasV.pointer, a.posBiasV.count),
                normConv: try norm(l.normConv),
                pointwiseConv1: try linear(l.conv.pointwiseConv1, reduced: true),
                depthwiseKernelMajor: try floats(l.conv.depthwiseKernelMajor.pointer, l.conv.depthwiseKernelMajor.count),
                depthwiseBias: try floats(l.conv.depthwiseBias.pointer, l.conv.depthwiseBias.count),
                pointwiseConv2: try linear(l.conv.pointwiseConv2, reduced: true),
                normFeedForward2: try norm(l.normFeedForward2),
                ff2Linear1: try linear(l.feedForward2.linear1, reduced: true),
                ff2Linear2: try linear(l.feedForward2.linear2, reduced: true),
                normOut: try norm(l.normOut)))
        }
        self.layers = layers
        self.allocations = allocations
        self.bytes = bytes
    }

    /// Frees every allocation.
    func release(_ driver: CUDADriver) {
        for p in allocations { _ = driver.table.pointee.cuMemFree(p) }
    }

    /// fp32 → bf16 bits, round to nearest even; NaN stays a quiet NaN (as vani_f32_to_bf16).
    static func bf16(_ value: Float) -> UInt16 {
        let bits = value.bitPattern
        if bits & 0x7fff_ffff > 0x7f80_0000 { return UInt16(truncatingIfNeeded: (bits >> 16) | 0x40) }
        return UInt16(truncatingIfNeeded: (bits &+ 0x7fff &+ ((bits >> 16) & 1)) >> 16)
    }
}
