// The small graphs: CTC decoder, RNN-T prediction network, joint pieces. Each is recognised by
// its structure (one Conv; Gather + LSTM chain; one Linear; one activation).

import ConformerModel
import Foundation

enum HeadsImport {
    /// `ctc_decoder.onnx`: one Conv1d(d → classes, k=1) (+ LogSoftmax).
    static func ctc(_ model: ONNXModel, dModel: Int) throws(ONNXImportError) -> (classes: Int, tensors: [PlannedTensor]) {
        let g = GraphIndex(model)
        let convs = g.nodes.filter { $0.opType == "Conv" }
        guard convs.count == 1, let conv = convs.first, conv.inputs.count >= 2,
              let w = g.constants[conv.inputs[1]] else {
            throw .unexpectedGraph(path: g.path, reason: "expected exactly one Conv with a constant weight, found \(convs.count) Conv nodes")
        }
        guard w.dims.count == 3, w.dims[1] == dModel, w.dims[2] == 1 else {
            throw .unknownPattern(path: g.path, node: conv.name, reason: "CTC weight shape \(w.dims) is not [classes, \(dModel), 1]")
        }
        let classes = w.dims[0]
        var tensors = [PlannedTensor(name: "ctc_decoder.decoder_layers.0.weight", shape: w.dims, recipe: .copy(w))]
        guard conv.inputs.count >= 3, let b = g.constants[conv.inputs[2]], b.dims == [classes] else {
            throw .unknownPattern(path: g.path, node: conv.name, reason: "the CTC Conv has no [\(classes)] bias")
        }
        tensors.append(PlannedTensor(name: "ctc_decoder.decoder_layers.0.bias", shape: [classes], recipe: .copy(b)))
        try rejectOtherWeights(g, used: [conv.inputs[1], conv.inputs[2]])
        return (classes, tensors)
    }

    /// `rnnt_decoder.onnx`: Gather on the embedding, then one LSTM node per layer.
    static func predictionNetwork(_ model: ONNXModel) throws(ONNXImportError)
        -> (vocab: Int, hidden: Int, layers: Int, tensors: [PlannedTensor], warnings: [String])
    {
        let g = GraphIndex(model)
        let gathers = g.nodes.filter { n in
            n.opType == "Gather" && (g.constants[n.inputs.first ?? ""]?.dims.count == 2)
        }
        guard gathers.count == 1, let embed = g.constants[gathers[0].inputs[0]] else {
            throw .unexpectedGraph(path: g.path, reason: "expected one Gather on a 2-D embedding table, found \(gathers.count)")
        }
        let vocab = embed.dims[0], embedDim = embed.dims[1]
        var tensors = [PlannedTensor(name: "rnnt_decoder.prediction.embed.weight", shape: embed.dims, recipe: .copy(embed))]
        var used: Set<String> = [gathers[0].inputs[0]]
        var warnings: [String] = []
        if let rows = try? embed.floats(), rows[(vocab - 1) * embedDim ..< vocab * embedDim].contains(where: { $0 != 0 }) {
            warnings.append("\(g.path): the embedding's last row (SOS/padding) is not zero")
        }
        let lstms = g.nodes.filter { $0.opType == "LSTM" }
        guard !lstms.isEmpty else { throw .unexpectedGraph(path: g.path, reason: "no LSTM node") }
        var hidden = 0
        var inputSize = embedDim
        var previousOutput: String?
        for (k, n) in lstms.enumerated() {
            guard let h = n.attribute("hidden_size")?.i, h > 0 else {
                throw .unknownPattern(path: g.path, node: n.name, reason: "LSTM without hidden_size")
            }
            let direction = n.attribute("direction").map { String(decoding: $0.s, as: UTF8.self) } ?? "forward"
            guard direction == "forward", n.attribute("clip") == nil, (n.attribute("input_forget")?.i ?? 0) == 0,
                  (n.attribute("layout")?.i ?? 0) == 0, n.attribute("activations") == nil,
                  n.inputs.count < 8 || n.inputs[7].isEmpty else {
                throw .unknownPattern(path: g.path, node: n.name, reason: "only forward LSTMs with default activations, no clip and no peepholes are supported")
            }
            if k == 0 { hidden = Int(h) } else if Int(h) != hidden {
                throw .unknownPattern(path: g.path, node: n.name, reason: "hidden_size \(h) differs from the first layer's \(hidden)")
            }
            // Layer k consumes layer k−1's output (possibly through Squeeze/Reshape).
            if let previousOutput {
                var v = n.inputs[0]
                var hops = 0
                while v != previousOutput, hops < 4, let p = g.producerNode(v), let i = p.inputs.first { v = i; hops += 1 }
                guard v == previousOutput else {
                    throw .unknownPattern(path: g.path, node: n.name, reason: "LSTM layer \(k) does not consume layer \(k - 1)'s output")
                }
            }
            previousOutput = n.outputs.first
            let H = Int(h)
            guard let W = g.constants[n.inputs[1]], W.dims == [1, 4 * H, inputSize],
                  let R = g.constants[n.inputs[2]], R.dims == [1, 4 * H, H] else {
                throw .unknownPattern(path: g.path, node: n.name, reason: "LSTM W/R are not constants of shape [1, \(4 * H), \(inputSize)] / [1, \(4 * H), \(H)]")
            }
            var B: SourceTensor?
            if n.inputs.count > 3, !n.inputs[3].isEmpty {
                guard let b = g.constants[n.inputs[3]], b.dims == [1, 8 * H] else {
                    throw .unknownPattern(path: g.path, node: n.name, reason: "LSTM B is not a constant of shape [1, \(8 * H)]")
                }
                B = b
                used.insert(n.inputs[3])
            }
            used.formUnion([n.inputs[1], n.inputs[2]])
            let p = "rnnt_decoder.prediction.dec_rnn.lstm."
            tensors.append(PlannedTensor(name: p + "weight_ih_l\(k)", shape: [4 * H, inputSize], recipe: .lstmWeight(W, hidden: H)))
            tensors.append(PlannedTensor(name: p + "weight_hh_l\(k)", shape: [4 * H, H], recipe: .lstmWeight(R, hidden: H)))
            tensors.append(PlannedTensor(name: p + "bias_ih_l\(k)", shape: [4 * H], recipe: .lstmBias(B, hidden: H, part: 0)))
            tensors.append(PlannedTensor(name: p + "bias_hh_l\(k)", shape: [4 * H], recipe: .lstmBias(B, hidden: H, part: 1)))
            inputSize = H
        }
        try rejectOtherWeights(g, used: used)
        return (vocab, hidden, lstms.count, tensors, warnings)
    }

