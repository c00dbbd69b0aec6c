// The conversion: find the files, read every graph into a plan (engine name, shape, recipe per
// tensor, plus the ModelConfig), then stream the tensors into one safetensors file, and
// optionally reload it and check every tensor against its source.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import ConformerModel
import Foundation
import Frontend
import WeightFormat

/// The converter's version, written to `__metadata__["converter"]`.
public let converterVersion = "vani-convert 1.0.0"

/// What the converter reports while it works.
public enum ConversionEvent: Sendable {
    /// A file is being read.
    case reading(String)
    /// The plan is complete: this many tensors and data bytes will be written.
    case planned(tensors: Int, bytes: Int)
    /// Source files are being hashed (`bytes` so far of `total`).
    case hashing(bytes: Int, total: Int)
    /// A tensor was written (`index` counts from 1).
    case wrote(tensor: String, index: Int, of: Int, bytes: Int, totalBytes: Int)
    /// A tensor was verified against its source (`index` counts from 1).
    case verified(tensor: String, index: Int, of: Int)
    /// Something odd that does not stop the conversion.
    case warning(String)
}

/// Everything known before writing: the config and, per output tensor, its recipe.
public struct ConversionPlan: Sendable {
    public var config: ModelConfig
    public var tensors: [PlannedTensor]
    /// Files read, keyed by their name relative to `assets/` (`config.json` for the config).
    public var sourceFiles: [String: URL]
    public var warnings: [String]
    /// Data bytes of the output (float32).
    public var dataBytes: Int { tensors.reduce(0) { $0 + $1.count * 4 } }
}

/// The outcome of `Converter.convert`.
public struct ConversionResult: Sendable {
    public var plan: ConversionPlan
    public var output: URL
    public var fileSize: Int
    public var sourceDigest: String
    /// Tensors checked by `verify` (0 when not asked).
    public var verifiedTensors: Int
}

/// Locates a release folder: the repository folder (with `assets/`) or `assets/` itself.
public struct ModelFolder: Sendable {
    /// The folder holding `encoder.onnx` and the other graphs.
    public var assets: URL
    /// `config.json` with BLANK_ID, RNNT_MAX_SYMBOLS, SOS (in `assets/` or next to it).
    public var config: URL
    /// A readable model name derived from the path.
    public var suggestedName: String

    public init(_ url: URL) throws(ONNXImportError) {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: url.path, isDirectory: &isDir) else {
            throw .wrongDirectory(path: url.path, reason: "it does not exist")
        }
        guard isDir.boolValue else { throw .wrongDirectory(path: url.path, reason: "it is a file, not a folder") }
        let root: URL
        if fm.fileExists(atPath: url.appendingPathComponent("assets/encoder.onnx").path) {
            root = url
            assets = url.appendingPathComponent("assets")
        } else if fm.fileExists(atPath: url.appendingPathComponent("encoder.onnx").path) {
            assets = url
            root = url.deletingLastPathComponent()
        } else {
            throw .wrongDirectory(path: url.path, reason: "there is no encoder.onnx in it or in its assets/ folder")
        }
        let candidates = [assets.appendingPathComponent("config.json"), root.appendingPathComponent("config.json")]
        guard let config = candidates.first(where: { Self.isReleaseConfig($0) }) else {
            throw .missingFile(path: candidates[1].path,
                               purpose: "the release's config.json with BLANK_ID, RNNT_MAX_SYMBOLS and SOS, in assets/ or next to it")
        }
        self.config = config
        // Hugging Face cache: …/models--org--name/snapshots/<hash>/ → org/name.
        var name = root.standardizedFileURL.lastPathComponent
        let comps = root.standardizedFileURL.pathComponents
        if comps.count >= 3, comps[comps.count - 2] == "snapshots", comps[comps.count - 3].hasPrefix("models--") {
            name = comps[comps.count - 3].dropFirst("models--".count).replacingOccurrences(of: "--", with: "/")
        }
        suggestedName = name
    }

    static func isReleaseConfig(_ url: URL) -> Bool {
        guard let data = try? Data(contentsOf: url),
              let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return false }
        return obj["BLANK_ID"] != nil
    }
}

