// The encoder on an NVIDIA GPU (issue 15): weights uploaded once; the weight products through
// cuBLAS (`cublasGemmEx`), attention products as strided-batched GEMMs over the heads, the
// element-wise work as CUDAKernels compiled by NVRTC for the device's exact architecture. The
// CTC head and RNN-T greedy stay on the CPU: one copy of the encoder output back.
//
// Written against ConformerEncoder.forward's op order (Sources/ConformerModel/Encoder.swift)
// but NOT YET RUN ON A GPU: `isVerified` stays false until Tools/gpu/check.sh shows parity
// (docs/GPU.md, "Not done yet"), and until then `auto` never picks it.

import CCUDA
import ConformerModel
import Decoding
import Foundation
import Frontend
import Synchronization
import TensorModule

/// A failure of the GPU at run time (an allocation, a launch, a copy), with the driver's message.
public struct CUDAFailure: Error, CustomStringConvertible, Sendable {
    /// What failed and the driver's or cuBLAS's code.
    public let description: String
}

/// The encoder on one CUDA device behind `InferenceBackend`. Immutable after init; each forward
/// pass takes a (stream, cuBLAS handle, workspace) lane from a pool, so passes run at once.
public final class CUDABackend: InferenceBackend, @unchecked Sendable {
    /// Whether this build's CUDA encoder has been checked on a GPU (Tools/gpu/check.sh). While
    /// false, `auto` stays on the CPU and `--device cuda` says the path is unverified.
    public static let isVerified = false
    /// Why `auto` does not pick a usable GPU.
    public static let notImplementedReason =
        "this build's CUDA encoder has not been verified on a GPU yet (docs/GPU.md, \"Not done yet\"); --device cuda runs it anyway"

    /// The precisions the GPU offers.
    public enum Mode: String, Sendable {
        /// fp32 storage, fp32 compute (CUBLAS_COMPUTE_32F, no TF32): the parity gate.
        case fp32
        /// fp32 storage, TF32 tensor-core products.
        case tf32
        /// bf16 weight-GEMM operands, fp32 accumulation, residual stream and statistics.
        case bf16
    }

    public let device: ComputeDevice
    /// The device's description.
    public let info: CUDADeviceInfo
    /// The precision of the weight products.
    public let mode: Mode
    /// The kernels' build (architecture, registers, cached or fresh).
    public let kernels: CUDAKernelBuild
    /// Seconds spent uploading the weights.
    public let uploadSeconds: Double
    /// Bytes of weights on the device.
    public var weightBytes: Int { weights.bytes }

    let model: ConformerASRModel
    let driver: CUDADriver
    let cublas: CuBLASLibrary
    let context: CUcontext
    let module: CUmodule
    let functions: [String: CUfunction]
    let weights: DeviceWeights
    let lanes = Mutex<[Lane]>([])

    private var d: vani_cuda_driver { driver.table.pointee }
    private var b: vani_cublas { cublas.table.pointee }

