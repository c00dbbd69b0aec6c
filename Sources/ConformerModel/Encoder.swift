// The Conformer encoder (NeMo ConformerEncoder, docs/MODEL.md §4): convolutional subsampling,
// xscaling, relative positional encoding, and the stack of macaron Conformer layers.
//
// Activations are time-major [T, d]. One utterance is processed at a time: a padded batch in
// NeMo masks padded keys and zeroes padded frames before the depthwise conv, which is exactly
// what processing each utterance at its own length computes, so a batch equals its singles.

import Foundation
import TensorModule

/// The encoder: features [T, featIn] → encoded frames [T', d].
public final class ConformerEncoder: Sendable {
    /// The configuration this part was built from.
    public let config: EncoderConfig
    /// The weights, one struct per block.
    public let weights: EncoderWeights

    /// Memberwise initialiser.
    public init(config: EncoderConfig, weights: EncoderWeights) {
        self.config = config
        self.weights = weights
    }

    /// Encoder frames for `frames` feature frames: L ← floor((L − 1)/2) + 1 per stride-2 stage.
    public func outputLength(_ frames: Int) -> Int {
        var t = frames
        for _ in weights.preEncode.stages { t = convOutputSize(t, kernel: 3, stride: 2, padding: 1) }
        return t
    }

    /// Where a forward pass can report intermediate tensors (for stage-by-stage tests).
    public typealias StageObserver = (_ name: String, _ values: UnsafePointer<Float>, _ shape: [Int]) -> Void

    /// Wall-clock time per part of a forward pass (`vani bench --stages`): each `lap` charges the
    /// time since the previous one to a part. One per call, never shared between threads.
    public final class StageClock {
        /// Nanoseconds per part, accumulated over every call that used this clock.
        public private(set) var nanoseconds: [String: UInt64] = [:]
        private var last = DispatchTime.now().uptimeNanoseconds

        /// A clock starting now.
        public init() {}

        /// Restarts the lap without charging anyone (before a forward pass).
        public func start() { last = DispatchTime.now().uptimeNanoseconds }

        /// Charges the time since the previous lap to `part`.
        public func lap(_ part: String) {
            let now = DispatchTime.now().uptimeNanoseconds
            nanoseconds[part, default: 0] += now - last
            last = now
        }
    }

    /// Runs the encoder on one utterance of time-major features [frames, featIn].
    /// - Parameter validFrames: feature frames that are audio (the rest is `pad_to` padding):
    ///   all frames go through the subsampling, and only the encoder frames of the valid part
    ///   go through the layers, which is what the reference's length masks compute.
    /// - Returns: the encoded frames, [T', d] with T' = outputLength(validFrames).
    /// - Parameter clock: when given, the time of each part (subsampling, norms, weight products,
    ///   attention scores, depthwise conv, element-wise) is added to it.
    public func forward(features: UnsafePointer<Float>, frames: Int, validFrames: Int? = nil,
                        observe: StageObserver? = nil, clock: StageClock? = nil) -> Tensor {
        precondition(frames >= 1, "the encoder needs at least one feature frame")
        let plan = Plan(config: config, weights: weights, frames: frames)
        let arena = ScratchArena(capacity: plan.capacity)
        defer { withExtendedLifetime(arena) {} }   // the workspace's pointers live in it
        let w = Workspace(plan: plan, arena: arena)
        let d = config.dModel
        clock?.start()
        subsample(features, plan: plan, w: w, clock: clock)                          // (T'_padded, d)
        let t = min(outputLength(validFrames ?? frames), plan.encodedFrames)
        let output = Tensor(zeros: [t, d])                                           // (T', d)
        let x = output.pointer
        x.update(from: w.subsampled, count: t * d)
        observe?("pre_encode", x, [t, d])
        if config.xscaling { scale(x, by: Float(d).squareRoot(), count: output.count) }
        positionalEmbedding(frames: t, into: w.positions)                            // (2T' − 1, d)
        observe?("pos_emb", w.positions, [2 * t - 1, d])
        clock?.lap("element-wise")
        for (i, layer) in weights.layers.enumerated() {
            forwardLayer(layer, x: x, pos: w.positions, frames: t, s: w.layer, clock: clock)
            observe?("layer_\(i)", x, [t, d])
        }
        return output
    }