/// The ONNX → weights-file converter.
public enum Converter {
    // MARK: - Plan

    /// Reads every graph and JSON file of a release folder and plans the output.
    /// - Parameter name: model name for the config (default: derived from the folder).
    /// - Throws: `ONNXImportError` naming the file, node or tensor.
    /// - Parameter trainedLanguages: languages the model was trained on (recorded in the config so
    ///   that the engine offers only those); nil means every language in the vocabulary.
    public static func plan(folder url: URL, name: String? = nil, trainedLanguages: [String]? = nil,
                            progress: (ConversionEvent) -> Void = { _ in }) throws(ONNXImportError) -> ConversionPlan {
        let folder = try ModelFolder(url)
        let assets = folder.assets
        var sources: [String: URL] = ["config.json": folder.config]
        var warnings: [String] = []
        func graph(_ file: String, _ purpose: String) throws(ONNXImportError) -> ONNXModel {
            progress(.reading(file))
            let u = assets.appendingPathComponent(file)
            let m = try loadONNX(u, purpose: purpose)
            sources[file] = u
            // External data files count as sources too.
            let tensors = m.graph.initializers + m.graph.nodes.compactMap { $0.opType == "Constant" ? $0.attribute("value")?.t : nil }
            for t in tensors { if case .external(let loc, _, _) = t.storage { sources[loc] = assets.appendingPathComponent(loc) } }
            return m
        }

        // Encoder
        let encoderGraph = try graph("encoder.onnx", "the Conformer encoder")
        let encoder = try EncoderImport.read(encoderGraph)
        warnings += encoder.warnings
        var tensors = encoder.tensors

        // CTC
        let ctcGraph = try graph("ctc_decoder.onnx", "the CTC head")
        let ctc = try HeadsImport.ctc(ctcGraph, dModel: encoder.config.dModel)
        tensors += ctc.tensors

        // Release config.json
        progress(.reading(folder.config.lastPathComponent))
        let releaseConfig = try readReleaseConfig(folder.config)

        // Languages
        progress(.reading("vocab.json"))
        let vocabURL = assets.appendingPathComponent("vocab.json")
        let masksURL = assets.appendingPathComponent("language_masks.json")
        let vocab: [String: [String]] = try decodeJSON(vocabURL, purpose: "the per-language vocabularies")
        progress(.reading("language_masks.json"))
        let masks: [String: [Bool]] = try decodeJSON(masksURL, purpose: "the per-language output masks")
        sources["vocab.json"] = vocabURL
        sources["language_masks.json"] = masksURL
        let languages = try readLanguages(vocab: vocab, masks: masks, classes: ctc.classes)
        guard let blockSize = Set(languages.values.map(\.blockSize)).first, Set(languages.values.map(\.blockSize)).count == 1 else {
            throw .inconsistent(reason: "languages have different block sizes")
        }
        guard releaseConfig.blankId == blockSize else {
            throw .inconsistent(reason: "config.json BLANK_ID \(releaseConfig.blankId) is not the local blank \(blockSize) the masks imply")
        }

        // RNN-T (optional as a whole)
        let fm = FileManager.default
        var rnnt: RNNTConfig?
        let rnntFiles = ["rnnt_decoder.onnx", "joint_enc.onnx", "joint_pred.onnx", "joint_pre_net.onnx"]
        let present = rnntFiles.filter { fm.fileExists(atPath: assets.appendingPathComponent($0).path) }
        if !present.isEmpty {
            if let missing = rnntFiles.first(where: { !present.contains($0) }) {
                throw .missingFile(path: assets.appendingPathComponent(missing).path, purpose: "part of the RNN-T head")
            }
            let pred = try HeadsImport.predictionNetwork(try graph("rnnt_decoder.onnx", "the RNN-T prediction network"))
            warnings += pred.warnings
            tensors += pred.tensors
            let enc = try HeadsImport.linear(try graph("joint_enc.onnx", "the joint's encoder projection"), name: "joint.enc")
            let prd = try HeadsImport.linear(try graph("joint_pred.onnx", "the joint's prediction projection"), name: "joint.pred")
            guard enc.inFeatures == encoder.config.dModel, prd.inFeatures == pred.hidden, enc.outFeatures == prd.outFeatures else {
                throw .inconsistent(reason: "joint_enc is \(enc.inFeatures)→\(enc.outFeatures) and joint_pred \(prd.inFeatures)→\(prd.outFeatures), but d_model is \(encoder.config.dModel) and the prediction network \(pred.hidden)")
            }
            tensors += enc.tensors + prd.tensors
            let activation = try HeadsImport.activation(try graph("joint_pre_net.onnx", "the joint activation"))
            for lang in languages.keys.sorted() {
                let file = "joint_post_net_\(lang).onnx"
                guard fm.fileExists(atPath: assets.appendingPathComponent(file).path) else {
                    throw .missingFile(path: assets.appendingPathComponent(file).path, purpose: "the RNN-T output layer of language '\(lang)'")
                }
                let post = try HeadsImport.linear(try graph(file, "the RNN-T output layer of '\(lang)'"), name: "joint.post_net.\(lang)")
                guard post.inFeatures == enc.outFeatures, post.outFeatures == blockSize + 1 else {
                    throw .inconsistent(reason: "\(file) is \(post.inFeatures)→\(post.outFeatures), expected \(enc.outFeatures)→\(blockSize + 1)")
                }
                tensors += post.tensors
            }
            let strays = ((try? fm.contentsOfDirectory(atPath: assets.path)) ?? [])
                .filter { $0.hasPrefix("joint_post_net_") && $0.hasSuffix(".onnx") }
                .filter { languages["\($0.dropFirst("joint_post_net_".count).dropLast(".onnx".count))"] == nil }
            if !strays.isEmpty { warnings.append("ignored output layers of languages without a vocabulary: \(strays.sorted())") }
            if let layers = releaseConfig.predLayers, layers != pred.layers {
                throw .inconsistent(reason: "config.json PRED_RNN_LAYERS \(layers) but rnnt_decoder.onnx has \(pred.layers) LSTM layers")
            }
            if let hidden = releaseConfig.predHidden, hidden != pred.hidden {
                throw .inconsistent(reason: "config.json PRED_RNN_HIDDEN_DIM \(hidden) but the LSTM hidden size is \(pred.hidden)")
            }
            guard pred.vocab == ctc.classes, releaseConfig.sos < pred.vocab else {
                throw .inconsistent(reason: "the embedding has \(pred.vocab) rows, CTC \(ctc.classes) classes, SOS \(releaseConfig.sos)")
            }
            rnnt = RNNTConfig(vocabSize: pred.vocab, predHidden: pred.hidden, predLayers: pred.layers,
                              jointHidden: enc.outFeatures, jointActivation: activation,
                              maxSymbols: releaseConfig.maxSymbols, sosId: releaseConfig.sos, blankLocal: releaseConfig.blankId)
        }

        // The frontend lives in preprocessor.ts (TorchScript), which cannot be read without
        // PyTorch: its settings are the release's (docs/MODEL.md §3); the mel count comes
        // from the encoder's input.
        var frontend = FrontendConfig()
        frontend.nMels = encoder.config.featIn
        let frameDuration = Double(frontend.hopLength * encoder.config.subsamplingFactor) / Double(frontend.sampleRate)
        let config = ModelConfig(frontend: frontend, encoder: encoder.config,
                                 ctc: CTCConfig(numClasses: ctc.classes, blankId: ctc.classes - 1),
                                 rnnt: rnnt, languages: languages,
                                 trainedLanguages: trainedLanguages.map { Array(Set($0)).sorted() },
                                 frameDuration: frameDuration,
                                 name: name ?? folder.suggestedName)
        for code in trainedLanguages ?? [] where languages[code] == nil {
            throw .inconsistent(reason: "trained language '\(code)' has no vocabulary in vocab.json (known: \(languages.keys.sorted().joined(separator: ", "))); fix --trained-languages")
        }
        for w in warnings { progress(.warning(w)) }
        let plan = ConversionPlan(config: config, tensors: tensors, sourceFiles: sources, warnings: warnings)
        progress(.planned(tensors: tensors.count, bytes: plan.dataBytes))
        return plan
    }