    /// Builds the backend on `cuda:ordinal` of `probe`: compiles (or reads from the cache) the
    /// kernels for the device's architecture (cached in `kernelCache`; nil: no cache), uploads
    /// the weights.
    /// - Throws: `CUDAUnavailable` when the probe found no usable device at `ordinal`;
    ///   `CUDAFailure` when compiling, loading or uploading fails.
    public init(model: ConformerASRModel, ordinal: Int, precision: Precision, probe: CUDAProbe = .shared,
                kernelCache: URL? = CUDAKernelBuild.cacheDirectory()) throws {
        let info = try probe.device(ordinal).get()
        guard let driver = probe.driver, let nvrtc = try probe.nvrtc?.get(), let cublas = try probe.cublas?.get() else {
            throw CUDAUnavailable(.unsupported, "the probe holds no driver or libraries")
        }
        switch precision {
        case .fp32: mode = .fp32
        case .tf32: mode = .tf32
        case .bf16: mode = .bf16
        case .int8: throw CUDAUnavailable(.unsupported, "int8 is not offered on CUDA: use fp32, tf32 or bf16")
        }
        self.model = model; self.driver = driver; self.cublas = cublas; self.info = info
        self.device = .cuda(ordinal)
        let t = driver.table.pointee
        var dev: CUdevice = 0
        try Self.check(t.cuDeviceGet(&dev, Int32(ordinal)), "cuDeviceGet", driver)
        var ctx: CUcontext?
        // The primary context, shared with cuBLAS's runtime API (docs/GPU.md pitfall 7).
        try Self.check(t.cuDevicePrimaryCtxRetain(&ctx, dev), "cuDevicePrimaryCtxRetain", driver)
        guard let ctx else { throw CUDAFailure(description: "cuDevicePrimaryCtxRetain gave no context") }
        context = ctx
        try Self.check(t.cuCtxSetCurrent(ctx), "cuCtxSetCurrent", driver)
        do {
            kernels = try CUDAKernelBuild.build(nvrtc, architecture: info.architecture, cache: kernelCache)
        } catch {
            throw CUDAFailure(description: "compiling the kernels for \(info.architecture): \(error.description)")
        }
        var module: CUmodule?
        let loaded = kernels.cubin.withUnsafeBytes { t.cuModuleLoadData(&module, $0.baseAddress!) }
        try Self.check(loaded, "cuModuleLoadData", driver)
        guard let module else { throw CUDAFailure(description: "cuModuleLoadData gave no module") }
        self.module = module
        var functions: [String: CUfunction] = [:]
        for name in CUDAKernels.names {
            var f: CUfunction?
            try Self.check(t.cuModuleGetFunction(&f, module, name), "cuModuleGetFunction(\(name))", driver)
            functions[name] = f
        }
        self.functions = functions
        let start = DispatchTime.now().uptimeNanoseconds
        weights = try DeviceWeights(model: model, mode: mode, driver: driver)
        uploadSeconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    deinit {
        _ = d.cuCtxSetCurrent(context)
        lanes.withLock { all in
            for lane in all { lane.release(driver: driver, cublas: cublas) }
            all.removeAll()
        }
        weights.release(driver)
        _ = d.cuModuleUnload(module)
    }

    static func check(_ status: CUresult, _ what: String, _ driver: CUDADriver) throws {
        guard status != 0 else { return }
        throw CUDAFailure(description: "\(what): \(driver.message(status))")
    }

    // MARK: - InferenceBackend

    /// See `InferenceBackend.encode`. A GPU failure mid-pass stops the process with the
    /// driver's message (the protocol does not throw; docs/GPU.md lists this as not done).
    public func encode(_ batch: [Features]) -> [Tensor] {
        batch.map { features in
            do { return try encodeOne(features) } catch { preconditionFailure("CUDA encoder: \(error)") }
        }
    }

    /// See `InferenceBackend.recognize`: the encoder on the GPU, the decoder on the CPU.
    public func recognize(_ batch: [Features], decoder: Decoder) -> [DecodedTokens] {
        encode(batch).map { decoder.decode($0.pointer, frames: $0.shape[0]) }
    }

    // MARK: - One forward pass

    /// Runs the encoder on one utterance and copies [T', d] back.
    func encodeOne(_ features: Features) throws -> Tensor {
        try Self.check(d.cuCtxSetCurrent(context), "cuCtxSetCurrent", driver)
        let lane = try takeLane()
        defer { lanes.withLock { $0.append(lane) } }
        let c = model.encoder.config
        let encoder = model.encoder
        let dm = c.dModel, heads = c.heads
        // Shapes as ConformerEncoder.Plan makes them.
        var shapes: [Conv2dShape] = []
        var frames = features.frames
        for stage in encoder.weights.preEncode.stages {
            var s = stage.shapeTemplate
            s.height = frames
            shapes.append(s)
            frames = s.outHeight
        }
        let tPadded = frames
        let t = min(encoder.outputLength(features.validFrames), tPadded)
        let p = 2 * t - 1
        let maxPlane = shapes.map { $0.channelsOut * $0.outHeight * $0.outWidth }.max() ?? 0
        let maxCol = shapes.map(\.scratchCount).max() ?? 0
        let last = shapes[shapes.count - 1]
        let flatWidth = last.channelsOut * last.outWidth
        // Scratch for this pass, in one allocation (offsets in floats).
        var layout: [String: Int] = [:]
        var total = 0
        func reserve(_ name: String, _ count: Int) { layout[name] = total; total += (count + 63) / 64 * 64 }
        reserve("features", features.values.count)
        reserve("planeA", maxPlane); reserve("planeB", maxPlane); reserve("col", max(1, maxCol))
        reserve("flat", tPadded * flatWidth); reserve("sub", tPadded * dm)
        reserve("x", t * dm); reserve("normed", t * dm); reserve("hidden", t * c.ffDim)
        reserve("q", t * dm); reserve("k", t * dm); reserve("v", t * dm); reserve("qu", t * dm); reserve("qv", t * dm)
        reserve("pos", p * dm); reserve("posProj", p * dm); reserve("ctx", t * dm)
        reserve("scores", heads * t * t); reserve("bd", heads * t * p)
        reserve("pointwise", t * 2 * dm); reserve("glu", t * dm); reserve("dw", t * dm)
        // bf16 copies of a weight product's input: rows × in values, two bytes each.
        reserve("bf16", mode == .bf16 ? max(t * c.ffDim, tPadded * flatWidth, p * dm, t * dm) / 2 + 1 : 0)
        var base: CUdeviceptr = 0
        try Self.check(d.cuMemAlloc(&base, total * 4), "cuMemAlloc(\(total * 4) bytes)", driver)
        let stream = lane.stream
        // Nothing queued may still use the scratch when it is freed (a pass that failed midway).
        defer { _ = d.cuStreamSynchronize(stream); _ = d.cuMemFree(base) }
        func at(_ name: String) -> CUdeviceptr { base + CUdeviceptr(layout[name]! * 4) }
        let pass = Pass(backend: self, lane: lane)

        // Subsampling: each stage's convolution, its bias and ReLU (padding rows kept: a lone
        // utterance computes them too, as the CPU does).
        try features.values.withUnsafeBytes {
            try Self.check(d.cuMemcpyHtoDAsync(at("features"), $0.baseAddress!, $0.count, stream), "copy features", driver)
        }
        var input = at("features")
        var (current, other) = (at("planeA"), at("planeB"))
        for (index, (stage, shape)) in zip(encoder.weights.preEncode.stages, shapes).enumerated() {
            let plane = shape.outHeight * shape.outWidth
            let w = weights.stages[index]
            switch stage.convolution {
            case .dense:
                let cols = shape.channelsIn * 9
                try pass.launch("vani_im2col_f32", count: cols * plane,
                                [.ptr(input), .ptr(at("col")), .i32(shape.channelsIn), .i32(shape.height), .i32(shape.width),
                                 .i32(3), .i32(2), .i32(1), .i32(shape.outHeight), .i32(shape.outWidth)])
                // out (C, plane) = W (C, Cin·9) · col (Cin·9, plane)
                try pass.gemmChannelMajor(w.main, x: at("col"), columns: plane, into: current)
                try pass.launch("vani_bias_relu_planes_f32", count: shape.channelsOut * plane,
                                [.ptr(current), .ptr(w.main.bias), .i32(shape.channelsOut), .i32(shape.outHeight),
                                 .i32(shape.outWidth), .i32(shape.outHeight)])
            case .depthwise:
                try pass.launch("vani_depthwise_conv2d_f32", count: shape.channelsOut * plane,
                                [.ptr(input), .ptr(w.depthwiseKernel), .ptr(w.depthwiseBias), .ptr(current),
                                 .i32(shape.channelsOut), .i32(shape.height), .i32(shape.width), .i32(3), .i32(2), .i32(1),
                                 .i32(shape.outHeight), .i32(shape.outWidth)])
                try pass.gemmChannelMajor(w.main, x: current, columns: plane, into: other)
                try pass.launch("vani_bias_relu_planes_f32", count: shape.channelsOut * plane,
                                [.ptr(other), .ptr(w.main.bias), .i32(shape.channelsOut), .i32(shape.outHeight),
                                 .i32(shape.outWidth), .i32(shape.outHeight)])
                swap(&current, &other)
            }
            input = current
            swap(&current, &other)
        }
        try pass.launch("vani_flatten_mask_f32", count: tPadded * flatWidth,
                        [.ptr(input), .ptr(at("flat")), .i32(last.channelsOut), .i32(tPadded), .i32(last.outWidth), .i32(tPadded)])
        try pass.linear(weights.preEncodeOut, x: at("flat"), rows: tPadded, into: at("sub"), bias: true, scratch: at("bf16"))
        let x = at("x")
        try Self.check(d.cuMemcpyDtoDAsync(x, at("sub"), t * dm * 4, stream), "copy subsampled", driver)
        if c.xscaling {
            try pass.launch("vani_scale_f32", count: t * dm, [.ptr(x), .f32(Float(dm).squareRoot()), .i64(t * dm)])
        }
        // Positions on the host (the table or NeMo's formula), one copy in.
        let positions = Tensor(zeros: [p, dm])                                        // (2T' − 1, d)
        encoder.positionalEmbedding(frames: t, into: positions.pointer)
        try Self.check(d.cuMemcpyHtoDAsync(at("pos"), positions.pointer, p * dm * 4, stream), "copy positions", driver)

        for layer in weights.layers {
            try forwardLayer(layer, pass: pass, x: x, t: t, at: at)
        }
        let output = Tensor(zeros: [t, dm])                                           // (T', d)
        try Self.check(d.cuMemcpyDtoHAsync(output.pointer, x, t * dm * 4, stream), "copy encoder output", driver)
        try Self.check(d.cuStreamSynchronize(stream), "cuStreamSynchronize", driver)
        withExtendedLifetime(positions) {}
        return output
    }

    /// One Conformer layer in place on x (T, d), in ConformerEncoder.forwardLayer's order.
    private func forwardLayer(_ w: DeviceWeights.Layer, pass: Pass, x: CUdeviceptr, t: Int,
                              at: (String) -> CUdeviceptr) throws {
        let c = model.encoder.config
        let dm = c.dModel, heads = c.heads, dk = dm / heads, p = 2 * t - 1
        let eps = c.layerNormEps
        let n = t * dm
        func layerNorm(_ norm: DeviceWeights.Norm, from: CUdeviceptr, into: CUdeviceptr) throws {
            try pass.launchRows("vani_layernorm_f32", rows: t,
                                [.ptr(from), .ptr(norm.gamma), .ptr(norm.beta), .ptr(into), .i32(t), .i32(dm), .f32(eps)])
        }
        func feedForward(_ norm: DeviceWeights.Norm, _ l1: DeviceWeights.Linear, _ l2: DeviceWeights.Linear) throws {
            try layerNorm(norm, from: x, into: at("normed"))                                // (T, d)
            try pass.linear(l1, x: at("normed"), rows: t, into: at("hidden"), bias: false, scratch: at("bf16"))
            try pass.launch("vani_bias_silu_f32", count: t * c.ffDim, [.ptr(at("hidden")), .ptr(l1.bias), .i32(t), .i32(c.ffDim)])
            try pass.linear(l2, x: at("hidden"), rows: t, into: at("q"), bias: true, scratch: at("bf16"))   // (T, d)
            try pass.launch("vani_add_scaled_f32", count: n, [.ptr(x), .ptr(at("q")), .f32(0.5), .i64(n)])
        }
        // 1. x += ½ · FF1(LN(x))
        try feedForward(w.normFeedForward1, w.ff1Linear1, w.ff1Linear2)
        // 2. x += MHSA(LN(x))
        try layerNorm(w.normSelfAtt, from: x, into: at("normed"))
        try pass.linear(w.linearQ, x: at("normed"), rows: t, into: at("q"), bias: true, scratch: at("bf16"))
        try pass.linear(w.linearK, x: at("normed"), rows: t, into: at("k"), bias: true, scratch: at("bf16"))
        try pass.linear(w.linearV, x: at("normed"), rows: t, into: at("v"), bias: true, scratch: at("bf16"))
        try pass.launch("vani_pos_bias_f32", count: n,
                        [.ptr(at("q")), .ptr(w.posBiasU), .ptr(w.posBiasV), .ptr(at("qu")), .ptr(at("qv")), .i32(t), .i32(dm)])
        try pass.linear(w.linearPos, x: at("pos"), rows: p, into: at("posProj"), bias: false, scratch: at("bf16"))
        // ac[h] (T, T) = (q+u)_h · k_hᵀ ; bd[h] (T, 2T−1) = (q+v)_h · p_hᵀ ; column-major views.
        try pass.batched(transA: true, m: t, n: t, k: dk, a: at("k"), lda: dm, strideA: dk,
                         b: at("qu"), ldb: dm, strideB: dk, c: at("scores"), ldc: t, strideC: t * t, batch: heads)
        try pass.batched(transA: true, m: p, n: t, k: dk, a: at("posProj"), lda: dm, strideA: dk,
                         b: at("qv"), ldb: dm, strideB: dk, c: at("bd"), ldc: p, strideC: t * p, batch: heads)
        try pass.launchRows("vani_relshift_softmax_f32", rows: t, gridY: heads,
                            [.ptr(at("scores")), .ptr(at("bd")), .i32(heads), .i32(t), .f32(1 / Float(dk).squareRoot()), .i32(t)])
        // ctx_h (T, dK) of (T, d) = weights_h (T, T) · v_h (T, dK)
        try pass.batched(transA: false, m: dk, n: t, k: t, a: at("v"), lda: dm, strideA: dk,
                         b: at("scores"), ldb: t, strideB: t * t, c: at("ctx"), ldc: dm, strideC: dk, batch: heads)
        try pass.linear(w.linearOut, x: at("ctx"), rows: t, into: x, bias: true, accumulate: true, scratch: at("bf16"))
        // 3. x += Conv(LN(x))
        try layerNorm(w.normConv, from: x, into: at("normed"))
        try pass.linear(w.pointwiseConv1, x: at("normed"), rows: t, into: at("pointwise"), bias: false, scratch: at("bf16"))
        try pass.launch("vani_bias_glu_mask_f32", count: n,
                        [.ptr(at("pointwise")), .ptr(w.pointwiseConv1.bias), .ptr(at("glu")), .i32(t), .i32(dm), .i32(t)])
        try pass.launch("vani_depthwise_conv_silu_f32", count: n,
                        [.ptr(at("glu")), .ptr(w.depthwiseKernelMajor), .ptr(w.depthwiseBias), .ptr(at("dw")),
                         .i32(t), .i32(dm), .i32(c.convKernel), .i32((c.convKernel - 1) / 2)])
        try pass.linear(w.pointwiseConv2, x: at("dw"), rows: t, into: x, bias: true, accumulate: true, scratch: at("bf16"))
        // 4. x += ½ · FF2(LN(x))
        try feedForward(w.normFeedForward2, w.ff2Linear1, w.ff2Linear2)
        // 5. x = LN_out(x)
        try layerNorm(w.normOut, from: x, into: x)
    }

    // MARK: - Lanes: one stream and cuBLAS handle per pass in flight

    final class Lane: @unchecked Sendable {
        let stream: CUstream
        let handle: cublasHandle_t
        let workspace: CUdeviceptr
        init(stream: CUstream, handle: cublasHandle_t, workspace: CUdeviceptr) {
            self.stream = stream; self.handle = handle; self.workspace = workspace
        }
        func release(driver: CUDADriver, cublas: CuBLASLibrary) {
            _ = cublas.table.pointee.cublasDestroy(handle)
            _ = driver.table.pointee.cuMemFree(workspace)
            _ = driver.table.pointee.cuStreamDestroy(stream)
        }
    }

    /// A free lane, or a new one (stream, handle on it, 32 MiB workspace: pitfall 8).
    private func takeLane() throws -> Lane {
        if let lane = lanes.withLock({ $0.popLast() }) { return lane }
        var stream: CUstream?
        try Self.check(d.cuStreamCreate(&stream, 1 /* CU_STREAM_NON_BLOCKING */), "cuStreamCreate", driver)
        var handle: cublasHandle_t?
        guard b.cublasCreate(&handle) == 0, let handle, let stream else { throw CUDAFailure(description: "cublasCreate failed") }
        var workspace: CUdeviceptr = 0
        let workspaceBytes = 32 << 20
        try Self.check(d.cuMemAlloc(&workspace, workspaceBytes), "cuMemAlloc(workspace)", driver)
        guard b.cublasSetStream(handle, stream) == 0,
              b.cublasSetWorkspace(handle, UnsafeMutableRawPointer(bitPattern: UInt(workspace)), workspaceBytes) == 0 else {
            throw CUDAFailure(description: "cublasSetStream/cublasSetWorkspace failed")
        }
        return Lane(stream: stream, handle: handle, workspace: workspace)
    }
}

// MARK: - Launches and products of one pass

/// One argument of a kernel launch.
enum KernelArgument {
    case ptr(CUdeviceptr)
    case i32(Int)
    case i64(Int)
    case f32(Float)
}

/// The launches and GEMMs of one forward pass on one lane.
struct Pass {
    let backend: CUDABackend
    let lane: CUDABackend.Lane