    /// Runs Conformer layer `index` in place on x [frames, d] (after subsampling and xscaling),
    /// for micro-benchmarks and tests of one block.
    public func forwardLayer(_ index: Int, x: UnsafeMutablePointer<Float>, frames t: Int) {
        precondition(weights.layers.indices.contains(index), "no layer \(index)")
        // A plan for an input that subsamples to at least t frames sizes the layer scratch.
        let plan = Plan(config: config, weights: weights, frames: t * config.subsamplingFactor)
        // The arena must outlive the workspace's pointers (a temporary may be freed at once).
        let arena = ScratchArena(capacity: plan.capacity)
        defer { withExtendedLifetime(arena) {} }
        let w = Workspace(plan: plan, arena: arena)
        positionalEmbedding(frames: t, into: w.positions)
        forwardLayer(weights.layers[index], x: x, pos: w.positions, frames: t, s: w.layer)
    }

    // MARK: - Workspace plan

    /// The shapes of one forward pass, computed once before the layer loop; `capacity` is
    /// measured by carving a `Workspace` on a counting arena, so it cannot drift from the code
    /// that carves the real one.
    struct Plan {
        let frames: Int
        let dModel: Int
        let ffDim: Int
        let encodedFrames: Int
        let positions: Int
        /// Attention runs its heads in this many parallel groups, each with its own score buffers.
        let headGroups: Int
        let stageShapes: [Conv2dShape]
        /// Floats of the flattened subsampling output (T', C·F').
        let flatCount: Int
        private(set) var capacity = 0

        init(config c: EncoderConfig, weights w: EncoderWeights, frames: Int) {
            self.frames = frames
            dModel = c.dModel
            ffDim = c.ffDim
            var shapes: [Conv2dShape] = []
            var t = frames
            for stage in w.preEncode.stages {
                var s = stage.shapeTemplate
                s.height = t
                shapes.append(s)
                t = s.outHeight
            }
            stageShapes = shapes
            encodedFrames = t
            positions = 2 * t - 1
            headGroups = max(1, min(c.heads, Parallel.threads))
            flatCount = t * c.subsamplingChannels * w.preEncode.outBins
            let plan = self
            capacity = ScratchArena.capacity { _ = Workspace(plan: plan, arena: $0) }
        }
    }

    /// Every scratch buffer of one forward pass, carved from the arena once.
    struct Workspace {
        /// Two ping-pong planes (C, T_i, F_i) for the subsampling stages.
        let planes: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>)
        /// The im2col matrix of the dense subsampling convolutions.
        let im2col: UnsafeMutablePointer<Float>
        /// (T', C·F'): the last stage flattened per frame.
        let flat: UnsafeMutablePointer<Float>
        /// (T'_padded, d): the subsampling's output Linear.
        let subsampled: UnsafeMutablePointer<Float>
        /// (2T' − 1, d): the relative positional table.
        let positions: UnsafeMutablePointer<Float>
        /// Per-layer buffers, reused by every layer.
        let layer: LayerScratch

