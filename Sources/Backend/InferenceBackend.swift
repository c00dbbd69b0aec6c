// The device seam: the model's forward work for a batch of utterances, behind one protocol.
// The CPU backend runs today's code; a GPU backend plugs in here, keeping encoder, CTC and
// RNN-T on the device and handing the host only tokens and their frames. The backend is chosen
// where the model is built (`RecognizerOptions.device`), like sherpa-onnx's `provider`.

import ConformerModel
import Decoding
import Frontend
import TensorModule

/// Where a model's forward work runs.
public enum ComputeDevice: String, Sendable, CaseIterable, Codable {
    /// The host CPU: OpenBLAS, Vani's kernels and its thread pool.
    case cpu

    /// The precisions of the weight products this device offers.
    public var precisions: [Precision] {
        switch self {
        case .cpu: return [.fp32, .bf16, .int8]
        }
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
