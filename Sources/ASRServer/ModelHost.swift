// Owns the model: loads it once (at start-up with --preload, else on the first request, as the
// MLflow service did) and tells /health how that went.

import ASR
import Foundation
import Logging

/// Where the model stands, for `/health`.
public enum ModelState: String, Sendable, Codable {
    /// Not loaded yet; the first request loads it (lazy mode).
    case idle
    case loading
    case ready
    /// The last load failed; the next request tries again.
    case failed
}

/// Loads the engine once and hands it to worker threads.
///
/// `engine()` blocks while a load is in progress, so it is called only on worker threads.
/// A failed load is retried by the next request that needs the model.
public final class ModelHost: @unchecked Sendable {
    /// Loads the model; runs on a worker thread (or the preload thread).
    public typealias Loader = @Sendable () throws(RecognizerError) -> any TranscriptionEngine

    /// Name reported before the model is loaded (the weights file's name without extension).
    public let name: String
    private let loader: Loader
    private let logger: Logger
    // Guards `state`, `engineValue` and `failure`; `wait()` lets callers sleep during a load.
    private let condition = NSCondition()
    private var state: ModelState = .idle
    private var engineValue: (any TranscriptionEngine)?
    private var failure: RecognizerError?

    /// A host that loads with `loader` when first asked (or on `preload()`).
    public init(name: String, logger: Logger, loader: @escaping Loader) {
        self.name = name
        self.loader = loader
        self.logger = logger
    }

    /// A host around an engine that is already loaded (tests, embedding).
    public convenience init(engine: any TranscriptionEngine, logger: Logger) {
        self.init(name: engine.info.name, logger: logger, loader: { engine })
        condition.lock()
        state = .ready
        engineValue = engine
        condition.unlock()
    }

    /// The current state and, once loaded, the model's description.
    public var snapshot: (state: ModelState, info: ModelInfo?) {
        condition.lock(); defer { condition.unlock() }
        return (state, engineValue?.info)
    }

    /// Starts loading on a thread of its own and returns at once (`--preload`); `/health` says
    /// `loading` from the moment this returns.
    public func preload() {
        condition.lock()
        guard engineValue == nil, state != .loading else { condition.unlock(); return }
        state = .loading
        condition.unlock()
        let thread = Thread { [self] in _ = try? self.load() }
        thread.name = "vani-model-load"
        thread.stackSize = 8 << 20
        thread.start()
    }

    /// The loaded engine, loading it first if needed. Blocks; call from a worker thread.
    /// - Throws: the load's `RecognizerError` (`.modelNotFound`, `.invalidModel`).
    public func engine() throws(RecognizerError) -> any TranscriptionEngine {
        condition.lock()
        while state == .loading { condition.wait() }
        if let engineValue {
            condition.unlock()
            return engineValue
        }
        state = .loading
        condition.unlock()
        return try load()
    }

    /// Runs the loader (the caller has set `.loading`) and wakes everyone waiting for it.
    private func load() throws(RecognizerError) -> any TranscriptionEngine {
        logger.info("loading model", metadata: ["model": "\(name)"])
        let started = ContinuousClock.now
        let result: Result<any TranscriptionEngine, RecognizerError>
        do throws(RecognizerError) {
            result = .success(try loader())
        } catch {
            result = .failure(error)
        }
        let seconds = (ContinuousClock.now - started).seconds

        condition.lock()
        defer { condition.broadcast(); condition.unlock() }
        switch result {
        case .success(let engine):
            engineValue = engine
            failure = nil
            state = .ready
            logger.info("model loaded", metadata: [
                "model": "\(engine.info.name)", "seconds": "\(String(format: "%.2f", seconds))",
                "languages": "\(engine.info.languages.count)", "parameters": "\(engine.info.parameters)",
                "precision": "\(engine.info.precision?.rawValue ?? "fp32")"])
            return engine
        case .failure(let error):
            failure = error
            state = .failed
            logger.error("model load failed", metadata: ["model": "\(name)", "error": "\(error)"])
            throw error
        }
    }
}

extension Duration {
    /// The duration in seconds.
    var seconds: Double {
        let (s, attoseconds) = components
        return Double(s) + Double(attoseconds) * 1e-18
    }
}
