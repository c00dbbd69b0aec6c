// The encoder over a batch of utterances on the CPU (issue 16): the per-frame products — the
// subsampling's output Linear, the feed-forwards, the attention projections (Q, K, V, out and
// the positions'), the conv module's pointwise layers — run once over the frames of all
// utterances, concatenated without padding; attention scores, softmax and context and the
// depthwise convolution run per utterance on its own frames, with the very calls a single run
// makes. Every utterance gets exactly (bit for bit) the encoder output it gets alone:
//
// - a weight product's row depends only on that row of the input as long as the same kernel
//   computes it: Vani's in-place kernel (Sources/CKernels/gemm.c, ≤ 512 rows) is one FMA chain
//   over K per element whatever M, and so are OpenBLAS's sgemm and the bf16/int8 kernels. The
//   rows are therefore cut into runs (`RowRuns`) that each take the kernel a single run would:
//   utterances of 2…512 rows are packed into runs of at most 512 rows, and an utterance of one
//   row (sgemv) or more than 512 rows (OpenBLAS) runs on its own. Where fp32 products go to
//   OpenBLAS for every size (no AVX-512), an utterance whose product is small enough for
//   OpenBLAS's small-matrix kernels (M·N·K ≤ 100³, which sum differently) runs on its own too.
// - row-wise operations (layer norms, bias, bias + SiLU, bias + GLU) compute each row alone;
//   element-wise ones over a whole tensor (residual adds, SiLU, xscaling) are called per
//   utterance, with the counts a single run uses, so vector/scalar splits fall the same way.
//
// Tests/EngineTests/BatchEncoderTests.swift checks the bit-exact equality for batches of 1…8
// utterances of different lengths, in every precision.

import TensorModule

/// Rows of a time-major tensor cut into utterances (`segments`, consecutive) and the runs in which
/// weight products take them (each run: whole utterances, the kernel a single run would take).
public struct RowRuns: Sendable, Equatable {
    /// The rows of each utterance, in order and adjacent.
    public let segments: [Range<Int>]
    /// The runs of rows products take at once, in order, covering every row.
    public let runs: [Range<Int>]
    /// Rows in all.
    public var rows: Int { segments.last?.upperBound ?? 0 }

    /// Runs over utterances of `counts` rows (each ≥ 1), at most `maxRunRows` rows per run of
    /// short utterances (`BLAS.inPlaceWeightsMaxRows`: beyond it products go to another kernel).
    public init(counts: [Int], maxRunRows: Int = BLAS.inPlaceWeightsMaxRows) {
        var segments: [Range<Int>] = []
        var runs: [Range<Int>] = []
        var start = 0
        var open: Range<Int>? = nil
        for count in counts {
            precondition(count >= 1, "an utterance needs at least one row")
            let segment = start..<(start + count)
            segments.append(segment)
            start += count
            if count == 1 || count > maxRunRows {
                // Another kernel than the runs' (sgemv, or OpenBLAS past the limit): on its own.
                if let run = open { runs.append(run); open = nil }
                runs.append(segment)
            } else if let run = open, run.count + count <= maxRunRows {
                open = run.lowerBound..<segment.upperBound
            } else {
                if let run = open { runs.append(run) }
                open = segment
            }
        }
        if let run = open { runs.append(run) }
        self.segments = segments
        self.runs = runs
    }
}

extension LinearWeights {
    /// `apply(_:rows:into:epilogue:accumulate:)` run by run over x [runs.rows, in] → y
    /// [runs.rows, out] (a `.biasGLU` product buffer is [runs.rows, out]): each row gets the
    /// bits it gets when its utterance runs alone.
    public func apply(_ x: UnsafePointer<Float>, runs: RowRuns, into y: UnsafeMutablePointer<Float>,
                      epilogue: Epilogue = .bias, accumulate: Bool = false) {
        let yWidth: Int
        if case .biasGLU = epilogue { yWidth = outFeatures / 2 } else { yWidth = outFeatures }
        func applyRows(_ rows: Range<Int>) {
            let r = rows.lowerBound
            let rowsEpilogue: Epilogue
            if case .biasGLU(let product) = epilogue { rowsEpilogue = .biasGLU(product: product + r * outFeatures) }
            else { rowsEpilogue = epilogue }
            apply(x + r * inFeatures, rows: rows.count, into: y + r * yWidth, epilogue: rowsEpilogue,
                  accumulate: accumulate)
        }
        // fp32 products on OpenBLAS (no AVX-512 here, or turned off on this thread): an
        // utterance whose product alone is small enough for OpenBLAS's small-matrix kernels
        // runs alone, so it takes them as it does alone.
        var onOpenBLAS = false
        if case .fp32 = storage { onOpenBLAS = !BLAS.inPlaceWeightsHere }
        var segment = 0
        for run in runs.runs {
            while runs.segments[segment].upperBound <= run.lowerBound { segment += 1 }
            if onOpenBLAS, run.count > runs.segments[segment].count {
                var inside: [Range<Int>] = []
                var s = segment
                while s < runs.segments.count, runs.segments[s].upperBound <= run.upperBound {
                    inside.append(runs.segments[s]); s += 1
                }
                if inside.contains(where: { $0.count * outFeatures * inFeatures <= BLAS.openBLASSmallMatrixWork }) {
                    inside.forEach(applyRows)
                    continue
                }
            }
            applyRows(run)
        }
    }
}

