// The model description stored in the weights file's `__metadata__["vani.config"]` as JSON.
// Everything the engine needs besides tensors lives here; the converter reads each value from
// the ONNX graphs (never assumes it) and writes it. See Weights/FORMAT.md.

import Frontend

/// Hyper-parameters and vocabulary of an IndicConformer-style hybrid CTC/RNN-T model.
public struct ModelConfig: Codable, Sendable, Equatable {
    /// Version of this schema; bump on incompatible change.
    public var formatVersion: Int
    /// Log-mel frontend settings.
    public var frontend: FrontendConfig
    /// The Conformer encoder.
    public var encoder: EncoderConfig
    /// The CTC head.
    public var ctc: CTCConfig
    /// Absent when the model has no RNN-T head.
    public var rnnt: RNNTConfig?
    /// Languages and their vocabularies, keyed by code (`hi`, `ta`, …).
    public var languages: [String: LanguageEntry]
    /// Languages the model was trained on; nil means every language in `languages`.
    public var trainedLanguages: [String]?
    /// Seconds between encoder frames (hop × subsampling factor / sample rate; 0.08 in the release).
    public var frameDuration: Double
    /// Free-form model name shown by `/health` and `vani`.
    public var name: String

    /// Memberwise initialiser.
    public init(formatVersion: Int = 1, frontend: FrontendConfig, encoder: EncoderConfig,
                ctc: CTCConfig, rnnt: RNNTConfig?, languages: [String: LanguageEntry],
                trainedLanguages: [String]? = nil, frameDuration: Double, name: String) {
        self.formatVersion = formatVersion
        self.frontend = frontend
        self.encoder = encoder
        self.ctc = ctc
        self.rnnt = rnnt
        self.languages = languages
        self.trainedLanguages = trainedLanguages
        self.frameDuration = frameDuration
        self.name = name
    }

    /// Languages the engine offers: the trained ones when recorded, else all, sorted.
    public var availableLanguages: [String] {
        (trainedLanguages ?? Array(languages.keys)).sorted()
    }
}

/// Conformer encoder hyper-parameters (docs/MODEL.md §4).
public struct EncoderConfig: Codable, Sendable, Equatable {
    /// The choices of this setting.
    public enum Subsampling: String, Codable, Sendable { case dwStriding = "dw_striding", striding }
    /// Feature bins per frame (80).
    public var featIn: Int
    /// Model width (d_model).
    public var dModel: Int
    /// Conformer layers.
    public var layers: Int
    /// Attention heads (from pos_bias_u).
    public var heads: Int
    /// Feed-forward width.
    public var ffDim: Int
    /// Depthwise conv kernel size.
    public var convKernel: Int
    /// Subsampling kind.
    public var subsampling: Subsampling
    /// Time reduction of the subsampling (4 or 8).
    public var subsamplingFactor: Int
    /// Channels of the subsampling convs.
    public var subsamplingChannels: Int
    /// Multiply the subsampled input by √d_model before the layers.
    public var xscaling: Bool
    /// LayerNorm epsilon.
    public var layerNormEps: Float
    /// Rows of the stored positional table `encoder.pos_enc.pe` (2·maxLen − 1), 0 if not stored.
    public var posEmbRows: Int

    /// Memberwise initialiser.
    public init(featIn: Int, dModel: Int, layers: Int, heads: Int, ffDim: Int, convKernel: Int,
                subsampling: Subsampling, subsamplingFactor: Int, subsamplingChannels: Int,
                xscaling: Bool, layerNormEps: Float, posEmbRows: Int) {
        self.featIn = featIn; self.dModel = dModel; self.layers = layers; self.heads = heads
        self.ffDim = ffDim; self.convKernel = convKernel; self.subsampling = subsampling
        self.subsamplingFactor = subsamplingFactor; self.subsamplingChannels = subsamplingChannels
        self.xscaling = xscaling; self.layerNormEps = layerNormEps; self.posEmbRows = posEmbRows
    }
}

extension EncoderConfig {
    /// Floating-point operations (2 × multiply-adds) of the encoder's matrix work for `frames`
    /// encoder frames, subsampling excluded: feed-forwards, attention projections (linear_pos
    /// over 2T − 1 positions), scores, rel-pos scores, context, and the conv module. The
    /// denominator of every GFLOP/s figure `vani bench` prints.
    public func flops(frames t: Int) -> Double {
        let (d, ff, k) = (Double(dModel), Double(ffDim), Double(convKernel))
        let T = Double(t)
        let perLayer = T * (2 * 2 * 2 * d * ff)        // two FFs, two linears each
            + T * 4 * 2 * d * d                         // q, k, v, out
            + (2 * T - 1) * 2 * d * d                   // linear_pos
            + 2 * T * T * d + 2 * T * (2 * T - 1) * d + 2 * T * T * d   // ac, bd, context
            + T * (2 * d * 2 * d + 2 * d * d + 2 * k * d)               // conv module
        return perLayer * Double(layers)
    }
}

/// The CTC head: Conv1d(d_model → numClasses, k=1); numClasses includes the shared blank (5633).
public struct CTCConfig: Codable, Sendable, Equatable {
    /// Output classes, the shared blank included (5633).
    public var numClasses: Int
    /// Global id of the shared blank (5632 in the release).
    public var blankId: Int
    /// Memberwise initialiser.
    public init(numClasses: Int, blankId: Int) { self.numClasses = numClasses; self.blankId = blankId }
}

/// The RNN-T prediction network and joint (docs/MODEL.md §2).
public struct RNNTConfig: Codable, Sendable, Equatable {
    /// The choices of this setting.
    public enum Activation: String, Codable, Sendable { case relu, tanh, sigmoid, identity }
    /// Rows of the embedding (5633; the last is the SOS/padding row).
    public var vocabSize: Int
    /// LSTM width of the prediction network (H).
    public var predHidden: Int
    /// LSTM layers of the prediction network.
    public var predLayers: Int
    /// Joint width (J).
    public var jointHidden: Int
    /// The joint activation (joint_pre_net).
    public var jointActivation: Activation
    /// Symbols emitted per frame at most (10).
    public var maxSymbols: Int
    /// Start-of-sequence id fed first (5632, the embedding's zero padding row).
    public var sosId: Int
    /// Local blank index in each language's 257 outputs (256).
    public var blankLocal: Int

    /// Memberwise initialiser.
    public init(vocabSize: Int, predHidden: Int, predLayers: Int, jointHidden: Int,
                jointActivation: Activation, maxSymbols: Int, sosId: Int, blankLocal: Int) {
        self.vocabSize = vocabSize; self.predHidden = predHidden; self.predLayers = predLayers
        self.jointHidden = jointHidden; self.jointActivation = jointActivation
        self.maxSymbols = maxSymbols; self.sosId = sosId; self.blankLocal = blankLocal
    }
}

/// One language: where its 256-token block starts in the CTC output, and its 257 pieces.
public struct LanguageEntry: Codable, Sendable, Equatable {
    /// First global id of the block (hi = 1536 in the release).
    public var blockStart: Int
    /// Number of tokens in the block, excluding the blank (256).
    public var blockSize: Int
    /// The 257 pieces: index 0 `<unk>`, `▁` marks a word start, the last slot is the blank.
    public var vocabulary: [String]

    /// Memberwise initialiser.
    public init(blockStart: Int, blockSize: Int, vocabulary: [String]) {
        self.blockStart = blockStart; self.blockSize = blockSize; self.vocabulary = vocabulary
    }
}
