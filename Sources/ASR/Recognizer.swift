// The whole pipeline behind a small public API: audio → features → encoder → decoder → text.
// The CLI and the HTTP service are two thin doors onto this type.

import Audio
import ConformerModel
import Decoding
import Foundation
import Frontend
import TensorModule
import WeightFormat

/// Errors of the recognition pipeline; each message ends with what to do about it.
public enum RecognizerError: Error, CustomStringConvertible, Sendable, Equatable {
    case modelNotFound(path: String)
    case invalidModel(String)
    case unknownLanguage(String, available: [String])
    case decoderUnavailable(DecoderKind)
    case audio(String)
    case audioTooShort(seconds: Double)
    case audioTooLong(seconds: Double, limit: Double)

    /// The message, ending with what to do.
    public var description: String {
        switch self {
        case .modelNotFound(let path):
            return "model file not found at \(path): pass --model FILE, set VANI_MODEL, or convert the release with vani-convert"
        case .invalidModel(let why):
            return "the model file is not usable: \(why); re-create it with vani-convert"
        case .unknownLanguage(let code, let available):
            return "unknown language '\(code)': this model offers \(available.joined(separator: ", "))"
        case .decoderUnavailable(let kind):
            return "this model has no \(kind.rawValue) decoder: use \(kind == .ctc ? "rnnt" : "ctc")"
        case .audio(let why):
            return why
        case .audioTooShort(let seconds):
            return String(format: "audio too short (%.3f s): send at least 0.025 s of speech", seconds)
        case .audioTooLong(let seconds, let limit):
            return String(format: "audio too long (%.1f s, limit %.0f s): split it or raise the limit", seconds, limit)
        }
    }
}

/// What a loaded model offers, for `/health`, `/v1/models` and `vani`.
public struct ModelInfo: Sendable, Codable, Equatable {
    /// The name recorded by the converter.
    public var name: String
    /// Language codes the model offers, sorted.
    public var languages: [String]
    /// Decoders the model has.
    public var decoders: [DecoderKind]
    /// Parameters stored in the weights file.
    public var parameters: Int
    /// Sample rate the model expects (audio is resampled to it).
    public var sampleRate: Int

    /// Memberwise initialiser.
    public init(name: String, languages: [String], decoders: [DecoderKind], parameters: Int, sampleRate: Int) {
        self.name = name; self.languages = languages; self.decoders = decoders
        self.parameters = parameters; self.sampleRate = sampleRate
    }
}

/// Settings of a `Recognizer` that are not part of the model.
public struct RecognizerOptions: Sendable {
    /// Longest audio accepted, in seconds.
    public var maxAudioSeconds: Double = 3600
    /// Threads one forward pass uses (`BLAS.setThreads`: Vani's pool splits the work, OpenBLAS
    /// runs single-threaded); 0 leaves the process setting alone. Process-wide.
    /// A server running N requests at once should give N × threads ≤ cores.
    public var blasThreads: Int = 0
    /// How long audio is cut into windows.
    public var chunking = ChunkingPolicy()
    /// Memberwise initialiser.
    public init(maxAudioSeconds: Double = 3600, blasThreads: Int = 0, chunking: ChunkingPolicy = ChunkingPolicy()) {
        self.maxAudioSeconds = maxAudioSeconds; self.blasThreads = blasThreads; self.chunking = chunking
    }
}

/// A loaded model: transcribes 16 kHz mono samples or encoded audio files.
///
/// Immutable once loaded and `Sendable`: one instance serves many concurrent callers; each
/// call plans its own scratch memory.
public final class Recognizer: Sendable {
    /// The configuration this part was built from.
    public let config: ModelConfig
    /// What the model offers.
    public let info: ModelInfo
    /// The weights file it was loaded from.
    public let modelURL: URL
    /// Settings that are not part of the model.
    public let options: RecognizerOptions
    /// The loaded network (encoder and heads).
    public let model: ConformerASRModel
    let frontend: LogMelFrontend