extension ConformerEncoder {
    /// One utterance of a batch: time-major features [frames, featIn] and the frames that are
    /// audio (the rest `pad_to` padding; nil: all).
    public struct BatchItem {
        /// Features [frames, featIn].
        public let features: UnsafePointer<Float>
        /// Feature frames.
        public let frames: Int
        /// Frames that are audio (nil: all).
        public let validFrames: Int?

        /// Memberwise initialiser.
        public init(features: UnsafePointer<Float>, frames: Int, validFrames: Int? = nil) {
            self.features = features; self.frames = frames; self.validFrames = validFrames
        }
    }

    /// Runs the encoder on a batch of utterances at once (see the file header): each result is
    /// bit for bit `forward(features:frames:validFrames:)` of its item alone, [T'ᵢ, d].
    public func forward(batch items: [BatchItem]) -> [Tensor] {
        if items.isEmpty { return [] }
        if items.count == 1 {
            return [forward(features: items[0].features, frames: items[0].frames, validFrames: items[0].validFrames)]
        }
        for item in items { precondition(item.frames >= 1, "the encoder needs at least one feature frame") }
        let d = config.dModel
        let plan = BatchPlan(encoder: self, items: items)
        let arena = ScratchArena(capacity: plan.capacity)
        defer { withExtendedLifetime(arena) {} }   // the workspace's pointers live in it
        let w = BatchWorkspace(plan: plan, arena: arena)

        // Subsampling: convolutions per utterance into one flat matrix, its Linear over all rows.
        for (i, item) in items.enumerated() {
            let rows = plan.padded.segments[i]
            let t = subsampleConvolutions(item.features, plan: plan.itemPlans[i], w: w.single,
                                          into: w.flat + rows.lowerBound * plan.flatWidth)
            precondition(t == rows.count, "subsampling gave \(t) frames, planned \(rows.count)")
        }
        weights.preEncode.out.apply(w.flat, runs: plan.padded, into: w.subsampled)   // (ΣT'ᵢ padded, d)
        // The valid frames of each utterance, adjacent; xscaling and positions per utterance.
        let frames = plan.frames
        for i in items.indices {
            let x = w.x + frames.segments[i].lowerBound * d
            let t = frames.segments[i].count
            x.update(from: w.subsampled + plan.padded.segments[i].lowerBound * d, count: t * d)
            if config.xscaling { scale(x, by: Float(d).squareRoot(), count: t * d) }
            positionalEmbedding(frames: t, into: w.positions + plan.positions.segments[i].lowerBound * d)
        }
        for layer in weights.layers { forwardLayer(layer, plan: plan, w: w) }
        return frames.segments.map { rows in
            let output = Tensor(zeros: [rows.count, d])
            output.pointer.update(from: w.x + rows.lowerBound * d, count: rows.count * d)
            return output
        }
    }

    // MARK: - Plan and workspace

    /// The shapes of one batched pass: each utterance's single plan (for its subsampling), and
    /// the rows of the padded subsampling output, the valid frames and the positional tables.
    struct BatchPlan {
        let itemPlans: [Plan]
        /// The largest utterance's plan: sizes the per-utterance buffers.
        let largest: Plan
        let padded: RowRuns
        let frames: RowRuns
        let positions: RowRuns
        let flatWidth: Int
        let dModel: Int
        let ffDim: Int
        private(set) var capacity = 0

        init(encoder: ConformerEncoder, items: [BatchItem]) {
            let plans = items.map { Plan(config: encoder.config, weights: encoder.weights, frames: $0.frames) }
            itemPlans = plans
            largest = plans.max { $0.encodedFrames < $1.encodedFrames }!
            padded = RowRuns(counts: plans.map(\.encodedFrames))
            let valid = zip(items, plans).map { item, plan in
                min(encoder.outputLength(item.validFrames ?? item.frames), plan.encodedFrames)
            }
            frames = RowRuns(counts: valid)
            positions = RowRuns(counts: valid.map { 2 * $0 - 1 })
            flatWidth = encoder.config.subsamplingChannels * encoder.weights.preEncode.outBins
            dModel = encoder.config.dModel
            ffDim = encoder.config.ffDim
            let plan = self
            capacity = ScratchArena.capacity { _ = BatchWorkspace(plan: plan, arena: $0) }
        }
    }

    /// Every buffer of one batched pass, carved from the arena once: the largest utterance's
    /// single workspace (subsampling planes, attention score buffers) and the batch-wide rows.
    struct BatchWorkspace {
        let single: Workspace
        let flat, subsampled, x, positions: UnsafeMutablePointer<Float>
        let normed, q, k, v, qv, ctx, glu, dw, hidden, pointwise: UnsafeMutablePointer<Float>

