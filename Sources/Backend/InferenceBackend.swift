// The device seam: the model's forward work for a batch of utterances, behind one protocol.
// The CPU backend runs today's code; a GPU backend plugs in here, keeping encoder, CTC and
// RNN-T on the device and handing the host only tokens and their frames. The backend is chosen
// where the model is built (`RecognizerOptions.device`), like sherpa-onnx's `provider`.

import ConformerModel
import Decoding
import Frontend
import TensorModule

/// Where a model's forward work runs, as `--device` spells it: `cpu`, `cuda` (= `cuda:0`),
/// `cuda:N`, or `auto` (the GPU when one is usable, else the CPU; see `resolved(probe:)`).
public enum ComputeDevice: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The host CPU: OpenBLAS, Vani's kernels and its thread pool.
    case cpu
    /// The NVIDIA GPU with this ordinal (driver, NVRTC and cuBLAS loaded at run time).
    case cuda(Int)
    /// The GPU when one is usable, else the CPU; resolved once when a model is built.
    case auto

    /// The spellings `--device` accepts, for help texts.
    public static let spellings = "cpu, cuda, cuda:N, auto"

    /// Parses `cpu`, `cuda`, `cuda:N` (N ≥ 0) or `auto`; nil for anything else.
    public init?(parsing text: String) {
        switch text {
        case "cpu": self = .cpu
        case "auto": self = .auto
        case "cuda": self = .cuda(0)
        default:
            guard text.hasPrefix("cuda:"), let n = Int(text.dropFirst(5)), n >= 0 else { return nil }
            self = .cuda(n)
        }
    }

    /// The spelling `init(parsing:)` reads: "cpu", "cuda:0", "auto".
    public var rawValue: String {
        switch self {
        case .cpu: return "cpu"
        case .cuda(let n): return "cuda:\(n)"
        case .auto: return "auto"
        }
    }

    /// `rawValue`.
    public var description: String { rawValue }

    /// The precisions of the weight products this device offers (`auto`: those of the device it
    /// resolves to; listed here as the CPU's, its fallback).
    public var precisions: [Precision] {
        switch self {
        case .cpu, .auto: return [.fp32, .bf16, .int8]
        case .cuda: return [.fp32, .tf32, .bf16]
        }
    }

    /// The concrete device: `auto` becomes `cuda:0` when `probe` found a usable GPU and this
    /// build's CUDA encoder is verified (`CUDABackend.isVerified`), else `cpu`;
    /// `cpu` and `cuda:N` stay as they are (a `cuda:N` that cannot run fails when the backend is
    /// built, with the probe's reason).
    public func resolved(probe: @autoclosure () -> CUDAProbe) -> ComputeDevice {
        guard case .auto = self else { return self }
        return probe().unusable == nil && CUDABackend.isVerified ? .cuda(0) : .cpu
    }

    /// Encodes as its spelling (`"cpu"`, `"cuda:0"`, `"auto"`).
    public func encode(to encoder: any Swift.Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    /// Decodes a spelling `init(parsing:)` accepts.
    public init(from decoder: any Swift.Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let device = ComputeDevice(parsing: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                                                    debugDescription: "unknown device '\(text)': use \(Self.spellings)"))
        }
        self = device
    }
}

/// The model's forward work for a batch of utterances: features in, encoder frames or decoded
/// tokens out. Implementations are immutable and safe to call from several threads at once.
public protocol InferenceBackend: Sendable {
    /// The device the work runs on.
    var device: ComputeDevice { get }
    /// The encoder output of each utterance, [T'ᵢ, d] on the host, T'ᵢ from its valid frames
    /// (stage access for tests and `vani bench`).
    func encode(_ batch: [Features]) -> [Tensor]
    /// Encoder and decoder for each utterance with one language's decoder: every utterance
    /// gets exactly the tokens it gets alone.
    func recognize(_ batch: [Features], decoder: Decoder) -> [DecodedTokens]
}

/// The CPU backend: a batch through `ConformerEncoder.forward(batch:)` (the weight products run
/// once over the frames of all its utterances, each utterance's output bit for bit its own run)
/// and the chosen greedy decoder per utterance, on `threads` threads of Vani's pool.
public struct CPUBackend: InferenceBackend {
    /// The loaded network.
    public let model: ConformerASRModel
    /// Threads one forward pass uses (0: the process setting, every core unless
    /// `BLAS.setThreads` changed it). Applied per call, never process-wide.
    public let threads: Int

    /// A backend over `model` using `threads` threads per forward pass (0: the process setting).
    public init(model: ConformerASRModel, threads: Int = 0) {
        self.model = model
        self.threads = max(0, threads)
    }

    /// Always `.cpu`.
    public var device: ComputeDevice { .cpu }

    /// See `InferenceBackend.encode`.
    public func encode(_ batch: [Features]) -> [Tensor] {
        withThreads { encodeBatch(batch) }
    }

    /// See `InferenceBackend.recognize`.
    public func recognize(_ batch: [Features], decoder: Decoder) -> [DecodedTokens] {
        withThreads {
            encodeBatch(batch).map { encoded in                                    // (T', d) each
                decoder.decode(encoded.pointer, frames: encoded.shape[0])
            }
        }
    }

    private func encodeBatch(_ batch: [Features]) -> [Tensor] {
        // A Features value always holds frames × bands values, at least one frame; the arrays
        // stay alive (and their storage in place) for the whole call.
        let buffers = batch.map { UnsafeMutableBufferPointer<Float>.allocate(capacity: $0.values.count) }
        defer { buffers.forEach { $0.deallocate() } }
        for (buffer, features) in zip(buffers, batch) { _ = buffer.initialize(from: features.values) }
        let items = zip(buffers, batch).map { buffer, features in
            ConformerEncoder.BatchItem(features: UnsafePointer(buffer.baseAddress!), frames: features.frames,
                                       validFrames: features.validFrames)
        }
        return model.encoder.forward(batch: items)
    }

    private func withThreads<T>(_ body: () -> T) -> T {
        threads > 0 ? Parallel.withThreads(threads, body) : body()
    }
}
