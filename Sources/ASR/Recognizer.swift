// The whole pipeline behind a small public API: audio → features → encoder → decoder → text.
// The CLI and the HTTP service are two thin doors onto this type.
//
// A request's strings are resolved here, once: the language code becomes a `Language` (its
// vocabulary, CTC block and joint post-net) and the decoder kind a `Decoder`; audio is
// validated once, by `Audio`. Everything below takes those values and checks nothing again.

import Audio
import Backend
import ConformerModel
import Decoding
import Foundation
import Frontend
import TensorModule
import VoiceActivity
import WeightFormat

/// Errors of the recognition pipeline; each message ends with what to do about it.
public enum RecognizerError: Error, CustomStringConvertible, Sendable, Equatable {
    /// No file at the model path.
    case modelNotFound(path: String)
    /// The file is not a usable model (the loader's reason).
    case invalidModel(String)
    /// The model does not offer this language (`available` lists what it offers).
    case unknownLanguage(String, available: [String])
    /// The model has no head for this decoder.
    case decoderUnavailable(DecoderKind)
    /// The device does not offer this precision (`available` lists what it offers).
    case precisionUnavailable(Precision, device: ComputeDevice, available: [Precision])
    /// The device asked for cannot run the model (the probe's reason: no driver, no device,
    /// a missing library, ...).
    case deviceUnavailable(ComputeDevice, reason: String)
    /// The audio was refused (its `AudioError`, with a stable `code`).
    case audio(AudioError)
    /// The segmentation asked for cannot be applied (Segmentation.swift).
    case segmentation(SegmentationError)