    /// A graph holding one Linear (MatMul + Add, or Gemm): weight `[out, in]` and bias `[out]`.
    static func linear(_ model: ONNXModel, name: String) throws(ONNXImportError) -> (inFeatures: Int, outFeatures: Int, tensors: [PlannedTensor]) {
        let g = GraphIndex(model)
        var weight: PlannedTensor?
        var bias: SourceTensor?
        var used = Set<String>()
        for n in g.nodes {
            switch n.opType {
            case "MatMul":
                guard weight == nil, n.inputs.count == 2, let w = g.constants[n.inputs[1]], w.dims.count == 2 else {
                    throw .unknownPattern(path: g.path, node: n.name, reason: "expected one MatMul by a constant 2-D weight")
                }
                weight = PlannedTensor(name: name + ".weight", shape: [w.dims[1], w.dims[0]],
                                       recipe: .transpose(w, rows: w.dims[0], cols: w.dims[1]))
                used.insert(n.inputs[1])
            case "Gemm":
                guard weight == nil, n.inputs.count >= 2, let w = g.constants[n.inputs[1]], w.dims.count == 2 else {
                    throw .unknownPattern(path: g.path, node: n.name, reason: "expected one Gemm by a constant 2-D weight")
                }
                if n.attribute("transB")?.i == 1 {
                    weight = PlannedTensor(name: name + ".weight", shape: w.dims, recipe: .copy(w))
                } else {
                    weight = PlannedTensor(name: name + ".weight", shape: [w.dims[1], w.dims[0]],
                                           recipe: .transpose(w, rows: w.dims[0], cols: w.dims[1]))
                }
                used.insert(n.inputs[1])
                if n.inputs.count > 2, let b = g.constants[n.inputs[2]] { bias = b; used.insert(n.inputs[2]) }
            case "Add":
                guard bias == nil, let b = n.inputs.compactMap({ g.constants[$0] }).first else {
                    throw .unknownPattern(path: g.path, node: n.name, reason: "expected one Add of a constant bias")
                }
                bias = b
                used.formUnion(n.inputs.filter { g.constants[$0] != nil })
            case "Constant", "Identity", "Reshape", "Shape", "Transpose", "Unsqueeze", "Squeeze", "Concat", "Gather", "Cast":
                continue
            default:
                throw .unknownPattern(path: g.path, node: n.name, reason: "a \(n.opType) node in what should be a single Linear layer")
            }
        }
        guard let weight else { throw .unexpectedGraph(path: g.path, reason: "no Linear layer (MatMul or Gemm) in it") }
        guard let bias, bias.tensor.count == weight.shape[0] else {
            throw .unexpectedGraph(path: g.path, reason: "the Linear layer has no [\(weight.shape[0])] bias")
        }
        try rejectOtherWeights(g, used: used)
        return (weight.shape[1], weight.shape[0],
                [weight, PlannedTensor(name: name + ".bias", shape: [weight.shape[0]], recipe: .copy(bias))])
    }

    /// `joint_pre_net.onnx`: the joint activation.
    static func activation(_ model: ONNXModel) throws(ONNXImportError) -> RNNTConfig.Activation {
        let ops = model.graph.nodes.map(\.opType).filter { $0 != "Identity" && $0 != "Constant" }
        switch ops {
        case []: return .identity
        case ["Relu"]: return .relu
        case ["Tanh"]: return .tanh
        case ["Sigmoid"]: return .sigmoid
        default:
            throw .unknownPattern(path: model.url.path, node: model.graph.nodes.first { $0.opType != "Identity" }?.name ?? "",
                                  reason: "the joint activation is \(ops); Relu, Tanh, Sigmoid or nothing are supported")
        }
    }

    /// Fails on a float weight (≥ 2 elements) that nothing above accounted for.
    static func rejectOtherWeights(_ g: GraphIndex, used: Set<String>) throws(ONNXImportError) {
        for (value, src) in g.floatConstants(minCount: 2) where !used.contains(value) && !(g.consumers[value] ?? []).isEmpty {
            let user = g.consumers[value]!.first.map { g.nodes[$0.node].name } ?? ""
            throw .unknownPattern(path: g.path, node: user, reason: "weight \(src.label) \(src.dims) has no place in the engine's layout")
        }
    }
}