    /// Launches an element-wise kernel over `count` elements, 256 threads a block.
    func launch(_ name: String, count: Int, _ arguments: [KernelArgument]) throws {
        let blocks = (count + 255) / 256
        try run(name, grid: (UInt32(max(1, blocks)), 1), block: 256, arguments)
    }

    /// Launches a row kernel: one block of `CUDAKernels.rowThreads` threads per row (× gridY).
    func launchRows(_ name: String, rows: Int, gridY: Int = 1, _ arguments: [KernelArgument]) throws {
        try run(name, grid: (UInt32(rows), UInt32(gridY)), block: UInt32(CUDAKernels.rowThreads), arguments)
    }

    private func run(_ name: String, grid: (UInt32, UInt32), block: UInt32, _ arguments: [KernelArgument]) throws {
        guard let function = backend.functions[name] else { throw CUDAFailure(description: "no kernel \(name)") }
        // Each argument's bytes live in their own allocation for the launch.
        var storage: [UnsafeMutableRawPointer] = []
        defer { storage.forEach { $0.deallocate() } }
        for argument in arguments {
            let slot = UnsafeMutableRawPointer.allocate(byteCount: 8, alignment: 8)
            switch argument {
            case .ptr(let p): slot.storeBytes(of: p, as: CUdeviceptr.self)
            case .i32(let v): slot.storeBytes(of: Int32(v), as: Int32.self)
            case .i64(let v): slot.storeBytes(of: Int64(v), as: Int64.self)
            case .f32(let v): slot.storeBytes(of: v, as: Float.self)
            }
            storage.append(slot)
        }
        var params: [UnsafeMutableRawPointer?] = storage
        let status = params.withUnsafeMutableBufferPointer {
            backend.driver.table.pointee.cuLaunchKernel(function, grid.0, grid.1, 1, block, 1, 1, 0, lane.stream,
                                                        $0.baseAddress, nil)
        }
        try CUDABackend.check(status, "cuLaunchKernel(\(name))", backend.driver)
    }

