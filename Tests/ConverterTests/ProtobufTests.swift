// The hand-written protobuf / ONNX reader against small graphs made by Python's `onnx`
// (Inputs/make_inputs.py) and against hand-made wire bytes.

import Foundation
import Testing
import WeightFormat
@testable import ONNXImport

/// Tests/ConverterTests/Inputs.
let inputsURL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Inputs")

func temporaryDirectory() -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vani-conv-\(UUID().uuidString)")
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}

func reader(_ bytes: [UInt8]) -> ProtobufReader { ProtobufReader(ByteStore(bytes: bytes, origin: "test")) }

@Suite struct WireFormat {
    @Test func varintsFixedAndLengthDelimited() throws {
        // field 1 varint 300; field 2 fixed32 1.5f; field 3 bytes "hi"; field 4 fixed64; field 5 packed [1, 150]
        var r = reader([0x08, 0xAC, 0x02,
                        0x15, 0x00, 0x00, 0xC0, 0x3F,
                        0x1A, 0x02, 0x68, 0x69,
                        0x21, 1, 0, 0, 0, 0, 0, 0, 0,
                        0x2A, 0x03, 0x01, 0x96, 0x01])
        var f = try #require(try r.nextField())
        #expect(f.number == 1 && f.wireType == .varint)
        #expect(try r.readVarint() == 300)
        f = try #require(try r.nextField())
        #expect(f.number == 2 && f.wireType == .fixed32)
        var floats: [Float] = []
        try r.readFloats(f.wireType, into: &floats)
        #expect(floats == [1.5])
        f = try #require(try r.nextField())
        #expect(try r.readString() == "hi")
        f = try #require(try r.nextField())
        #expect(f.wireType == .fixed64)
        try r.skip(f.wireType)
        f = try #require(try r.nextField())
        var ints: [Int64] = []
        try r.readVarints(f.wireType, into: &ints)
        #expect(ints == [1, 150])
        #expect(try r.nextField() == nil)
    }

    @Test func negativeInt64IsTenBytes() throws {
        var r = reader([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01])
        #expect(Int64(bitPattern: try r.readVarint()) == -1)
    }

    @Test func malformedInputsThrowInsteadOfTrapping() {
        let cases: [[UInt8]] = [
            [0x08, 0x80],                             // varint cut short
            [0x08] + [UInt8](repeating: 0xFF, count: 11), // varint too long
            [0x1A, 0x05, 0x61],                       // length past the end
            [0x0B],                                   // start group
            [0x0F],                                   // wire type 7
            [0x15, 0x00, 0x00],                       // fixed32 cut short
            [0x00],                                   // field number 0
        ]
        for bytes in cases {
            var r = reader(bytes)
            #expect(throws: ProtobufError.self, "\(bytes)") {
                while let (_, wt) = try r.nextField() { try r.skip(wt) }
            }
        }
    }

    /// Random short byte strings (seeded, so a failure repeats): each is refused with a thrown
    /// error, never taken for a model and never a trap.
    @Test func garbageIsNotAModel() {
        var state: UInt64 = 0x0DDB_A11_5EED
        func next() -> UInt64 {   // SplitMix64
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        var accepted: [[UInt8]] = []
        for _ in 0..<200 {
            let bytes = (0..<Int(next() % 64)).map { _ in UInt8(truncatingIfNeeded: next()) }
            if (try? ONNXModel(store: ByteStore(bytes: bytes, origin: "random"), url: URL(fileURLWithPath: "/random"))) != nil {
                accepted.append(bytes)
            }
        }
        #expect(accepted.isEmpty, "random bytes taken for a model: \(accepted.prefix(3))")
    }
}

@Suite struct ONNXFiles {
    let model: ONNXModel
    let expected: [String: [Float]]

    init() throws {
        model = try loadONNX(inputsURL.appendingPathComponent("storage.onnx"), purpose: "test graph")
        expected = try JSONDecoder().decode([String: [Float]].self,
                                            from: Data(contentsOf: inputsURL.appendingPathComponent("storage.json")))
    }

    @Test func modelGraphAndNodes() throws {
        #expect(model.irVersion == 8)
        #expect(model.opsetVersion == 17)
        #expect(model.producerName == "vani-tests")
        #expect(model.graph.name == "storage")
        #expect(model.graph.nodes.map(\.opType) == ["Constant", "Add"])
        let add = model.graph.nodes[1]
        #expect(add.name == "/layers.0/attrs/Add")
        #expect(add.inputs == ["x", "raw_f32"] && add.outputs == ["y"])
        #expect(add.attribute("alpha")?.f == 0.75)
        #expect(add.attribute("count")?.i == -3)
        #expect(add.attribute("label").map { String(decoding: $0.s, as: UTF8.self) } == "héllo")
        #expect(add.attribute("ints")?.ints == [1, -2, 3])
        #expect(add.attribute("floats")?.floats == [0.5, 1.5])
        #expect(add.attribute("strings")?.strings == [Array("a".utf8), Array("bc".utf8)])
        let input = try #require(model.graph.inputs.first)
        #expect(input.name == "x" && input.elemType == 1)
        #expect(input.dims == [nil, 3] && input.dimParams == ["batch", ""])
        #expect(model.graph.outputs.map(\.name) == ["y"])
    }