    // MARK: - Write

    /// Plans, writes `output` (via `output.partial`), and with `verify` reloads and checks it.
    /// `dtype` bf16 or int8 stores the matrices `Precision.isReduced` names narrower (`Narrowing`).
    public static func convert(folder: URL, output: URL, name: String? = nil, trainedLanguages: [String]? = nil,
                               verify: Bool = false, dtype: Precision = .fp32,
                               progress: (ConversionEvent) -> Void = { _ in }) throws(ONNXImportError) -> ConversionResult {
        let plan = try self.plan(folder: folder, name: name, trainedLanguages: trainedLanguages, progress: progress)
        let digest = try sourceDigest(plan.sourceFiles, progress: progress)
        var metadata = try self.metadata(plan, digest: digest)
        if dtype != .fp32 { metadata["vani.dtype"] = dtype.rawValue }
        let decls = plan.tensors.flatMap { Narrowing.declarations(name: $0.name, shape: $0.shape, dtype: dtype) }
        let writer: SafetensorsWriter
        do { writer = try SafetensorsWriter(url: output, tensors: decls, metadata: metadata) } catch { throw .output(error) }
        var done = 0
        for (i, t) in plan.tensors.enumerated() {
            let values = try t.recipe.produce()
            guard values.count == t.count else {
                throw .unknownPattern(path: "", node: t.recipe.sourceLabel, reason: "made \(values.count) values for '\(t.name)' \(t.shape)")
            }
            let r = values.withUnsafeBufferPointer { p in
                Result { () throws(WeightFormatError) in
                    try Narrowing.write(t.name, shape: t.shape, values: p, dtype: dtype, to: writer)
                }
            }
            do { try r.get() } catch { throw .output(error) }
            done += values.count * 4
            progress(.wrote(tensor: t.name, index: i + 1, of: plan.tensors.count, bytes: done, totalBytes: plan.dataBytes))
        }
        do { try writer.finish() } catch { throw .output(error) }
        var result = ConversionResult(plan: plan, output: output, fileSize: writer.fileSize, sourceDigest: digest, verifiedTensors: 0)
        if verify {
            result.verifiedTensors = try self.verify(plan, output: output, metadata: metadata, dtype: dtype, progress: progress)
        }
        return result
    }