    private var computeType: Int32 {
        switch backend.mode {
        case .fp32: return Int32(VANI_CUBLAS_COMPUTE_32F)
        case .tf32: return Int32(VANI_CUBLAS_COMPUTE_32F_FAST_TF32)
        case .bf16: return Int32(VANI_CUBLAS_COMPUTE_32F)   // bf16 operands, fp32 accumulation
        }
    }

    /// y [rows, out] (+)= x [rows, in] · Wᵀ (+ bias when `bias`), as ConformerModel's
    /// LinearWeights.apply. Column-major: yᵀ (out × rows) = op_T(W as in × out) · xᵀ (in × rows).
    func linear(_ w: DeviceWeights.Linear, x: CUdeviceptr, rows: Int, into y: CUdeviceptr, bias: Bool,
                accumulate: Bool = false, scratch: CUdeviceptr) throws {
        var alpha: Float = 1, beta: Float = accumulate ? 1 : 0
        let bf16 = w.isBF16
        var operand = x
        if bf16 {
            try launch("vani_f32_to_bf16", count: rows * w.inFeatures, [.ptr(x), .ptr(scratch), .i64(rows * w.inFeatures)])
            operand = scratch
        }
        let type = Int32(bf16 ? VANI_CUDA_R_16BF : VANI_CUDA_R_32F)
        let status = backend.cublas.table.pointee.cublasGemmEx(
            lane.handle, Int32(VANI_CUBLAS_OP_T), Int32(VANI_CUBLAS_OP_N),
            Int32(w.outFeatures), Int32(rows), Int32(w.inFeatures), &alpha,
            UnsafeRawPointer(bitPattern: UInt(w.weight)), type, Int32(w.inFeatures),
            UnsafeRawPointer(bitPattern: UInt(operand)), type, Int32(w.inFeatures), &beta,
            UnsafeMutableRawPointer(bitPattern: UInt(y)), Int32(VANI_CUDA_R_32F), Int32(w.outFeatures),
            computeType, Int32(VANI_CUBLAS_GEMM_DEFAULT))
        guard status == 0 else { throw CUDAFailure(description: "cublasGemmEx (\(rows)×\(w.inFeatures)→\(w.outFeatures)): status \(status)") }
        if bias, w.bias != 0 {
            try launch("vani_add_bias_f32", count: rows * w.outFeatures, [.ptr(y), .ptr(w.bias), .i32(rows), .i32(w.outFeatures)])
        }
    }