    /// Loads and checks a weights file (see Weights/FORMAT.md).
    /// - Throws: `.modelNotFound`, `.invalidModel` naming what is wrong.
    public init(modelURL: URL, options: RecognizerOptions = RecognizerOptions()) throws(RecognizerError) {
        guard FileManager.default.fileExists(atPath: modelURL.path) else {
            throw .modelNotFound(path: modelURL.path)
        }
        let model: ConformerASRModel
        do { model = try ConformerASRModel(contentsOf: modelURL) } catch {
            throw .invalidModel(error.description)
        }
        if options.blasThreads > 0 { BLAS.setThreads(options.blasThreads) }
        self.model = model
        self.config = model.config
        self.options = options
        self.modelURL = modelURL
        self.frontend = LogMelFrontend(config: model.config.frontend)
        self.info = ModelInfo(name: model.config.name, languages: model.config.availableLanguages,
                              decoders: model.transducer == nil ? [.ctc] : [.ctc, .rnnt],
                              parameters: model.parameterCount, sampleRate: model.config.frontend.sampleRate)
    }

    /// Throws `.unknownLanguage` (listing what the model offers) unless `code` is available.
    public func checkLanguage(_ code: String) throws(RecognizerError) {
        guard info.languages.contains(code) else {
            throw .unknownLanguage(code, available: info.languages)
        }
    }

    /// Transcribes one utterance of 16 kHz mono samples in [-1, 1].
    public func transcribe(samples: [Float], language: String,
                           decoder: DecoderKind = .ctc) throws(RecognizerError) -> Transcript {
        try transcribe(batch: [samples], language: language, decoder: decoder)[0]
    }

    /// Transcribes a batch of utterances (each gets exactly what it would get alone).
    public func transcribe(batch: [[Float]], language: String,
                           decoder: DecoderKind = .ctc) throws(RecognizerError) -> [Transcript] {
        try checkLanguage(language)
        if decoder == .rnnt && model.transducer == nil { throw .decoderUnavailable(.rnnt) }
        let rate = Double(config.frontend.sampleRate)
        for samples in batch {
            let seconds = Double(samples.count) / rate
            if samples.count < AudioDecoder.minimumSamples16k { throw .audioTooShort(seconds: seconds) }
            if seconds > options.maxAudioSeconds { throw .audioTooLong(seconds: seconds, limit: options.maxAudioSeconds) }
            if let bad = samples.firstIndex(where: { !$0.isFinite }) {
                throw .audio(AudioError.nonFiniteSamples(index: bad).description)
            }
        }
        return batch.map { transcribeOne($0, language: language, decoder: decoder) }
    }

    /// Decodes an audio file's bytes (WAV, FLAC, OGG, MP3, …), mixes to mono, resamples to
    /// 16 kHz and transcribes it.
    public func transcribe(audio: Data, language: String,
                           decoder: DecoderKind = .ctc) throws(RecognizerError) -> Transcript {
        try checkLanguage(language)
        let samples: [Float]
        do { samples = try AudioDecoder.load16kMono(audio, maxSeconds: options.maxAudioSeconds) } catch {
            switch error {
            case .tooShort(let n, _): throw .audioTooShort(seconds: Double(n) / Double(config.frontend.sampleRate))
            case .tooLong(let seconds, let limit): throw .audioTooLong(seconds: seconds, limit: limit)
            default: throw .audio(error.description)
            }
        }
        return try transcribe(samples: samples, language: language, decoder: decoder)
    }

    /// The model used when none is named: `VANI_MODEL`, else `Weights/default.safetensors` in the
    /// working directory or above the executable (the bundled default).
    public static func defaultModelURL(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        if let path = environment["VANI_MODEL"], !path.isEmpty { return URL(fileURLWithPath: path) }
        let relative = "Weights/default.safetensors"
        let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(relative)
        if FileManager.default.fileExists(atPath: cwd.path) { return cwd }
        var dir = URL(fileURLWithPath: CommandLine.arguments.first ?? ".").resolvingSymlinksInPath()
            .deletingLastPathComponent()
        for _ in 0..<6 {
            let candidate = dir.appendingPathComponent(relative)
            if FileManager.default.fileExists(atPath: candidate.path) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return cwd
    }
}