    /// The `__metadata__` map of Weights/FORMAT.md.
    static func metadata(_ plan: ConversionPlan, digest: String) throws(ONNXImportError) -> [String: String] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json: Data
        do { json = try encoder.encode(plan.config) } catch {
            throw .inconsistent(reason: "the model config cannot be encoded as JSON: \(error)")
        }
        return ["format": "vani", "format_version": "1", "vani.config": String(decoding: json, as: UTF8.self),
                "source_digest": digest, "converter": converterVersion]
    }

    // MARK: - Verify

    /// Reopens `output` and compares every tensor with its source; returns the count checked.
    /// Narrowed matrices (`dtype`) are checked to be within half a step of their source.
    public static func verify(_ plan: ConversionPlan, output: URL, metadata: [String: String]? = nil,
                              dtype: Precision = .fp32, progress: (ConversionEvent) -> Void = { _ in }) throws(ONNXImportError) -> Int {
        let archive: WeightsArchive
        do { archive = try WeightsArchive(contentsOf: output) } catch { throw .output(error) }
        if let metadata, archive.metadata != metadata {
            throw .verifyFailed(tensor: "__metadata__", reason: "the stored metadata differs from what was written")
        }
        do {
            let stored = try JSONDecoder().decode(ModelConfig.self, from: Data((archive.metadata["vani.config"] ?? "").utf8))
            guard stored == plan.config else { throw ONNXImportError.verifyFailed(tensor: "__metadata__", reason: "vani.config does not decode to the planned config") }
        } catch let e as ONNXImportError { throw e } catch {
            throw .verifyFailed(tensor: "__metadata__", reason: "vani.config does not decode: \(error)")
        }
        let declared = plan.tensors.flatMap { Narrowing.declarations(name: $0.name, shape: $0.shape, dtype: dtype) }
        guard Set(archive.tensorNames) == Set(declared.map(\.name)), archive.tensorNames.count == declared.count else {
            throw .verifyFailed(tensor: "(all)", reason: "the file holds \(archive.tensorNames.count) tensors, the plan \(declared.count)")
        }
        for (i, t) in plan.tensors.enumerated() {
            if Narrowing.declarations(name: t.name, shape: t.shape, dtype: dtype)[0].dtype != .f32 {
                try verifyNarrowed(t, archive: archive, dtype: dtype)
                progress(.verified(tensor: t.name, index: i + 1, of: plan.tensors.count))
                continue
            }
            let w: FloatWeights
            do { w = try archive.floats(t.name, shape: t.shape) } catch { throw .output(error) }
            let mismatch = try w.withUnsafeBufferPointer { (b) throws(ONNXImportError) -> String? in try t.recipe.check(b) }
            if let mismatch { throw .verifyFailed(tensor: t.name, reason: "\(mismatch) (source \(t.recipe.sourceLabel))") }
            archive.evict(t.name)      // keep memory near one tensor while scanning a 2.4 GB file
            progress(.verified(tensor: t.name, index: i + 1, of: plan.tensors.count))
        }
        if let left = archive.unusedNames().first { throw .verifyFailed(tensor: left, reason: "never checked") }
        return plan.tensors.count
    }

    /// A narrowed matrix against its source: every value within `Narrowing.tolerance` of its row.
    static func verifyNarrowed(_ t: PlannedTensor, archive: WeightsArchive, dtype: Precision) throws(ONNXImportError) {
        let source = try t.recipe.produce()
        let out = t.shape[0], k = t.count / max(1, out)
        var stored = [Float](repeating: 0, count: t.count)
        do {
            let raw = try archive.raw(t.name, shape: t.shape)
            if dtype == .int8 {
                let scales = try archive.floats(Precision.scaleName(of: t.name), shape: [out]).array
                raw.bytes.withMemoryRebound(to: Int8.self) { q in
                    for i in 0..<t.count { stored[i] = scales[i / k] * Float(q[i]) }
                }
            } else {
                for i in 0..<t.count {
                    stored[i] = Float(bitPattern: UInt32(raw.bytes.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) << 16)
                }
            }
        } catch { throw .output(error) }
        for o in 0..<out {
            let row = source[(o * k)..<((o + 1) * k)]
            let limit = Narrowing.tolerance(rowMax: row.map(abs).max() ?? 0, dtype: dtype)
            for i in row.indices where abs(source[i] - stored[i]) > limit {
                throw .verifyFailed(tensor: t.name, reason: "value \(i - o * k) of row \(o) is \(stored[i]), source \(source[i]) (allowed ±\(limit))")
            }
        }
        archive.evict(t.name)
    }

    // MARK: - Inputs

    struct ReleaseConfig {
        var blankId: Int
        var maxSymbols: Int
        var sos: Int
        var predLayers: Int?
        var predHidden: Int?
    }

    static func readReleaseConfig(_ url: URL) throws(ONNXImportError) -> ReleaseConfig {
        let bytes = try readFile(url, purpose: "the release's config.json")
        guard let obj = (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any] else {
            throw .unexpectedGraph(path: url.path, reason: "it is not a JSON object")
        }
        func int(_ key: String) -> Int? { (obj[key] as? NSNumber).flatMap { Int(exactly: $0.doubleValue) } }
        guard let blank = int("BLANK_ID"), let maxSymbols = int("RNNT_MAX_SYMBOLS"), let sos = int("SOS"),
              blank >= 0, maxSymbols > 0, sos >= 0 else {
            throw .unexpectedGraph(path: url.path, reason: "BLANK_ID, RNNT_MAX_SYMBOLS and SOS must be non-negative integers")
        }
        return ReleaseConfig(blankId: blank, maxSymbols: maxSymbols, sos: sos,
                             predLayers: int("PRED_RNN_LAYERS"), predHidden: int("PRED_RNN_HIDDEN_DIM"))
    }

    static func decodeJSON<T: Decodable>(_ url: URL, purpose: String) throws(ONNXImportError) -> T {
        let bytes = try readFile(url, purpose: purpose)
        do { return try JSONDecoder().decode(T.self, from: Data(bytes)) } catch {
            throw .unexpectedGraph(path: url.path, reason: "it does not hold \(purpose) in the release's form (\(error))")
        }
    }

    /// Each mask must be one contiguous block plus the shared blank (the last class); the
    /// vocabulary has one piece per block entry plus the blank slot.
    static func readLanguages(vocab: [String: [String]], masks: [String: [Bool]], classes: Int)
        throws(ONNXImportError) -> [String: LanguageEntry]
    {
        guard Set(vocab.keys) == Set(masks.keys) else {
            let a = Set(vocab.keys).subtracting(masks.keys).sorted(), b = Set(masks.keys).subtracting(vocab.keys).sorted()
            throw .inconsistent(reason: "vocab.json and language_masks.json list different languages (only in vocab: \(a), only in masks: \(b))")
        }
        guard !masks.isEmpty else { throw .inconsistent(reason: "language_masks.json lists no language") }
        var out: [String: LanguageEntry] = [:]
        for (lang, mask) in masks {
            guard mask.count == classes else {
                throw .inconsistent(reason: "the mask of '\(lang)' has \(mask.count) entries but the CTC head has \(classes) classes")
            }
            guard mask[classes - 1] else {
                throw .inconsistent(reason: "the mask of '\(lang)' does not include the blank (class \(classes - 1))")
            }
            let on = mask.indices.filter { mask[$0] && $0 != classes - 1 }
            guard let start = on.first, let end = on.last, end - start + 1 == on.count else {
                throw .inconsistent(reason: "the mask of '\(lang)' is not one contiguous block plus the blank")
            }
            let size = on.count
            guard let pieces = vocab[lang], pieces.count == size + 1 else {
                throw .inconsistent(reason: "vocab.json has \(vocab[lang]?.count ?? 0) pieces for '\(lang)', its mask \(size) tokens + blank")
            }
            out[lang] = LanguageEntry(blockStart: start, blockSize: size, vocabulary: pieces)
        }
        return out
    }

    /// `sha256:` over the sources sorted by name: for each, name, 0x00, 8-byte LE size, bytes.
    static func sourceDigest(_ files: [String: URL], progress: (ConversionEvent) -> Void) throws(ONNXImportError) -> String {
        var sizes: [String: Int] = [:]
        for (name, url) in files {
            // stat(2) follows symlinks (FileManager's attributes would describe the link itself).
            var st = stat()
            guard stat(url.path, &st) == 0 else { throw .missingFile(path: url.path, purpose: "source file \(name)") }
            sizes[name] = Int(st.st_size)
        }
        let total = sizes.values.reduce(0, +)
        var hasher = SHA256()
        var done = 0
        var buffer = [UInt8](repeating: 0, count: 1 << 22)
        for name in files.keys.sorted() {
            let url = files[name]!
            hasher.update(Array(name.utf8) + [0])
            var size = UInt64(sizes[name]!).littleEndian
            withUnsafeBytes(of: &size) { hasher.update($0) }
            let fd = open(url.path, O_RDONLY)
            guard fd >= 0 else { throw .unreadable(path: url.path, reason: String(cString: strerror(errno))) }
            defer { close(fd) }
            var offset = 0
            while offset < sizes[name]! {
                let n = buffer.withUnsafeMutableBytes { b in
                    preadAll(fd, UnsafeMutableRawBufferPointer(rebasing: b[0 ..< min(b.count, sizes[name]! - offset)]), offset: offset)
                }
                guard n > 0 else { throw .unreadable(path: url.path, reason: "read failed at byte \(offset)") }
                buffer.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                offset += n
                done += n
                if done % (64 << 20) < n { progress(.hashing(bytes: done, total: total)) }
            }
        }
        return "sha256:" + SHA256.hex(hasher.finalize())
    }
}
