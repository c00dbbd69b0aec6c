// The converter on the committed fixture models (Tests/Fixtures/models/*, the release layout made
// by Tools/reference/build_model.py) and on damaged copies of them.

import ConformerModel
import Foundation
import Testing
import WeightFormat
@testable import ONNXImport

/// The package root: three levels up from this file.
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
func fixture(_ variant: String) -> URL { packageRoot.appendingPathComponent("Tests/Fixtures/models/\(variant)") }

/// A writable copy of a fixture model folder.
func copyOfFixture(_ variant: String) throws -> URL {
    let dir = temporaryDirectory().appendingPathComponent(variant)
    try FileManager.default.copyItem(at: fixture(variant), to: dir)
    return dir
}

/// Runs `body` and returns the ONNXImportError it throws (records an issue otherwise).
func importError(_ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) -> ONNXImportError? {
    do {
        try body()
        Issue.record("expected an error, got none", sourceLocation: sourceLocation)
    } catch let e as ONNXImportError {
        #expect(e.description.hasSuffix("."), "message should end with what to do: \(e)", sourceLocation: sourceLocation)
        return e
    } catch {
        Issue.record("not an ONNXImportError: \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

/// The fixture variants' design (Tools/reference/build_model.py VARIANTS).
struct Variant: Sendable, CustomStringConvertible {
    var name: String
    var encoder: EncoderConfig
    var predHidden: Int
    var tiedBiases: Bool
    var description: String { name }
}

let variants = [
    Variant(name: "tiny-release",
            encoder: EncoderConfig(featIn: 80, dModel: 64, layers: 2, heads: 4, ffDim: 256, convKernel: 9,
                                   subsampling: .dwStriding, subsamplingFactor: 8, subsamplingChannels: 32,
                                   xscaling: true, layerNormEps: 1e-5, posEmbRows: 1023),
            predHidden: 32, tiedBiases: false),
    Variant(name: "tiny-variant",
            encoder: EncoderConfig(featIn: 80, dModel: 48, layers: 3, heads: 2, ffDim: 192, convKernel: 15,
                                   subsampling: .striding, subsamplingFactor: 4, subsamplingChannels: 32,
                                   xscaling: false, layerNormEps: 1e-5, posEmbRows: 2047),
            predHidden: 24, tiedBiases: true),
]

@Suite struct FixtureConversion {
    @Test(arguments: variants)
    func convertsVerifiesAndReadsTheGraph(_ v: Variant) throws {
        let out = temporaryDirectory().appendingPathComponent("w.safetensors")
        let result = try Converter.convert(folder: fixture(v.name), output: out, verify: true)
        let c = result.plan.config
        #expect(result.verifiedTensors == result.plan.tensors.count)
        #expect(c.encoder == v.encoder)
        #expect(c.ctc == CTCConfig(numClasses: 5633, blankId: 5632))
        #expect(c.rnnt == RNNTConfig(vocabSize: 5633, predHidden: v.predHidden, predLayers: 2, jointHidden: v.predHidden,
                                     jointActivation: .relu, maxSymbols: 10, sosId: 5632, blankLocal: 256))
        #expect(c.frameDuration == 0.01 * Double(v.encoder.subsamplingFactor))
        #expect(c.frontend.nMels == 80)
        #expect(c.name == v.name)
        #expect(c.languages.count == 22)
        #expect(c.languages["hi"]?.blockStart == 1536 && c.languages["hi"]?.blockSize == 256)
        #expect(c.languages["ur"]?.blockStart == 5376)
        #expect(c.languages["hi"]?.vocabulary.count == 257 && c.languages["hi"]?.vocabulary.first == "<unk>")

        let archive = try WeightsArchive(contentsOf: out)
        #expect(archive.metadata["format"] == "vani" && archive.metadata["format_version"] == "1")
        #expect(archive.metadata["converter"] == converterVersion)
        let digest = try #require(archive.metadata["source_digest"])
        #expect(digest.hasPrefix("sha256:") && digest.count == 7 + 64)
        let stored = try JSONDecoder().decode(ModelConfig.self, from: Data(archive.metadata["vani.config"]!.utf8))
        #expect(stored == c)

        // Exactly the FORMAT.md names.
        var names = EncoderImport.expectedTensors(c.encoder, subsamplingWidth: v.encoder.subsamplingChannels * (80 >> v.encoder.subsamplingFactor.trailingZeroBitCount)).map(\.0)
        names += ["ctc_decoder.decoder_layers.0.weight", "ctc_decoder.decoder_layers.0.bias",
                  "rnnt_decoder.prediction.embed.weight"]
        for k in 0..<2 { for p in ["weight_ih", "weight_hh", "bias_ih", "bias_hh"] { names.append("rnnt_decoder.prediction.dec_rnn.lstm.\(p)_l\(k)") } }
        names += ["joint.enc.weight", "joint.enc.bias", "joint.pred.weight", "joint.pred.bias"]
        for lang in c.languages.keys { names += ["joint.post_net.\(lang).weight", "joint.post_net.\(lang).bias"] }
        #expect(Set(archive.tensorNames) == Set(names))
        #expect(archive.tensorNames.count == names.count)
        #expect(archive.info("encoder.layers.0.conv.depthwise_conv.weight")?.shape == [v.encoder.dModel, 1, v.encoder.convKernel])
        #expect(archive.info("rnnt_decoder.prediction.embed.weight")?.shape == [5633, v.predHidden])

        try spotChecks(v, archive)
    }

    /// Layouts checked here by hand, apart from the converter's own `--verify`.
    func spotChecks(_ v: Variant, _ a: WeightsArchive) throws {
        let assets = fixture(v.name).appendingPathComponent("assets")
        let enc = GraphIndex(try loadONNX(assets.appendingPathComponent("encoder.onnx"), purpose: "test"))
        func node(_ name: String) throws -> ONNXNode { try #require(enc.nodes.first { $0.name == name }, "\(name)") }
        func source(_ g: GraphIndex, _ value: String) throws -> [Float] { try #require(g.constants[value]).floats() }
        let d = v.encoder.dModel

        // Anonymous MatMul weight [in, out] → [out, in].
        let q = try node("/layers.0/self_attn/linear_q/MatMul")
        let qSrc = try source(enc, q.inputs[1])
        let qOut = try a.floats("encoder.layers.0.self_attn.linear_q.weight", shape: [d, d]).array
        for o in 0..<d { for i in 0..<d { #expect(qOut[o * d + i] == qSrc[i * d + o]) } }
        // Positional table from the Constant node.
        let slice = try node("/pos_enc/Slice")
        #expect(try a.floats("encoder.pos_enc.pe", shape: [v.encoder.posEmbRows, d]).array == (try source(enc, slice.inputs[0])))
        // Biases, tied or not, land in every layer.
        let u0 = try source(enc, try node("/layers.0/self_attn/Add").inputs[1])
        for i in 0..<v.encoder.layers {
            let ui = try a.floats("encoder.layers.\(i).self_attn.pos_bias_u", shape: [v.encoder.heads, d / v.encoder.heads]).array
            if v.tiedBiases { #expect(ui == u0) } else if i > 0 { #expect(ui != u0) }
        }
        // LSTM gates: PyTorch block (i, f, g, o) = ONNX block (0, 2, 3, 1).
        let rnnt = GraphIndex(try loadONNX(assets.appendingPathComponent("rnnt_decoder.onnx"), purpose: "test"))
        let lstm = try #require(rnnt.nodes.first { $0.opType == "LSTM" })
        let H = v.predHidden
        let R = try source(rnnt, lstm.inputs[2]), B = try source(rnnt, lstm.inputs[3])
        let hh = try a.floats("rnnt_decoder.prediction.dec_rnn.lstm.weight_hh_l0", shape: [4 * H, H]).array
        let bih = try a.floats("rnnt_decoder.prediction.dec_rnn.lstm.bias_ih_l0", shape: [4 * H]).array
        let bhh = try a.floats("rnnt_decoder.prediction.dec_rnn.lstm.bias_hh_l0", shape: [4 * H]).array
        for (torchBlock, onnxBlock) in [(0, 0), (1, 2), (2, 3), (3, 1)] {
            #expect(Array(hh[torchBlock * H * H ..< (torchBlock + 1) * H * H]) == Array(R[onnxBlock * H * H ..< (onnxBlock + 1) * H * H]))
            #expect(Array(bih[torchBlock * H ..< (torchBlock + 1) * H]) == Array(B[onnxBlock * H ..< (onnxBlock + 1) * H]))
            #expect(Array(bhh[torchBlock * H ..< (torchBlock + 1) * H]) == Array(B[(4 + onnxBlock) * H ..< (5 + onnxBlock) * H]))
        }
        // A joint output layer.
        let post = GraphIndex(try loadONNX(assets.appendingPathComponent("joint_post_net_hi.onnx"), purpose: "test"))
        let mm = try #require(post.nodes.first { $0.opType == "MatMul" })
        let pw = try source(post, mm.inputs[1])
        let stored = try a.floats("joint.post_net.hi.weight", shape: [257, H]).array
        for o in 0..<257 { for i in 0..<H { #expect(stored[o * H + i] == pw[i * 257 + o]) } }
        // Everything was looked at by verify or here; the engine's strictness check works.
        #expect(!a.unusedNames().isEmpty)
    }

    @Test func assetsFolderAndHuggingFaceCacheLayoutGiveTheSameFile() throws {
        let direct = temporaryDirectory().appendingPathComponent("a.safetensors")
        let viaAssets = temporaryDirectory().appendingPathComponent("b.safetensors")
        _ = try Converter.convert(folder: fixture("tiny-release"), output: direct)
        _ = try Converter.convert(folder: fixture("tiny-release").appendingPathComponent("assets"), output: viaAssets)
        #expect(try Data(contentsOf: direct) == Data(contentsOf: viaAssets))

        // models--org--name/snapshots/<hash>/{config.json, assets/*} → ../../blobs/<n>
        let fm = FileManager.default
        let repo = temporaryDirectory().appendingPathComponent("models--ai4bharat--tiny-release")
        let blobs = repo.appendingPathComponent("blobs")
        let snapshot = repo.appendingPathComponent("snapshots/0123456789abcdef")
        try fm.createDirectory(at: blobs, withIntermediateDirectories: true)
        try fm.createDirectory(at: snapshot.appendingPathComponent("assets"), withIntermediateDirectories: true)
        var n = 0
        func link(_ src: URL, _ rel: String, depth: Int) throws {
            n += 1
            try fm.copyItem(at: src, to: blobs.appendingPathComponent("blob\(n)"))
            try fm.createSymbolicLink(atPath: snapshot.appendingPathComponent(rel).path,
                                      withDestinationPath: String(repeating: "../", count: depth) + "blobs/blob\(n)")
        }
        try link(fixture("tiny-release").appendingPathComponent("config.json"), "config.json", depth: 2)
        let assets = fixture("tiny-release").appendingPathComponent("assets")
        for f in try fm.contentsOfDirectory(atPath: assets.path) {
            try link(assets.appendingPathComponent(f).resolvingSymlinksInPath(), "assets/" + f, depth: 3)
        }
        let cached = temporaryDirectory().appendingPathComponent("c.safetensors")
        let r = try Converter.convert(folder: snapshot, output: cached, verify: true)
        #expect(r.plan.config.name == "ai4bharat/tiny-release")
        let a = try WeightsArchive(contentsOf: direct), c = try WeightsArchive(contentsOf: cached)
        #expect(a.metadata["source_digest"] == c.metadata["source_digest"])
        for name in a.tensorNames { #expect(a.rawBytes(name).map(Array.init) == c.rawBytes(name).map(Array.init)) }
    }

    @Test func explicitBatchNormIsFolded() throws {
        let dir = try copyOfFixture("tiny-release")
        let encoder = dir.appendingPathComponent("assets/encoder.onnx")
        try FileManager.default.removeItem(at: encoder)
        try FileManager.default.copyItem(at: inputsURL.appendingPathComponent("bn-explicit/encoder.onnx"), to: encoder)
        let out = dir.appendingPathComponent("w.safetensors")
        let r = try Converter.convert(folder: dir, output: out, verify: true)
        #expect(r.plan.tensors.filter { $0.recipe.kind == "bn-fold" }.count == 4)
        let expected = try JSONDecoder().decode([String: [Float]].self,
                                                from: Data(contentsOf: inputsURL.appendingPathComponent("bn-explicit/expected.json")))
        let a = try WeightsArchive(contentsOf: out)
        #expect(expected.count == 4)
        for (name, want) in expected {
            let got = try a.floats(name).array
            #expect(got.count == want.count)
            let worst = zip(got, want).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
            #expect(worst < 1e-5, "\(name): worst relative difference \(worst)")
        }
    }
}

@Suite struct DamagedInputs {
    @Test func missingExternalFile() throws {
        let dir = try copyOfFixture("tiny-release")
        let victim = dir.appendingPathComponent("assets/onnx__MatMul_765")
        try FileManager.default.removeItem(at: victim)
        let e = importError { _ = try Converter.convert(folder: dir, output: dir.appendingPathComponent("o.safetensors")) }
        guard case .missingFile(let path, _)? = e else { Issue.record("\(String(describing: e))"); return }
        #expect(path.hasSuffix("assets/onnx__MatMul_765"))
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("o.safetensors").path))
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("o.safetensors.partial").path))
    }

    @Test func truncatedExternalFile() throws {
        let dir = try copyOfFixture("tiny-release")
        let victim = dir.appendingPathComponent("assets/Constant_256_attr__value")
        let data = try Data(contentsOf: victim)
        try data.prefix(data.count - 100).write(to: victim)
        let e = importError { _ = try Converter.convert(folder: dir, output: dir.appendingPathComponent("o.safetensors")) }
        guard case let .shortExternalData(tensor, path, needed, size)? = e else { Issue.record("\(String(describing: e))"); return }
        #expect(tensor.contains("Constant_256"))
        #expect(path.hasSuffix("Constant_256_attr__value"))
        #expect(needed == data.count && size == data.count - 100)
    }

    @Test func unrelatedGraphInPlaceOfTheEncoder() throws {
        let dir = try copyOfFixture("tiny-release")
        let encoder = dir.appendingPathComponent("assets/encoder.onnx")
        try FileManager.default.removeItem(at: encoder)
        try FileManager.default.copyItem(at: inputsURL.appendingPathComponent("storage.onnx"), to: encoder)
        let e = importError { _ = try Converter.convert(folder: dir, output: dir.appendingPathComponent("o.safetensors")) }
        guard case .unexpectedGraph(let path, _)? = e else { Issue.record("\(String(describing: e))"); return }
        #expect(path.hasSuffix("encoder.onnx"))
    }

    @Test func unrelatedGraphInPlaceOfAHead() throws {
        let dir = try copyOfFixture("tiny-release")
        let ctc = dir.appendingPathComponent("assets/ctc_decoder.onnx")
        try FileManager.default.removeItem(at: ctc)
        try FileManager.default.copyItem(at: dir.appendingPathComponent("assets/joint_enc.onnx"), to: ctc)
        let e = importError { _ = try Converter.convert(folder: dir, output: dir.appendingPathComponent("o.safetensors")) }
        guard case .unexpectedGraph(let path, _)? = e else { Issue.record("\(String(describing: e))"); return }
        #expect(path.hasSuffix("ctc_decoder.onnx"))
    }

    @Test func notAnONNXFile() throws {
        let dir = try copyOfFixture("tiny-release")
        try Data("this is not protobuf".utf8).write(to: dir.appendingPathComponent("assets/joint_pred.onnx"))
        let e = importError { _ = try Converter.convert(folder: dir, output: dir.appendingPathComponent("o.safetensors")) }
        guard case .malformedONNX(let path, _)? = e else { Issue.record("\(String(describing: e))"); return }
        #expect(path.hasSuffix("joint_pred.onnx"))
    }

    @Test func wrongDirectories() throws {
        let empty = temporaryDirectory()
        let out = empty.appendingPathComponent("o.safetensors")
        for url in [empty, empty.appendingPathComponent("absent"), inputsURL.appendingPathComponent("storage.onnx"),
                    fixture("tiny-release").deletingLastPathComponent()] {
            let e = importError { _ = try Converter.convert(folder: url, output: out) }
            guard case .wrongDirectory(let path, _)? = e else { Issue.record("\(url.path): \(String(describing: e))"); continue }
            #expect(path == url.path)
        }
    }

    @Test func missingConfigAndMissingLanguageHead() throws {
        let dir = try copyOfFixture("tiny-release")
        try FileManager.default.removeItem(at: dir.appendingPathComponent("config.json"))
        let e = importError { _ = try Converter.plan(folder: dir) }
        guard case .missingFile(let path, _)? = e else { Issue.record("\(String(describing: e))"); return }
        #expect(path.hasSuffix("config.json"))

        let dir2 = try copyOfFixture("tiny-release")
        try FileManager.default.removeItem(at: dir2.appendingPathComponent("assets/joint_post_net_ta.onnx"))
        let e2 = importError { _ = try Converter.plan(folder: dir2) }
        guard case .missingFile(let p2, _)? = e2 else { Issue.record("\(String(describing: e2))"); return }
        #expect(p2.hasSuffix("joint_post_net_ta.onnx"))
    }

    @Test func inconsistentMasks() throws {
        let dir = try copyOfFixture("tiny-release")
        let url = dir.appendingPathComponent("assets/language_masks.json")
        var masks = try JSONDecoder().decode([String: [Bool]].self, from: Data(contentsOf: url.resolvingSymlinksInPath()))
        masks["hi"]![1600] = false                                 // a hole in the Hindi block
        try FileManager.default.removeItem(at: url)
        try JSONEncoder().encode(masks).write(to: url)
        let e = importError { _ = try Converter.plan(folder: dir) }
        guard case .inconsistent(let reason)? = e else { Issue.record("\(String(describing: e))"); return }
        #expect(reason.contains("'hi'"))
    }
}

@Suite struct Pieces {
    @Test func modulePathsFromScopes() {
        #expect(modulePath(ofNode: "/layers.0/self_attn/linear_q/MatMul") == "layers.0.self_attn.linear_q")
        #expect(modulePath(ofNode: "/decoder_layers/decoder_layers.0/Conv") == "decoder_layers.0")
        #expect(modulePath(ofNode: "/pre_encode/conv.0/Conv") == "pre_encode.conv.0")
        #expect(modulePath(ofNode: "/MatMul") == "")
        #expect(modulePath(ofNode: "Identity_42") == nil)
    }

    @Test func sha256KnownAnswers() {
        var h = SHA256()
        #expect(SHA256.hex(h.finalize()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        h = SHA256(); h.update(Array("abc".utf8))
        #expect(SHA256.hex(h.finalize()) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        // 1,000 'a' fed in odd pieces equals one update.
        let bytes = [UInt8](repeating: 0x61, count: 1000)
        var one = SHA256(); one.update(bytes)
        var pieces = SHA256(); var i = 0
        for n in [1, 63, 64, 65, 7, 300, 500] { pieces.update(Array(bytes[i ..< i + n])); i += n }
        #expect(i == 1000)
        let digest = SHA256.hex(one.finalize())
        #expect(digest == SHA256.hex(pieces.finalize()))
        #expect(digest == "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
    }
}
