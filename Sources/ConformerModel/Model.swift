// A loaded model: configuration, encoder and heads, all read from one weights file.

import Foundation
import TensorModule
import WeightFormat

/// Everything in a weights file, checked strictly and ready to run. Immutable and `Sendable`.
public final class ConformerASRModel: Sendable {
    /// The configuration this part was built from.
    public let config: ModelConfig
    /// The Conformer encoder.
    public let encoder: ConformerEncoder
    /// The CTC head.
    public let ctc: CTCHead
    /// The RNN-T prediction network and joint, when the model has them.
    public let transducer: Transducer?
    /// Parameters stored in the file.
    public let parameterCount: Int
    /// Keeps the mapping alive for the borrowed weights.
    public let archive: WeightsArchive
    /// The precision of the encoder's weight products (`Precision`).
    public let precision: Precision
    /// The precision the file stores its reduced matrices in (`vani.dtype` metadata; fp32 when absent).
    public let storedPrecision: Precision

    /// Maps and checks a weights file written by `vani-convert`, holding the encoder's weight
    /// matrices in `precision` (nil: the precision the file stores them in, fp32 for the
    /// release's files).
    /// - Throws: `ModelLoadError` naming the file, tensor or field that is wrong.
    public init(contentsOf url: URL, precision: Precision? = nil) throws(ModelLoadError) {
        let archive: WeightsArchive
        do { archive = try WeightsArchive(contentsOf: url) } catch { throw .weights(error) }
        guard let json = archive.metadata["vani.config"] else { throw .missingConfig(path: url.path) }
        let config: ModelConfig
        do { config = try JSONDecoder().decode(ModelConfig.self, from: Data(json.utf8)) } catch {
            throw .badConfig(path: url.path, reason: "vani.config does not decode: \(error)")
        }
        try Self.validate(config, path: url.path)
        let stored = Precision(rawValue: archive.metadata["vani.dtype"] ?? "fp32") ?? .fp32
        let precision = precision ?? stored
        let r = WeightReader(archive: archive, prefix: "", precision: precision)
        let encoderWeights = try EncoderWeights(r.scoped("encoder."), config.encoder)
        encoder = ConformerEncoder(config: config.encoder, weights: encoderWeights)
        ctc = try CTCHead(r.scoped("ctc_decoder."), config: config.ctc, dModel: config.encoder.dModel)
        transducer = try config.rnnt.map { rnnt throws(ModelLoadError) in
            try Transducer(r, config: rnnt, dModel: config.encoder.dModel, languages: config.languages)
        }
        let unused = archive.unusedNames()
        guard unused.isEmpty else { throw .unusedTensors(path: url.path, names: unused) }
        parameterCount = archive.tensorNames.reduce(0) { $0 + (archive.info($1)?.count ?? 0) }
        self.config = config
        self.archive = archive
        self.precision = precision
        self.storedPrecision = stored
    }

    private static func validate(_ c: ModelConfig, path: String) throws(ModelLoadError) {
        func bad(_ why: String) -> ModelLoadError { .badConfig(path: path, reason: why) }
        let e = c.encoder
        guard e.dModel > 0, e.heads > 0, e.dModel % e.heads == 0 else { throw bad("d_model \(e.dModel) not divisible by \(e.heads) heads") }
        guard e.layers >= 0, e.ffDim > 0, e.convKernel % 2 == 1 else { throw bad("layers/ff/kernel out of range") }
        guard e.featIn == c.frontend.nMels else { throw bad("encoder takes \(e.featIn) features, frontend makes \(c.frontend.nMels)") }
        guard c.ctc.blankId >= 0, c.ctc.blankId < c.ctc.numClasses else { throw bad("CTC blank \(c.ctc.blankId) outside \(c.ctc.numClasses) classes") }
        guard !c.languages.isEmpty else { throw bad("no languages") }
        for (code, l) in c.languages {
            guard l.blockStart >= 0, l.blockSize > 0, l.blockStart + l.blockSize <= c.ctc.numClasses,
                  l.vocabulary.count == l.blockSize + 1 else {
                throw bad("language \(code): block \(l.blockStart)+\(l.blockSize) or vocabulary of \(l.vocabulary.count) pieces does not fit")
            }
        }
        for code in c.trainedLanguages ?? [] where c.languages[code] == nil {
            throw bad("trained language \(code) has no vocabulary")
        }
    }
}