    /// out (C, columns) = W (C, K) · x (K, columns) (a convolution over channel-major planes,
    /// as LinearWeights.applyChannelMajor without its bias). Column-major: outᵀ = xᵀ · Wᵀ.
    func gemmChannelMajor(_ w: DeviceWeights.Linear, x: CUdeviceptr, columns: Int, into out: CUdeviceptr) throws {
        precondition(!w.isBF16, "the subsampling convolutions stay fp32")
        var alpha: Float = 1, beta: Float = 0
        let f32 = Int32(VANI_CUDA_R_32F)
        let status = backend.cublas.table.pointee.cublasGemmEx(
            lane.handle, Int32(VANI_CUBLAS_OP_N), Int32(VANI_CUBLAS_OP_N),
            Int32(columns), Int32(w.outFeatures), Int32(w.inFeatures), &alpha,
            UnsafeRawPointer(bitPattern: UInt(x)), f32, Int32(columns),
            UnsafeRawPointer(bitPattern: UInt(w.weight)), f32, Int32(w.inFeatures), &beta,
            UnsafeMutableRawPointer(bitPattern: UInt(out)), f32, Int32(columns),
            Int32(VANI_CUBLAS_COMPUTE_32F), Int32(VANI_CUBLAS_GEMM_DEFAULT))
        guard status == 0 else { throw CUDAFailure(description: "cublasGemmEx (channel-major conv): status \(status)") }
    }