        init(plan: BatchPlan, arena: ScratchArena) {
            single = Workspace(plan: plan.largest, arena: arena)
            let n = plan.frames.rows
            let dm = plan.dModel
            flat = arena.allocate(plan.padded.rows * plan.flatWidth)
            subsampled = arena.allocate(plan.padded.rows * dm)
            x = arena.allocate(n * dm)
            positions = arena.allocate(plan.positions.rows * dm)
            normed = arena.allocate(n * dm); q = arena.allocate(n * dm); k = arena.allocate(n * dm)
            v = arena.allocate(n * dm); qv = arena.allocate(n * dm); ctx = arena.allocate(n * dm)
            glu = arena.allocate(n * dm); dw = arena.allocate(n * dm)
            hidden = arena.allocate(n * plan.ffDim)
            // (ΣT, 2d): the GLU's product; also the projected positions (Σ(2T − 1), d) fit in it.
            pointwise = arena.allocate(n * 2 * dm)
        }
    }

    // MARK: - Conformer layer over the batch

    private func forwardLayer(_ l: ConformerLayerWeights, plan: BatchPlan, w: BatchWorkspace) {
        let d = config.dModel
        let eps = config.layerNormEps
        let rows = plan.frames
        let n = rows.rows
        // 1. x += ½ · FF1(LN(x))
        feedForward(l.normFeedForward1, l.feedForward1, plan: plan, w: w)
        // 2. x += MHSA(LN(x))
        layerNorm(w.x, rows: n, cols: d, gamma: l.normSelfAtt.gamma.pointer, beta: l.normSelfAtt.beta.pointer,
                  eps: eps, into: w.normed)
        let a = l.selfAttn
        a.linearQ.apply(w.normed, runs: rows, into: w.q)
        a.linearK.apply(w.normed, runs: rows, into: w.k)
        a.linearV.apply(w.normed, runs: rows, into: w.v)
        w.qv.update(from: w.q, count: n * d)
        addBias(rows: n, cols: d, bias: a.posBiasV.pointer, into: w.qv)
        addBias(rows: n, cols: d, bias: a.posBiasU.pointer, into: w.q)
        let projected = w.pointwise
        a.linearPos.apply(w.positions, runs: plan.positions, into: projected)     // (Σ(2T − 1), d)
        let s = w.single.layer
        for (segment, pos) in zip(rows.segments, plan.positions.segments) {
            let o = segment.lowerBound * d
            attendHeads(q: w.q + o, qv: w.qv + o, k: w.k + o, v: w.v + o, projected: projected + pos.lowerBound * d,
                        frames: segment.count, scores: s.scores, bd: s.bd, into: w.ctx + o)
        }
        a.linearOut.apply(w.ctx, runs: rows, into: w.x, accumulate: true)
        // 3. x += Conv(LN(x))
        layerNorm(w.x, rows: n, cols: d, gamma: l.normConv.gamma.pointer, beta: l.normConv.beta.pointer,
                  eps: eps, into: w.normed)
        l.conv.pointwiseConv1.apply(w.normed, runs: rows, into: w.glu, epilogue: .biasGLU(product: w.pointwise))
        for segment in rows.segments {
            let o = segment.lowerBound * d
            depthwiseConv1d(w.glu + o, frames: segment.count, channels: d, weight: l.conv.depthwiseKernelMajor.pointer,
                            kernel: config.convKernel, bias: l.conv.depthwiseBias.pointer,
                            padding: (config.convKernel - 1) / 2, into: w.dw + o)
            silu(w.dw + o, count: segment.count * d)
        }
        l.conv.pointwiseConv2.apply(w.dw, runs: rows, into: w.x, accumulate: true)
        // 4. x += ½ · FF2(LN(x))
        feedForward(l.normFeedForward2, l.feedForward2, plan: plan, w: w)
        // 5. x = LN_out(x)
        layerNorm(w.x, rows: n, cols: d, gamma: l.normOut.gamma.pointer, beta: l.normOut.beta.pointer,
                  eps: eps, into: w.x)
    }

    private func feedForward(_ norm: NormWeights, _ ff: FeedForwardWeights, plan: BatchPlan, w: BatchWorkspace) {
        let d = config.dModel
        let rows = plan.frames
        layerNorm(w.x, rows: rows.rows, cols: d, gamma: norm.gamma.pointer, beta: norm.beta.pointer,
                  eps: config.layerNormEps, into: w.normed)
        ff.linear1.apply(w.normed, runs: rows, into: w.hidden, epilogue: .biasSiLU)
        ff.linear2.apply(w.hidden, runs: rows, into: w.q)
        for segment in rows.segments {
            addScaled(w.q + segment.lowerBound * d, alpha: 0.5, into: w.x + segment.lowerBound * d,
                      count: segment.count * d)
        }
    }
}