    @Test func everyStorageKindDecodes() throws {
        var tensors = Dictionary(uniqueKeysWithValues: model.graph.initializers.map { ($0.name, $0) })
        let constant = try #require(model.graph.nodes[0].attribute("value")?.t)
        tensors[constant.name] = constant
        #expect(constant.name == "Constant_7_attr__value" && constant.dims == [2, 2])
        for (name, values) in expected {
            let t = try #require(tensors[name], "\(name)")
            let got = try t.floatValues(directory: inputsURL, graphPath: "storage.onnx")
            #expect(got.map(\.bitPattern) == values.map(\.bitPattern), "\(name)")
        }
        #expect(tensors["raw_f32"]?.dims == [2, 3])
        if case .raw = tensors["raw_f32"]!.storage {} else { Issue.record("raw_f32 is not raw_data") }
        if case .floats = tensors["typed_f32"]!.storage {} else { Issue.record("typed_f32 is not float_data") }
        if case .int32s = tensors["f16_typed"]!.storage {} else { Issue.record("f16_typed is not int32_data") }
        if case .external(_, 16, nil) = tensors["ext_b"]!.storage {} else { Issue.record("ext_b offset/length") }
        #expect(try tensors["i64"]!.intValues(directory: inputsURL, graphPath: "") == [1, -2, 1 << 40])
        #expect(try tensors["i64_raw"]!.intValues(directory: inputsURL, graphPath: "") == [5, -6])
        #expect(throws: ONNXImportError.self) { try tensors["i64"]!.floatValues(directory: inputsURL, graphPath: "") }
    }

    /// A copy of the inputs in a temporary folder, with `weights.bin` replaced by `body`.
    func copyWithWeights(_ body: (URL) throws -> Void) throws -> (URL, ONNXTensor, ONNXTensor) {
        let dir = temporaryDirectory()
        try FileManager.default.copyItem(at: inputsURL.appendingPathComponent("storage.onnx"),
                                         to: dir.appendingPathComponent("storage.onnx"))
        try body(dir)
        let m = try loadONNX(dir.appendingPathComponent("storage.onnx"), purpose: "test graph")
        let a = m.graph.initializers.first { $0.name == "ext_a" }!
        let b = m.graph.initializers.first { $0.name == "ext_b" }!
        return (dir, a, b)
    }

    @Test func externalDataThroughASymlinkAsInTheHuggingFaceCache() throws {
        let (dir, a, b) = try copyWithWeights { dir in
            let blobs = dir.appendingPathComponent("blobs")
            try FileManager.default.createDirectory(at: blobs, withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: inputsURL.appendingPathComponent("weights.bin"),
                                             to: blobs.appendingPathComponent("0123abcd"))
            try FileManager.default.createSymbolicLink(atPath: dir.appendingPathComponent("weights.bin").path,
                                                       withDestinationPath: "blobs/0123abcd")
        }
        #expect(try a.floatValues(directory: dir, graphPath: "g") == expected["ext_a"])
        #expect(try b.floatValues(directory: dir, graphPath: "g") == expected["ext_b"])
    }

    @Test func missingOrDanglingExternalFile() throws {
        let (dir, a, _) = try copyWithWeights { _ in }
        do {
            _ = try a.floatValues(directory: dir, graphPath: "g")
            Issue.record("no error")
        } catch {
            guard case .missingFile(let path, _) = error else { Issue.record("\(error)"); return }
            #expect(path.hasSuffix("weights.bin"))
            #expect(error.description.contains("weights.bin") && error.description.contains("Download"))
        }
        let (dir2, a2, _) = try copyWithWeights { dir in
            try FileManager.default.createSymbolicLink(atPath: dir.appendingPathComponent("weights.bin").path,
                                                       withDestinationPath: "blobs/missing")
        }
        #expect { try a2.floatValues(directory: dir2, graphPath: "g") } throws: { e in
            if case .missingFile = e as? ONNXImportError { return true } else { return false }
        }
    }

    @Test func shortExternalFile() throws {
        let (dir, a, b) = try copyWithWeights { dir in
            let full = try Data(contentsOf: inputsURL.appendingPathComponent("weights.bin"))
            try full.prefix(20).write(to: dir.appendingPathComponent("weights.bin"))
        }
        #expect(try a.floatValues(directory: dir, graphPath: "g") == expected["ext_a"])
        do {
            _ = try b.floatValues(directory: dir, graphPath: "g")
            Issue.record("no error")
        } catch {
            guard case let .shortExternalData(tensor, path, needed, size) = error else { Issue.record("\(error)"); return }
            #expect(tensor == "ext_b" && path.hasSuffix("weights.bin") && needed == 28 && size == 20)
        }
    }

    @Test func truncatedModelFileIsMalformed() throws {
        let dir = temporaryDirectory()
        let bytes = try Data(contentsOf: inputsURL.appendingPathComponent("storage.onnx"))
        let url = dir.appendingPathComponent("cut.onnx")
        for keep in [1, 10, bytes.count / 2, bytes.count - 3] {
            try bytes.prefix(keep).write(to: url)
            #expect { _ = try loadONNX(url, purpose: "test") } throws: { e in
                if case .malformedONNX(let p, _) = e as? ONNXImportError { return p == url.path } else { return false }
            }
        }
        #expect { _ = try loadONNX(dir.appendingPathComponent("absent.onnx"), purpose: "the encoder") } throws: { e in
            if case .missingFile(_, "the encoder") = e as? ONNXImportError { return true } else { return false }
        }
    }
}
