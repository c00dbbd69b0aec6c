// Lookups over one ONNX graph: which tensors are constants (initializers and Constant-node
// attributes alike), who produces and who consumes each value, and module paths from node scopes.

import Foundation

/// A constant tensor of a graph, with the graph it belongs to (for loading and messages).
public struct SourceTensor: Sendable {
    public var tensor: ONNXTensor
    /// The `.onnx` file (for messages and external data).
    public var graphPath: String
    /// Folder external data is resolved against.
    public var directory: URL
    /// The Constant node holding it, nil for an initializer.
    public var constantNode: String?

    /// The elements as float32 (see `ONNXTensor.floatValues`).
    public func floats() throws(ONNXImportError) -> [Float] {
        try tensor.floatValues(directory: directory, graphPath: graphPath)
    }
    public var dims: [Int] { tensor.dims }
    /// The name shown in messages: the initializer's name or the Constant node's.
    public var label: String { constantNode.map { "\($0) (Constant)" } ?? tensor.name }
}

/// Producer/consumer maps of a graph.
struct GraphIndex {
    let model: ONNXModel
    let path: String
    let directory: URL
    /// Value name → constant tensor (initializer or Constant output).
    var constants: [String: SourceTensor] = [:]
    /// Value name → (node index, input position) of each consumer.
    var consumers: [String: [(node: Int, input: Int)]] = [:]
    /// Value name → index of its producing node.
    var producer: [String: Int] = [:]

    var nodes: [ONNXNode] { model.graph.nodes }

    init(_ model: ONNXModel) {
        self.model = model
        path = model.url.path
        directory = model.url.deletingLastPathComponent()
        for t in model.graph.initializers {
            constants[t.name] = SourceTensor(tensor: t, graphPath: path, directory: directory, constantNode: nil)
        }
        for (i, n) in model.graph.nodes.enumerated() {
            for (k, input) in n.inputs.enumerated() where !input.isEmpty {
                consumers[input, default: []].append((i, k))
            }
            for o in n.outputs where !o.isEmpty { producer[o] = i }
            if n.opType == "Constant", n.domain.isEmpty || n.domain == "ai.onnx",
               let out = n.outputs.first, var t = n.attribute("value")?.t {
                // Exporters often leave the attribute tensor unnamed; name it for messages.
                if t.name.isEmpty { t.name = (n.name.isEmpty ? out : n.name) + "_attr__value" }
                constants[out] = SourceTensor(tensor: t, graphPath: path, directory: directory,
                                              constantNode: n.name.isEmpty ? out : n.name)
            }
        }
    }

    /// The value of a one-element numeric constant, nil if `name` is not one.
    func scalar(_ name: String) -> Double? {
        guard let c = constants[name], c.tensor.count == 1, let type = c.tensor.type else { return nil }
        switch type {
        case .float, .float16, .bfloat16, .double:
            return (try? c.floats()).flatMap { $0.first.map(Double.init) }
        default:
            return (try? c.tensor.intValues(directory: directory, graphPath: path)).flatMap { $0.first.map(Double.init) }
        }
    }

    /// The node producing `value`, if any.
    func producerNode(_ value: String) -> ONNXNode? { producer[value].map { nodes[$0] } }

    /// Float constants with at least `minCount` elements (the weights).
    func floatConstants(minCount: Int) -> [(String, SourceTensor)] {
        constants.filter { _, c in
            guard let t = c.tensor.type, [.float, .float16, .bfloat16, .double].contains(t) else { return false }
            return c.tensor.count >= minCount
        }.sorted { $0.key < $1.key }
    }
}

/// The module path of a node from its TorchScript-exporter scope name:
/// `/layers.0/self_attn/linear_q/MatMul` → `layers.0.self_attn.linear_q`;
/// `/decoder_layers/decoder_layers.0/Conv` → `decoder_layers.0` (a called container's child
/// repeats the container's name). Nil when the name carries no scope.
func modulePath(ofNode name: String) -> String? {
    guard name.hasPrefix("/") else { return nil }
    var parts = name.dropFirst().split(separator: "/", omittingEmptySubsequences: false).map(String.init)
    guard parts.count >= 2 else { return parts.count == 1 ? "" : nil }
    parts.removeLast()
    var path: [String] = []
    for p in parts where !p.isEmpty {
        if let last = path.last, p.hasPrefix(last + ".") { path[path.count - 1] = p } else { path.append(p) }
    }
    return path.joined(separator: ".")
}