    /// The message, ending with what to do.
    public var description: String {
        switch self {
        case .modelNotFound(let path):
            return "model file not found at \(path): pass --model FILE, set VANI_MODEL, or convert the release with vani-convert"
        case .invalidModel(let why):
            return "the model file is not usable: \(why); re-create it with vani-convert"
        case .unknownLanguage(let code, let available):
            // The code came from a client: cut and escaped before it is echoed.
            let shown = code.count > 40 ? String(code.prefix(40)) + "…" : code
            let safe = String(String.UnicodeScalarView(shown.unicodeScalars.map {
                $0.properties.generalCategory == .control ? "?" : $0 }))
            return "unknown language '\(safe)': this model offers \(available.joined(separator: ", "))"
        case .decoderUnavailable(let kind):
            return "this model has no \(kind.rawValue) decoder: use \(kind == .ctc ? "rnnt" : "ctc")"
        case .audio(let error):
            return error.description
        case .precisionUnavailable(let precision, let device, let available):
            return "precision \(precision.rawValue) is not offered on \(device.rawValue): use \(available.map(\.rawValue).joined(separator: ", "))"
        case .segmentation(let error):
            return error.description
        case .deviceUnavailable(let device, let reason):
            return "device \(device.rawValue) is unusable: \(reason); use --device cpu or auto"
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
    /// The precision of the encoder's weight products (nil when not reported).
    public var precision: Precision?

    /// Memberwise initialiser.
    public init(name: String, languages: [String], decoders: [DecoderKind], parameters: Int, sampleRate: Int,
                precision: Precision? = nil) {
        self.name = name; self.languages = languages; self.decoders = decoders
        self.parameters = parameters; self.sampleRate = sampleRate; self.precision = precision
    }
}

/// Settings of a `Recognizer` that are not part of the model.
public struct RecognizerOptions: Sendable {
    /// Longest audio accepted, in seconds.
    public var maxAudioSeconds: Double = 3600
    /// Threads one forward pass uses on Vani's pool (OpenBLAS itself runs single-threaded);
    /// 0 uses the process setting (every core unless `BLAS.setThreads` changed it). Applied to
    /// this recognizer's calls only. A server running N requests at once should give
    /// N × threads ≤ cores.
    public var threads: Int = 0
    /// Where the forward work runs (`auto`: the GPU when one is usable, else the CPU).
    public var device: ComputeDevice = .cpu
    /// How long audio is cut into windows (`Segmentation.windows`).
    public var chunking = ChunkingPolicy()
    /// The precision of the encoder's weight products (`Precision`); nil: the precision the file
    /// stores them in (fp32 for the release's files). Must be one `device.precisions` offers.
    public var precision: Precision?
    /// The segmentation used when a call names none; nil: audio up to `chunking.maxWindow`
    /// seconds whole, longer audio `vad` (or `windows` when the detector is not loaded).
    public var segmentation: Segmentation?
    /// How `vad` cuts at pauses.
    public var segmentationPolicy = SegmentationPolicy()
    /// Silero VAD weights (`Weights/silero_vad.safetensors` by default); nil or a missing file
    /// leaves `vad` unavailable.
    public var voiceActivityModel: URL? = SileroVAD.defaultModelURL()
    /// Memberwise initialiser.
    public init(maxAudioSeconds: Double = 3600, threads: Int = 0, device: ComputeDevice = .cpu,
                chunking: ChunkingPolicy = ChunkingPolicy(), precision: Precision? = nil,
                segmentation: Segmentation? = nil,
                segmentationPolicy: SegmentationPolicy = SegmentationPolicy(),
                voiceActivityModel: URL? = SileroVAD.defaultModelURL()) {
        self.maxAudioSeconds = maxAudioSeconds; self.threads = threads; self.device = device
        self.chunking = chunking; self.precision = precision; self.segmentation = segmentation
        self.segmentationPolicy = segmentationPolicy; self.voiceActivityModel = voiceActivityModel
    }
}

/// A loaded model: transcribes mono samples at the model's rate or encoded audio files.
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
    /// Where the forward work runs (chosen by `options.device`).
    public let backend: any InferenceBackend
    /// The voice-activity detector for `Segmentation.vad`, when its weights loaded.
    public let voiceActivity: SileroVAD?
    /// Why `voiceActivity` is nil (for the error a `vad` request gets).
    let voiceActivityFailure: String?
    /// One line saying why `auto` chose the CPU (nil when it did not, or the device was named).
    public let deviceNote: String?
    /// Seconds the CUDA probe took when `options.device` needed it (`auto`, `cuda:N`), else nil.
    public let deviceProbeSeconds: Double?
    /// The offered languages, resolved once at load.
    let languages: [String: Language]
    let frontend: LogMelFrontend

    /// Loads and checks a weights file (see Weights/FORMAT.md).
    /// - Throws: `.modelNotFound`, `.invalidModel` naming what is wrong, `.precisionUnavailable`,
    ///   `.deviceUnavailable` (a `cuda:N` that cannot run, with the probe's reason).
    public init(modelURL: URL, options: RecognizerOptions = RecognizerOptions()) throws(RecognizerError) {
        // The device first (a failed probe costs a few failed dlopens), then the precision it offers.
        let probe: CUDAProbe? = options.device == .cpu ? nil : CUDAProbe.shared
        let device = probe.map { options.device.resolved(probe: $0) } ?? .cpu
        if case .cuda(let ordinal) = device, let probe, case .failure(let why) = probe.device(ordinal) {
            throw .deviceUnavailable(device, reason: why.reason)
        }
        self.deviceProbeSeconds = probe?.seconds
        if options.device == .auto, device == .cpu, let probe {
            deviceNote = "device auto: running on the CPU (\(probe.unusable?.reason ?? CUDABackend.notImplementedReason))"
        } else if case .cuda = device, !CUDABackend.isVerified {
            deviceNote = "the CUDA encoder of this build is not yet verified on a GPU (docs/GPU.md)"
        } else {
            deviceNote = nil
        }
        if let precision = options.precision, !device.precisions.contains(precision) {
            throw .precisionUnavailable(precision, device: device, available: device.precisions)
        }
        guard FileManager.default.fileExists(atPath: modelURL.path) else {
            throw .modelNotFound(path: modelURL.path)
        }
        let model: ConformerASRModel
        // The GPU converts to its precision itself from fp32 weights.
        let hostPrecision = device == .cpu ? options.precision : .fp32
        do { model = try ConformerASRModel(contentsOf: modelURL, precision: hostPrecision) } catch {
            throw .invalidModel(error.description)
        }
        self.model = model
        self.config = model.config
        self.options = options
        self.modelURL = modelURL
        self.frontend = LogMelFrontend(config: model.config.frontend)
        switch device {
        case .cuda(let ordinal):
            do {
                self.backend = try CUDABackend(model: model, ordinal: ordinal, precision: options.precision ?? .fp32)
            } catch {
                throw .deviceUnavailable(device, reason: "\(error)")
            }
        case .cpu, .auto:
            self.backend = CPUBackend(model: model, threads: options.threads)
        }
        if let url = options.voiceActivityModel {
            do {
                self.voiceActivity = try SileroVAD(contentsOf: url)
                self.voiceActivityFailure = nil
            } catch {
                self.voiceActivity = nil
                self.voiceActivityFailure = error.description
            }
        } else {
            self.voiceActivity = nil
            self.voiceActivityFailure = "no voice-activity weights configured"
        }
        let offered = model.config.availableLanguages
        self.languages = Language.all(in: model).filter { offered.contains($0.key) }
        self.info = ModelInfo(name: model.config.name, languages: offered,
                              decoders: model.transducer == nil ? [.ctc] : [.ctc, .rnnt],
                              parameters: model.parameterCount, sampleRate: model.config.frontend.sampleRate,
                              precision: model.precision)
    }

    /// The precision the encoder's products run in.
    public var precision: Precision { model.precision }

    /// One line for logs when that precision's products take the portable path on this CPU
    /// (no AVX-512 BF16 / VNNI); nil when they run on their own instructions.
    public var precisionNote: String? { model.precision.portablePathNote }

    // MARK: - The door: strings become values, once

    /// The language `code` names, resolved against this model.
    /// - Throws: `.unknownLanguage` (listing what the model offers).
    public func language(_ code: String) throws(RecognizerError) -> Language {
        guard let language = languages[code] else { throw .unknownLanguage(code, available: info.languages) }
        return language
    }

    /// The decoder of `kind` for `language`.
    /// - Throws: `.decoderUnavailable` when the model has no such head.
    public func decoder(_ kind: DecoderKind, for language: Language) throws(RecognizerError) -> Decoder {
        guard let decoder = language.decoder(kind, in: model) else { throw .decoderUnavailable(kind) }
        return decoder
    }

    // MARK: - Transcription

    /// Transcribes one utterance of mono samples at the model's rate, in [-1, 1].
    /// - Throws: `.unknownLanguage`, `.decoderUnavailable`, `.audio` (too short or long,
    ///   non-finite samples).
    public func transcribe(samples: [Float], language: String,
                           decoder: DecoderKind = .ctc) throws(RecognizerError) -> Transcript {
        try transcribe(batch: [samples], language: language, decoder: decoder)[0]
    }

    /// Transcribes one utterance of mono samples at the model's rate with a resolved language,
    /// cut by `segmentation` (nil: the options' default); `onSegment` sees each finished
    /// segment in order (for progress and streaming output).
    /// - Throws: `.decoderUnavailable`, `.audio`, `.segmentation`.
    public func transcribe(samples: [Float], language: Language, decoder kind: DecoderKind = .ctc,
                           segmentation: Segmentation?,
                           onSegment: (@Sendable (SegmentUpdate) -> Void)? = nil) throws(RecognizerError) -> Transcript {
        let decoder = try decoder(kind, for: language)
        try validate(samples)
        return try transcribeValidated(samples, language: language, decoder: decoder,
                                       segmentation: segmentation, onSegment: onSegment)
    }

    /// Transcribes a batch of utterances (each gets exactly what it would get alone).
    public func transcribe(batch: [[Float]], language code: String,
                           decoder kind: DecoderKind = .ctc) throws(RecognizerError) -> [Transcript] {
        let language = try language(code)
        let decoder = try decoder(kind, for: language)
        for samples in batch { try validate(samples) }
        var transcripts: [Transcript] = []
        for samples in batch { transcripts.append(try transcribeValidated(samples, language: language, decoder: decoder)) }
        return transcripts
    }

    /// Decodes an audio file's bytes (WAV, FLAC, OGG, MP3, WebM, MP4/M4A, …), mixes to mono,
    /// resamples to the model's rate and transcribes it in `language` (resolved with
    /// `language(_:)`). A truncated file is transcribed as far as it goes, with the decoder's
    /// warning in `Transcript.warnings`; libraries' messages go to `AudioLog.logger`.
    /// - Throws: `.decoderUnavailable`, `.audio` with the decoder's `AudioError`.
    public func transcribe(audio: Data, language: Language,
                           decoder kind: DecoderKind = .ctc) throws(RecognizerError) -> Transcript {
        try transcribe(audio: audio, language: language, decoder: kind, segmentation: nil)
    }

    /// `transcribe(audio:language:decoder:)` cut by `segmentation` (nil: the options'
    /// default), with `onSegment` seeing each finished segment in order. Once `isCancelled`
    /// returns true no further segment starts, and the text of the segments done is returned.
    /// - Throws: `.decoderUnavailable`, `.audio`, `.segmentation`.
    public func transcribe(audio: Data, language: Language, decoder kind: DecoderKind = .ctc,
                           segmentation: Segmentation?,
                           onSegment: (@Sendable (SegmentUpdate) -> Void)? = nil,
                           isCancelled: (@Sendable () -> Bool)? = nil) throws(RecognizerError) -> Transcript {
        let decoder = try decoder(kind, for: language)
        let prepared: PreparedAudio
        do {
            prepared = try AudioDecoder.prepare(audio, sampleRate: config.frontend.sampleRate,
                                                maxSeconds: options.maxAudioSeconds)
        } catch { throw .audio(error) }
        return try transcribeValidated(prepared.samples, language: language, decoder: decoder,
                                       warnings: prepared.warnings, segmentation: segmentation,
                                       onSegment: onSegment, isCancelled: isCancelled)
    }

    /// Decodes an audio file's bytes (WAV, FLAC, OGG, MP3, …) to mono samples at the model's
    /// rate, validated (length within `options.maxAudioSeconds`, finite, in range): the first half
    /// of `transcribe(audio:language:decoder:)`, for callers that look at the samples first (the
    /// service's response cache hashes them).
    /// - Throws: `.audio` with the decoder's `AudioError`.
    public func decodeAudio(_ audio: Data) throws(RecognizerError) -> PreparedAudio {
        do {
            return try AudioDecoder.prepare(audio, sampleRate: config.frontend.sampleRate,
                                            maxSeconds: options.maxAudioSeconds)
        } catch { throw .audio(error) }
    }

    /// Transcribes audio returned by `decodeAudio(_:)` (already validated, so not checked
    /// again) in `language`: the second half of `transcribe(audio:language:decoder:)`. The
    /// audio's warnings are the transcript's.
    /// - Throws: `.decoderUnavailable`, `.segmentation`.
    public func transcribe(decoded audio: PreparedAudio, language: Language,
                           decoder kind: DecoderKind = .ctc) throws(RecognizerError) -> Transcript {
        try transcribe(decoded: audio, language: language, decoder: kind, segmentation: nil)
    }

    /// Transcribes audio returned by `decodeAudio(_:)` (already validated, so not checked
    /// again) in `language`: the second half of `transcribe(audio:language:decoder:)`, cut by
    /// `segmentation` (nil: the options' default), with `onSegment` seeing each finished
    /// segment in order. Once `isCancelled` returns true no further segment starts, and the
    /// text of the segments done is returned. The audio's warnings are the transcript's.
    /// - Throws: `.decoderUnavailable`, `.segmentation`.
    public func transcribe(decoded audio: PreparedAudio, language: Language,
                           decoder kind: DecoderKind = .ctc, segmentation: Segmentation?,
                           onSegment: (@Sendable (SegmentUpdate) -> Void)? = nil,
                           isCancelled: (@Sendable () -> Bool)? = nil) throws(RecognizerError) -> Transcript {
        let decoder = try decoder(kind, for: language)
        return try transcribeValidated(audio.samples, language: language, decoder: decoder,
                                       warnings: audio.warnings, segmentation: segmentation,
                                       onSegment: onSegment, isCancelled: isCancelled)
    }

    /// `transcribe(audio:language:decoder:)` with the language given by its code.
    public func transcribe(audio: Data, language code: String,
                           decoder: DecoderKind = .ctc) throws(RecognizerError) -> Transcript {
        try transcribe(audio: audio, language: language(code), decoder: decoder)
    }

    private func validate(_ samples: [Float]) throws(RecognizerError) {
        do {
            try AudioDecoder.validate(samples, sampleRate: config.frontend.sampleRate,
                                      maxSeconds: options.maxAudioSeconds)
        } catch { throw .audio(error) }
    }

    // MARK: - Stages (tests, `vani bench`)

    /// Log-mel features [frames, nMels] of samples at the model's rate, with this model's
    /// frontend settings.
    public func features(_ samples: [Float]) -> Features { frontend.features(samples) }

    /// The encoder output [T', d] for features (trailing `pad_to` frames are cut before the
    /// layers), computed by the backend.
    public func encode(_ features: Features) -> Tensor { backend.encode([features])[0] }

    /// Tokens for encoder output [T', d] (from `encode`) with a resolved decoder, on the host.
    public func decode(_ encoded: Tensor, decoder: Decoder) -> DecodedTokens {
        decoder.decode(encoded.pointer, frames: encoded.shape[0])
    }

    /// The model used when none is named: `VANI_MODEL`, else `Weights/default.safetensors` in the
    /// working directory or above the executable (the bundled default).
    public static func defaultModelURL(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        BundledWeights.url("Weights/default.safetensors", environmentKey: "VANI_MODEL", environment: environment)
    }
}
