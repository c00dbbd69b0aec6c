// The encoder graph → engine tensor names and `EncoderConfig`, by graph structure:
// each weight is named after the module scope of the node that consumes it (tied and
// deduplicated tensors therefore land in every layer that uses them), anonymous MatMul weights
// are transposed, an explicit BatchNormalization is folded into the conv before it, and every
// hyper-parameter is read from shapes, attributes and constants.

import ConformerModel
import Foundation

struct EncoderImport {
    var config: EncoderConfig
    var tensors: [PlannedTensor]
    var warnings: [String]
}

extension EncoderImport {
    // swiftlint:disable:next function_body_length cyclomatic_complexity
    static func read(_ model: ONNXModel) throws(ONNXImportError) -> EncoderImport {
        let g = GraphIndex(model)
        let path = g.path
        var warnings: [String] = []
        func fail(_ node: String, _ reason: String) -> ONNXImportError {
            .unknownPattern(path: path, node: node, reason: reason)
        }

        // A quick identity check before anything else: a Conformer export has per-layer
        // module scopes and a pre_encode block.
        guard g.nodes.contains(where: { $0.name.hasPrefix("/layers.0/") }),
              g.nodes.contains(where: { $0.name.hasPrefix("/pre_encode/") }) else {
            throw .unexpectedGraph(path: path, reason: "no nodes under /pre_encode/ and /layers.0/ (not a NeMo Conformer encoder export)")
        }

        // MARK: Explicit BatchNormalization (folded into the conv producing its input)
        var foldInto: [String: BatchNormSources] = [:]   // conv node name → BN
        var bnInputs = Set<String>()
        for n in g.nodes where n.opType == "BatchNormalization" {
            guard n.inputs.count >= 5, let conv = g.producerNode(n.inputs[0]), conv.opType == "Conv" else {
                throw fail(n.name, "BatchNormalization whose input is not produced by a Conv")
            }
            guard g.consumers[n.inputs[0]]?.count == 1 else {
                throw fail(n.name, "the Conv output feeding BatchNormalization is also used elsewhere; cannot fold")
            }
            var parts: [SourceTensor] = []
            for k in 1...4 {
                guard let c = g.constants[n.inputs[k]] else { throw fail(n.name, "BatchNormalization input \(k) is not a constant") }
                parts.append(c)
                bnInputs.insert(n.inputs[k])
            }
            let eps = n.attribute("epsilon")?.f ?? 1e-5
            foldInto[conv.name] = BatchNormSources(scale: parts[0], bias: parts[1], mean: parts[2], variance: parts[3],
                                                   epsilon: eps, node: n.name)
        }

        // MARK: Name every weight after its consumer
        var planned: [String: PlannedTensor] = [:]
        var sourceOf: [String: String] = [:]               // engine name → source label
        var posTable: SourceTensor?
        func add(_ name: String, _ shape: [Int], _ recipe: Recipe, node: String) throws(ONNXImportError) {
            if let prev = planned[name] {
                // The same tensor reached through two consumers is fine; two tensors for one name is not.
                guard prev.recipe.sourceLabel == recipe.sourceLabel else {
                    throw fail(node, "two different tensors map to '\(name)' (\(prev.recipe.sourceLabel) and \(recipe.sourceLabel))")
                }
                return
            }
            planned[name] = PlannedTensor(name: name, shape: shape, recipe: recipe)
            sourceOf[name] = recipe.sourceLabel
        }

        for (value, src) in g.floatConstants(minCount: 2) where !bnInputs.contains(value) {
            let uses = g.consumers[value] ?? []
            if uses.isEmpty {
                warnings.append("\(path): unused constant \(src.label) \(src.dims) ignored")
                continue
            }
            for (ni, k) in uses {
                let node = g.nodes[ni]
                // The positional table: a [1, R, d] or [R, d] constant sliced under /pos_enc/.
                if node.name.hasPrefix("/pos_enc/") {
                    guard node.opType == "Slice" || node.opType == "Gather", k == 0,
                          src.dims.count == 3 && src.dims[0] == 1 || src.dims.count == 2 else {
                        throw fail(node.name, "unexpected constant \(src.label) \(src.dims) in the positional encoding")
                    }
                    posTable = src
                    continue
                }
                guard let scope = modulePath(ofNode: node.name), !scope.isEmpty else {
                    throw fail(node.name, "weight \(src.label) is used by a node without a module scope")
                }
                let named = !src.tensor.name.isEmpty && !src.tensor.name.hasPrefix("onnx::") && src.constantNode == nil
                let leaf = named ? String(src.tensor.name.split(separator: ".").last ?? "") : ""
                let base = "encoder." + scope
                switch (node.opType, k) {
                case ("MatMul", 1):
                    guard src.dims.count == 2 else { throw fail(node.name, "MatMul weight \(src.label) has shape \(src.dims)") }
                    try add(base + ".weight", [src.dims[1], src.dims[0]],
                            .transpose(src, rows: src.dims[0], cols: src.dims[1]), node: node.name)
                case ("Gemm", 1):
                    guard src.dims.count == 2 else { throw fail(node.name, "Gemm weight \(src.label) has shape \(src.dims)") }
                    if node.attribute("transB")?.i == 1 {
                        try add(base + ".weight", src.dims, .copy(src), node: node.name)
                    } else {
                        try add(base + ".weight", [src.dims[1], src.dims[0]],
                                .transpose(src, rows: src.dims[0], cols: src.dims[1]), node: node.name)
                    }
                case ("Gemm", 2):
                    try add(base + ".bias", src.dims, .copy(src), node: node.name)
                case ("Conv", 1), ("Conv", 2):
                    if let bn = foldInto[node.name] {
                        if k == 1 {
                            try add(base + ".weight", src.dims, .foldedWeight(src, bn), node: node.name)
                        } else {
                            try add(base + ".bias", src.dims, .foldedBias(src, bn, channels: src.dims[0]), node: node.name)
                        }
                    } else {
                        try add(base + (k == 1 ? ".weight" : ".bias"), src.dims, .copy(src), node: node.name)
                    }
                case ("LayerNormalization", 1), ("LayerNormalization", 2):
                    try add(base + (k == 1 ? ".weight" : ".bias"), src.dims, .copy(src), node: node.name)
                case ("Add", _), ("Mul", _):
                    // Linear biases, decomposed-LayerNorm scale/shift, pos_bias_u/v.
                    let suffix = named ? leaf : (node.opType == "Add" ? "bias" : "weight")
                    let shape = suffix == "bias" || suffix == "weight" ? [src.tensor.count] : src.dims
                    try add(base + "." + suffix, shape, .copy(src), node: node.name)
                default:
                    throw fail(node.name, "weight \(src.label) \(src.dims) is used by a \(node.opType) node (input \(k)), which vani-convert does not map")
                }
            }
        }
        // Convs followed by BatchNormalization but without a bias of their own.
        for n in g.nodes where n.opType == "Conv" {
            guard let bn = foldInto[n.name], n.inputs.count < 3 || n.inputs[2].isEmpty,
                  let scope = modulePath(ofNode: n.name), let w = g.constants[n.inputs[1]] else { continue }
            try add("encoder." + scope + ".bias", [w.dims[0]], .foldedBias(nil, bn, channels: w.dims[0]), node: n.name)
        }

        // MARK: Hyper-parameters
        func tensor(_ name: String) throws(ONNXImportError) -> PlannedTensor {
            guard let t = planned[name] else {
                throw .unexpectedGraph(path: path, reason: "no weight for '\(name)' was found")
            }
            return t
        }
        let outW = try tensor("encoder.pre_encode.out.weight")        // [d, C·F']
        let dModel = outW.shape[0]
        var layers = 0
        while planned["encoder.layers.\(layers).norm_out.weight"] != nil { layers += 1 }
        guard layers > 0 else { throw .unexpectedGraph(path: path, reason: "no layers.N.norm_out weight") }
        let posU = try tensor("encoder.layers.0.self_attn.pos_bias_u")
        guard posU.shape.count == 2, posU.shape[0] * posU.shape[1] == dModel else {
            throw fail("layers.0.self_attn.pos_bias_u", "shape \(posU.shape) is not [heads, d_model/heads] for d_model \(dModel)")
        }
        let heads = posU.shape[0]
        let ffDim = try tensor("encoder.layers.0.feed_forward1.linear1.weight").shape[0]
        let dw = try tensor("encoder.layers.0.conv.depthwise_conv.weight")
        guard dw.shape.count == 3, dw.shape[0] == dModel, dw.shape[1] == 1 else {
            throw fail("/layers.0/conv/depthwise_conv/Conv", "depthwise weight shape \(dw.shape) is not [\(dModel), 1, k]")
        }
        let convKernel = dw.shape[2]

        // Subsampling: the Convs under /pre_encode/, in graph order.
        let subConvs = g.nodes.filter { $0.opType == "Conv" && $0.name.hasPrefix("/pre_encode/") }
        guard let first = subConvs.first, let firstScope = modulePath(ofNode: first.name),
              firstScope == "pre_encode.conv.0" else {
            throw .unexpectedGraph(path: path, reason: "the subsampling does not start with pre_encode.conv.0")
        }
        let depthwise = subConvs.contains { ($0.attribute("group")?.i ?? 1) > 1 }
        var stride2 = 0
        var expectedIndex = 0
        for (i, c) in subConvs.enumerated() {
            let scope = modulePath(ofNode: c.name) ?? ""
            let strides = c.attribute("strides")?.ints ?? [1, 1]
            let kernel = c.attribute("kernel_shape")?.ints ?? []
            let group = c.attribute("group")?.i ?? 1
            let strided = strides.first == 2
            if strided { stride2 += 1 }
            // Layouts the engine implements (FORMAT.md): dw_striding 0, (2,3), (5,6), …; striding 0, 2, 4, …
            let pointwise = depthwise && i > 0 && i % 2 == 0
            if i > 0 { expectedIndex += depthwise ? (pointwise ? 1 : 2) : 2 }
            guard scope == "pre_encode.conv.\(expectedIndex)" else {
                throw fail(c.name, "subsampling conv #\(i) is \(scope), expected pre_encode.conv.\(expectedIndex) for \(depthwise ? "dw_striding" : "striding")")
            }
            let ok = pointwise ? (kernel == [1, 1] && strides == [1, 1] && group == 1)
                : (kernel == [3, 3] && strides == [2, 2] && (c.attribute("pads")?.ints ?? []) == [1, 1, 1, 1]
                   && (depthwise && i > 0 ? group > 1 : group == 1))
            guard ok else {
                throw fail(c.name, "subsampling conv with kernel \(kernel), strides \(strides), group \(group) is not the \(depthwise ? "dw_striding" : "striding") pattern")
            }
        }
        let channels = try tensor("encoder.pre_encode.conv.0.weight").shape[0]
        let factor = 1 << stride2

        // feat_in: the graph input's feature dim, checked against the subsampling output width.
        guard let audio = model.graph.inputs.first(where: { $0.name == "audio_signal" }) ?? model.graph.inputs.first,
              audio.dims.count == 3, let featIn = audio.dims[1] else {
            throw .unexpectedGraph(path: path, reason: "the first input is not [B, features, T] with a fixed feature count")
        }
        var f = featIn
        for _ in 0..<stride2 { f = (f + 2 - 3) / 2 + 1 }
        guard outW.shape[1] == channels * f else {
            throw fail("/pre_encode/out/MatMul", "in-features \(outW.shape[1]) ≠ channels \(channels) × \(f) features after subsampling \(featIn)")
        }

        // xscaling: a Mul of the subsampling output by the scalar √d_model.
        var xscaling = false
        let outAdd = g.nodes.first { modulePath(ofNode: $0.name) == "pre_encode.out" && $0.opType == "Add" }
        for n in g.nodes where n.opType == "Mul" && n.inputs.count == 2 {
            let fromSubsampling = n.inputs.contains { v in outAdd?.outputs.contains(v) ?? false }
            guard fromSubsampling || n.name.hasPrefix("/pos_enc/") else { continue }
            guard let s = n.inputs.compactMap({ g.scalar($0) }).first else { continue }
            if abs(s - Double(dModel).squareRoot()) <= 1e-4 * Double(dModel).squareRoot() {
                xscaling = true
            } else {
                throw fail(n.name, "the subsampling output is multiplied by \(s), not √d_model = \(Double(dModel).squareRoot())")
            }
        }

        // LayerNorm epsilon: fused attribute, or the Add before Sqrt in the decomposition.
        var eps: [Float] = g.nodes.filter { $0.opType == "LayerNormalization" }.map { $0.attribute("epsilon")?.f ?? 1e-5 }
        for n in g.nodes where n.opType == "Sqrt" {
            guard let add = g.producerNode(n.inputs[0]), add.opType == "Add",
                  add.inputs.contains(where: { g.producerNode($0)?.opType == "ReduceMean" }),
                  let e = add.inputs.compactMap({ g.scalar($0) }).first else { continue }
            eps.append(Float(e))
        }
        guard let layerNormEps = eps.first else {
            throw .unexpectedGraph(path: path, reason: "no LayerNormalization node and no ReduceMean→Add(eps)→Sqrt pattern")
        }
        guard eps.allSatisfy({ $0 == layerNormEps }) else {
            throw .inconsistent(reason: "\(path) uses several LayerNorm epsilons \(Set(eps).sorted())")
        }

        var posRows = 0
        if let posTable {
            let dims = posTable.dims
            posRows = dims[dims.count - 2]
            guard dims.last == dModel, posRows % 2 == 1 else {
                throw fail(posTable.label, "positional table shape \(dims) is not [(1,) 2·maxLen−1, \(dModel)]")
            }
            try add("encoder.pos_enc.pe", [posRows, dModel], .copy(posTable), node: posTable.label)
        }

        let config = EncoderConfig(featIn: featIn, dModel: dModel, layers: layers, heads: heads, ffDim: ffDim,
                                   convKernel: convKernel, subsampling: depthwise ? .dwStriding : .striding,
                                   subsamplingFactor: factor, subsamplingChannels: channels, xscaling: xscaling,
                                   layerNormEps: layerNormEps, posEmbRows: posRows)

        // MARK: Strict: exactly the tensors the engine expects, with their shapes
        let expected = expectedTensors(config, subsamplingWidth: outW.shape[1])
        for (name, shape) in expected {
            guard let t = planned[name] else {
                throw .unexpectedGraph(path: path, reason: "no weight for '\(name)' was found")
            }
            guard t.shape == shape else {
                throw fail(t.recipe.sourceLabel, "'\(name)' has shape \(t.shape), expected \(shape)")
            }
        }
        let expectedNames = Set(expected.map(\.0))
        if let extra = planned.keys.sorted().first(where: { !expectedNames.contains($0) }) {
            throw fail(planned[extra]!.recipe.sourceLabel, "maps to '\(extra)', which the engine does not know")
        }
        let tensors = expected.map { planned[$0.0]! }
        return EncoderImport(config: config, tensors: tensors, warnings: warnings)
    }