        init(plan: Plan, arena: ScratchArena) {
            let maxPlane = plan.stageShapes.map { $0.channelsOut * $0.outHeight * $0.outWidth }.max() ?? 0
            planes = (arena.allocate(maxPlane), arena.allocate(maxPlane))
            im2col = arena.allocate(plan.stageShapes.map(\.scratchCount).max() ?? 0)
            flat = arena.allocate(plan.flatCount)
            subsampled = arena.allocate(plan.encodedFrames * plan.dModel)
            positions = arena.allocate(plan.positions * plan.dModel)
            layer = LayerScratch(plan: plan, arena: arena)
        }
    }

    /// Per-layer buffers, carved from the arena once and reused by every layer.
    struct LayerScratch {
        let normed, q, k, v, qv, ctx, glu, dw: UnsafeMutablePointer<Float>   // (T, d) each
        let hidden: UnsafeMutablePointer<Float>    // (T, ff)
        let pointwise: UnsafeMutablePointer<Float> // (T, 2d)
        let scores: [UnsafeMutablePointer<Float>]  // (T, T), one per head group
        let bd: [UnsafeMutablePointer<Float>]      // (T, 2T − 1), one per head group

        init(plan: Plan, arena: ScratchArena) {
            let t = plan.encodedFrames
            func rows(_ width: Int) -> UnsafeMutablePointer<Float> { arena.allocate(t * width) }
            let dm = plan.dModel
            normed = rows(dm); q = rows(dm); k = rows(dm); v = rows(dm); qv = rows(dm)
            ctx = rows(dm); glu = rows(dm); dw = rows(dm)
            hidden = rows(plan.ffDim)
            pointwise = rows(2 * dm)
            scores = (0..<plan.headGroups).map { _ in rows(t) }
            bd = (0..<plan.headGroups).map { _ in rows(2 * t - 1) }
        }
    }

    // MARK: - Subsampling

    /// Features [frames, featIn] (read as one channel of [frames, featIn]) → `w.subsampled`
    /// [T'_padded, d].
    private func subsample(_ features: UnsafePointer<Float>, plan: Plan, w: Workspace, clock: StageClock? = nil) {
        let t = subsampleConvolutions(features, plan: plan, w: w, into: w.flat)
        clock?.lap("subsampling convolutions")
        weights.preEncode.out.apply(w.flat, rows: t, into: w.subsampled)             // (T', d)
        clock?.lap("weight products")
    }

    /// The subsampling's convolutions: features [frames, featIn] → `flat` (T'_padded, C·F'), the
    /// input of its output Linear; returns T'_padded.
    func subsampleConvolutions(_ features: UnsafePointer<Float>, plan: Plan, w: Workspace,
                               into flat: UnsafeMutablePointer<Float>) -> Int {
        let pre = weights.preEncode
        var (current, other) = w.planes
        var input = features
        for (stage, shape) in zip(pre.stages, plan.stageShapes) {
            let plane = shape.outHeight * shape.outWidth
            switch stage.convolution {
            case .dense(let conv):
                im2col(input, shape: shape, into: w.im2col)                         // (Cin·9, T_i·F_i)
                conv.applyChannelMajor(w.im2col, columns: plane, into: current)     // (C, T_i, F_i)
            case .depthwise(let kernel, let bias, let pointwise):
                conv2d(input, shape: shape, weight: kernel.pointer, bias: bias.pointer,
                       into: current, scratch: nil)                                 // (C, T_i, F_i)
                pointwise.applyChannelMajor(current, columns: plane, into: other)   // (C, T_i, F_i)
                swap(&current, &other)
            }
            relu(current, count: shape.channelsOut * plane)
            input = UnsafePointer(current)
            swap(&current, &other)
        }
        // (C, T', F') → (T', C·F') with index c·F' + f, then the output Linear.
        let last = plan.stageShapes[plan.stageShapes.count - 1]
        let (ch, t, bins) = (last.channelsOut, last.outHeight, last.outWidth)
        for c in 0..<ch {
            for ti in 0..<t {
                (flat + ti * ch * bins + c * bins).update(from: input + (c * t + ti) * bins, count: bins)
            }
        }
        return t
    }

    // MARK: - Positional encoding

    /// Rows of the sinusoidal table for relative positions T'−1 … −(T'−1): from the stored
    /// table when it is long enough, else computed the way NeMo builds it (float32 steps).
    public func positionalEmbedding(frames t: Int, into out: UnsafeMutablePointer<Float>) {
        let d = config.dModel
        let rows = 2 * t - 1
        if let table = weights.positionalTable, (config.posEmbRows + 1) / 2 >= t {
            let center = (config.posEmbRows + 1) / 2          // row of position 0 is center − 1
            out.update(from: table.pointer + (center - t) * d, count: rows * d)
            return
        }
        let factor = Float(-(log(10000.0) / Double(d)))
        for r in 0..<rows {
            let position = Float(t - 1 - r)
            let row = out + r * d
            for i in stride(from: 0, to: d, by: 2) {
                let divTerm = expf(Float(i) * factor)
                let angle = position * divTerm
                row[i] = sinf(angle)
                if i + 1 < d { row[i + 1] = cosf(angle) }
            }
        }
    }

    // MARK: - Conformer layer

    private func forwardLayer(_ w: ConformerLayerWeights, x: UnsafeMutablePointer<Float>,
                              pos: UnsafePointer<Float>, frames t: Int, s: LayerScratch, clock: StageClock? = nil) {
        let d = config.dModel
        let eps = config.layerNormEps
        let n = t * d
        // 1. x += ½ · FF1(LN(x))
        feedForward(w.normFeedForward1, w.feedForward1, x: x, frames: t, s: s, clock: clock)
        // 2. x += MHSA(LN(x))
        layerNorm(x, rows: t, cols: d, gamma: w.normSelfAtt.gamma.pointer, beta: w.normSelfAtt.beta.pointer,
                  eps: eps, into: s.normed)                                          // (T, d)
        clock?.lap("layer norms")
        attention(w.selfAttn, input: s.normed, pos: pos, frames: t, s: s, clock: clock)   // ctx (T, d)
        w.selfAttn.linearOut.apply(s.ctx, rows: t, into: x, accumulate: true)
        clock?.lap("weight products")
        // 3. x += Conv(LN(x))
        layerNorm(x, rows: t, cols: d, gamma: w.normConv.gamma.pointer, beta: w.normConv.beta.pointer,
                  eps: eps, into: s.normed)
        clock?.lap("layer norms")
        w.conv.pointwiseConv1.apply(s.normed, rows: t, into: s.glu,
                                    epilogue: .biasGLU(product: s.pointwise))        // (T, 2d) → (T, d)
        clock?.lap("weight products")
        depthwiseConv1d(s.glu, frames: t, channels: d, weight: w.conv.depthwiseKernelMajor.pointer,
                        kernel: config.convKernel, bias: w.conv.depthwiseBias.pointer,
                        padding: (config.convKernel - 1) / 2, into: s.dw)            // (T, d)
        silu(s.dw, count: n)
        clock?.lap("depthwise conv + SiLU")
        w.conv.pointwiseConv2.apply(s.dw, rows: t, into: x, accumulate: true)
        clock?.lap("weight products")
        // 4. x += ½ · FF2(LN(x))
        feedForward(w.normFeedForward2, w.feedForward2, x: x, frames: t, s: s, clock: clock)
        // 5. x = LN_out(x)
        layerNorm(x, rows: t, cols: d, gamma: w.normOut.gamma.pointer, beta: w.normOut.beta.pointer,
                  eps: eps, into: x)
        clock?.lap("layer norms")
    }

    private func feedForward(_ norm: NormWeights, _ ff: FeedForwardWeights, x: UnsafeMutablePointer<Float>,
                             frames t: Int, s: LayerScratch, clock: StageClock? = nil) {
        let d = config.dModel
        layerNorm(x, rows: t, cols: d, gamma: norm.gamma.pointer, beta: norm.beta.pointer,
                  eps: config.layerNormEps, into: s.normed)                         // (T, d)
        clock?.lap("layer norms")
        ff.linear1.apply(s.normed, rows: t, into: s.hidden, epilogue: .biasSiLU)    // (T, ff)
        ff.linear2.apply(s.hidden, rows: t, into: s.q)                               // (T, d)
        clock?.lap("weight products")
        addScaled(s.q, alpha: 0.5, into: x, count: t * d)
        clock?.lap("element-wise")
    }

    /// Transformer-XL relative-position attention; writes the concatenated heads to `s.ctx`.
    private func attention(_ w: AttentionWeights, input: UnsafePointer<Float>, pos: UnsafePointer<Float>,
                           frames t: Int, s: LayerScratch, clock: StageClock? = nil) {
        let d = config.dModel
        let p = 2 * t - 1
        w.linearQ.apply(input, rows: t, into: s.q)                                   // (T, d)
        w.linearK.apply(input, rows: t, into: s.k)                                   // (T, d)
        w.linearV.apply(input, rows: t, into: s.v)                                   // (T, d)
        clock?.lap("weight products")
        // q + pos_bias_v into qv, q + pos_bias_u in place (the biases are [heads, dK] = [d]).
        s.qv.update(from: s.q, count: t * d)
        addBias(rows: t, cols: d, bias: w.posBiasV.pointer, into: s.qv)
        addBias(rows: t, cols: d, bias: w.posBiasU.pointer, into: s.q)
        // The projected positions reuse the pointwise buffer: (2T − 1, d) fits in (T, 2d).
        let projected = s.pointwise
        clock?.lap("element-wise")
        w.linearPos.apply(pos, rows: p, into: projected)                             // (2T − 1, d)
        clock?.lap("weight products")
        attendHeads(q: s.q, qv: s.qv, k: s.k, v: s.v, projected: projected, frames: t, scores: s.scores, bd: s.bd,
                    into: s.ctx)
        clock?.lap("attention scores, softmax, context")
    }

    /// The scores, softmax and context of every head of one utterance of `t` frames: q (with
    /// pos_bias_u), qv (with pos_bias_v), k, v [T, d], projected positions [2T − 1, d] → ctx
    /// [T, d]; one pair of score buffers per head group.
    func attendHeads(q: UnsafePointer<Float>, qv: UnsafePointer<Float>, k: UnsafePointer<Float>,
                     v: UnsafePointer<Float>, projected: UnsafePointer<Float>, frames t: Int,
                     scores scoreBuffers: [UnsafeMutablePointer<Float>], bd bdBuffers: [UnsafeMutablePointer<Float>],
                     into ctx: UnsafeMutablePointer<Float>) {
        let d = config.dModel
        let heads = config.heads
        let dk = d / heads
        let scaleFactor = 1 / Float(dk).squareRoot()
        // Heads in parallel groups (one thread each, own score buffers); the products inside a
        // group run single-threaded.
        let groups = scoreBuffers.count
        Parallel.forEach(groups) { g in
            let scores = scoreBuffers[g], bd = bdBuffers[g]
            for h in (heads * g / groups)..<(heads * (g + 1) / groups) {
                let off = h * dk
                // ac[i, j] = (q_i + u) · k_j
                sgemm(transB: true, m: t, n: t, k: dk, a: q + off, lda: d, b: k + off, ldb: d,
                      c: scores, ldc: t)                                             // (T, T)
                // bd[i, r] = (q_i + v) · p_r; rel_shift picks r = T − 1 − i + j for key j, so rows
                // i0..<i1 need only r in [T − i1, 2T − 1 − i0): T + (i1 − i0) − 1 of the 2T − 1
                // columns. Blocks of 32 rows (never a block of one row, which would take sgemv)
                // nearly halve this product; each element is the same dot product as before.
                var i0 = 0
                while i0 < t {
                    var i1 = min(t, i0 + 32)
                    if t - i1 == 1 { i1 = t }
                    let width = t + (i1 - i0) - 1
                    sgemm(transB: true, m: i1 - i0, n: width, k: dk, a: qv + i0 * d + off, lda: d,
                          b: projected + (t - i1) * d + off, ldb: d, c: bd, ldc: width)   // (i1 − i0, width)
                    for i in i0..<i1 {
                        let row = scores + i * t
                        let shifted = bd + (i - i0) * width + (i1 - 1 - i)
                        for j in 0..<t { row[j] = (row[j] + shifted[j]) * scaleFactor }
                    }
                    i0 = i1
                }
                softmaxRows(scores, rows: t, cols: t)
                sgemm(m: t, n: dk, k: t, a: scores, lda: t, b: v + off, ldb: d,
                      c: ctx + off, ldc: d)                                          // (T, dK) of (T, d)
            }
        }
    }
}