    /// Strided-batched fp32 GEMM over the heads, column-major, B never transposed.
    func batched(transA: Bool, m: Int, n: Int, k: Int, a: CUdeviceptr, lda: Int, strideA: Int,
                 b: CUdeviceptr, ldb: Int, strideB: Int, c: CUdeviceptr, ldc: Int, strideC: Int, batch: Int) throws {
        var alpha: Float = 1, beta: Float = 0
        let f32 = Int32(VANI_CUDA_R_32F)
        let compute = backend.mode == .fp32 ? Int32(VANI_CUBLAS_COMPUTE_32F) : computeType
        let status = backend.cublas.table.pointee.cublasGemmStridedBatchedEx(
            lane.handle, Int32(transA ? VANI_CUBLAS_OP_T : VANI_CUBLAS_OP_N), Int32(VANI_CUBLAS_OP_N),
            Int32(m), Int32(n), Int32(k), &alpha,
            UnsafeRawPointer(bitPattern: UInt(a)), f32, Int32(lda), Int64(strideA),
            UnsafeRawPointer(bitPattern: UInt(b)), f32, Int32(ldb), Int64(strideB), &beta,
            UnsafeMutableRawPointer(bitPattern: UInt(c)), f32, Int32(ldc), Int64(strideC),
            Int32(batch), compute, Int32(VANI_CUBLAS_GEMM_DEFAULT))
        guard status == 0 else { throw CUDAFailure(description: "cublasGemmStridedBatchedEx (\(m)×\(n)×\(k)×\(batch)): status \(status)") }
    }
}