    /// The encoder tensors of Weights/FORMAT.md for a config, in file order.
    static func expectedTensors(_ c: EncoderConfig, subsamplingWidth: Int) -> [(String, [Int])] {
        var out: [(String, [Int])] = []
        let C = c.subsamplingChannels, d = c.dModel
        let stages = c.subsamplingFactor.trailingZeroBitCount
        out.append(("encoder.pre_encode.conv.0.weight", [C, 1, 3, 3]))
        out.append(("encoder.pre_encode.conv.0.bias", [C]))
        for s in 1..<max(stages, 1) {
            if c.subsampling == .dwStriding {
                let j = 3 * s - 1
                out.append(("encoder.pre_encode.conv.\(j).weight", [C, 1, 3, 3]))
                out.append(("encoder.pre_encode.conv.\(j).bias", [C]))
                out.append(("encoder.pre_encode.conv.\(j + 1).weight", [C, C, 1, 1]))
                out.append(("encoder.pre_encode.conv.\(j + 1).bias", [C]))
            } else {
                out.append(("encoder.pre_encode.conv.\(2 * s).weight", [C, C, 3, 3]))
                out.append(("encoder.pre_encode.conv.\(2 * s).bias", [C]))
            }
        }
        out.append(("encoder.pre_encode.out.weight", [d, subsamplingWidth]))
        out.append(("encoder.pre_encode.out.bias", [d]))
        if c.posEmbRows > 0 { out.append(("encoder.pos_enc.pe", [c.posEmbRows, d])) }
        for i in 0..<c.layers {
            let p = "encoder.layers.\(i)."
            func norm(_ n: String) { out.append((p + n + ".weight", [d])); out.append((p + n + ".bias", [d])) }
            func ff(_ n: String) {
                out.append((p + n + ".linear1.weight", [c.ffDim, d])); out.append((p + n + ".linear1.bias", [c.ffDim]))
                out.append((p + n + ".linear2.weight", [d, c.ffDim])); out.append((p + n + ".linear2.bias", [d]))
            }
            norm("norm_feed_forward1"); ff("feed_forward1")
            norm("norm_self_att")
            for l in ["linear_q", "linear_k", "linear_v", "linear_out"] {
                out.append((p + "self_attn.\(l).weight", [d, d])); out.append((p + "self_attn.\(l).bias", [d]))
            }
            out.append((p + "self_attn.linear_pos.weight", [d, d]))
            out.append((p + "self_attn.pos_bias_u", [c.heads, d / c.heads]))
            out.append((p + "self_attn.pos_bias_v", [c.heads, d / c.heads]))
            norm("norm_conv")
            out.append((p + "conv.pointwise_conv1.weight", [2 * d, d, 1])); out.append((p + "conv.pointwise_conv1.bias", [2 * d]))
            out.append((p + "conv.depthwise_conv.weight", [d, 1, c.convKernel])); out.append((p + "conv.depthwise_conv.bias", [d]))
            out.append((p + "conv.pointwise_conv2.weight", [d, d, 1])); out.append((p + "conv.pointwise_conv2.bias", [d]))
            norm("norm_feed_forward2"); ff("feed_forward2")
            norm("norm_out")
        }
        return out
    }
}
