// Owns one model: loads it once (at start-up with --preload, else on the first request, as the
// MLflow service did), tells /health how that went, and reloads it from disk without downtime
// (SIGHUP or POST /v1/models/{name}/reload): the new weights load beside the old ones, and only a
// successful load replaces them; requests already holding the old engine finish on it.

import ASR
import Crypto
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

/// A loaded model as requests use it: the engine and what identifies its weights.
public struct LoadedModel: Sendable {
    /// The engine; a request keeps this reference until it is done, whatever reloads meanwhile.
    public let engine: any TranscriptionEngine
    /// `sha256:<hex>` of the weights file, when the host has a file.
    public let digest: String?
    /// 1 for the first load, one more for each successful reload.
    public let generation: Int
    /// Seconds the load took (reading and checking the file, and hashing it).
    public let loadSeconds: Double
    /// The host's name (what clients select it by).
    public let name: String

    /// What the response cache keys on: the file's digest, else the name and generation (so that
    /// a reloaded engine without a file never answers from its predecessor's entries).
    var identity: String { digest ?? "\(name)#\(generation)" }
}

/// Loads the engine once and hands it to worker threads; reloads it on demand.
///
/// `engine()` blocks while a first load is in progress, so it is called only on worker threads.
/// A failed first load is retried by the next request that needs the model. A reload runs beside
/// the engine in service and replaces it only when it succeeds.
public final class ModelHost: @unchecked Sendable {
    /// Loads the model; runs on a worker thread, the preload thread or a reload thread.
    public typealias Loader = @Sendable () throws(RecognizerError) -> any TranscriptionEngine
    /// Told of every load and reload: the host, the seconds it took, and whether it worked.
    typealias LoadObserver = @Sendable (_ name: String, _ seconds: Double, _ reload: Bool, _ succeeded: Bool) -> Void

    /// The name clients select the model by (`model` field); before `--model NAME=FILE` existed,
    /// the weights file's name without extension.
    public let name: String
    /// The weights file, hashed at each load for `X-Model-Digest`; nil for engines built in memory.
    public let file: URL?
    private let loader: Loader
    private let logger: Logger
    // Guards everything below; `wait()` lets callers sleep during a first load.
    private let condition = NSCondition()
    private var state: ModelState = .idle
    private var loaded: LoadedModel?
    private var failure: RecognizerError?
    private var reloadFailure: String?
    private var observer: LoadObserver?
    // One reload at a time (a second one waits for the first, then loads again).
    private let reloadLock = NSLock()

    /// A host that loads with `loader` when first asked (or on `preload()`); with `file`, each
    /// load also hashes the file (SHA-256, streamed) for the responses' `X-Model-Digest`.
    public init(name: String, file: URL? = nil, logger: Logger, loader: @escaping Loader) {
        self.name = name
        self.file = file
        self.loader = loader
        self.logger = logger
    }

    /// A host around an engine that is already loaded (tests, embedding).
    public convenience init(engine: any TranscriptionEngine, name: String? = nil, logger: Logger) {
        self.init(name: name ?? engine.info.name, logger: logger, loader: { engine })
        condition.lock()
        state = .ready
        loaded = LoadedModel(engine: engine, digest: nil, generation: 1, loadSeconds: 0, name: self.name)
        condition.unlock()
    }

    /// The current state and, once loaded, the model's description.
    public var snapshot: (state: ModelState, info: ModelInfo?) {
        condition.lock(); defer { condition.unlock() }
        return (state, loaded?.engine.info)
    }

    /// Everything `/health` says about this model.
    var details: (state: ModelState, loaded: LoadedModel?, reloadFailure: String?) {
        condition.lock(); defer { condition.unlock() }
        return (state, loaded, reloadFailure)
    }

    func observe(_ observer: @escaping LoadObserver) {
        condition.lock(); defer { condition.unlock() }
        self.observer = observer
    }

    /// Starts loading on a thread of its own and returns at once (`--preload`); `/health` says
    /// `loading` from the moment this returns.
    public func preload() {
        condition.lock()
        guard loaded == nil, state != .loading else { condition.unlock(); return }
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
        try current().engine
    }

    /// The loaded model with its digest, loading it first if needed. Blocks; call from a worker
    /// thread.
    /// - Throws: the load's `RecognizerError`.
    public func current() throws(RecognizerError) -> LoadedModel {
        condition.lock()
        while state == .loading { condition.wait() }
        if let loaded {
            condition.unlock()
            return loaded
        }
        state = .loading
        condition.unlock()
        return try load()
    }

    /// Loads the weights again from disk and, if that works, serves them from now on; requests
    /// holding the old engine finish on it. If it fails the old model stays in service and the
    /// error says why. A model never loaded is simply loaded. Blocks; never call it on an event
    /// loop.
    /// - Throws: the new load's `RecognizerError`.
    @discardableResult
    public func reload() throws(RecognizerError) -> LoadedModel {
        reloadLock.lock(); defer { reloadLock.unlock() }
        condition.lock()
        while state == .loading { condition.wait() }
        guard let old = loaded else {
            state = .loading
            condition.unlock()
            return try load()
        }
        let observer = self.observer
        condition.unlock()

        logger.info("reloading model", metadata: ["model": "\(name)", "generation": "\(old.generation)"])
        let started = ContinuousClock.now
        let result = loadOnce(generation: old.generation + 1, started: started)
        let seconds = (ContinuousClock.now - started).seconds
        observer?(name, seconds, true, (try? result.get()) != nil)
        condition.lock()
        defer { condition.unlock() }
        switch result {
        case .success(let model):
            loaded = model
            reloadFailure = nil
            logger.info("model reloaded", metadata: [
                "model": "\(name)", "seconds": "\(String(format: "%.2f", seconds))",
                "digest": "\(model.digest ?? "none")", "previous_digest": "\(old.digest ?? "none")"])
            return model
        case .failure(let error):
            reloadFailure = error.description
            logger.error("model reload failed; the previous weights stay in service", metadata: [
                "model": "\(name)", "error": "\(error)", "digest": "\(old.digest ?? "none")"])
            throw error
        }
    }

    /// Runs the loader and hashes the file: one attempt, touching no state.
    private func loadOnce(generation: Int, started: ContinuousClock.Instant) -> Result<LoadedModel, RecognizerError> {
        do throws(RecognizerError) {
            let engine = try loader()
            var digest: String?
            if let file {
                do {
                    digest = try FileDigest.sha256(of: file)
                } catch {
                    throw .invalidModel("could not read \(file.lastPathComponent) to hash it (\(error.localizedDescription))")
                }
            }
            return .success(LoadedModel(engine: engine, digest: digest, generation: generation,
                                        loadSeconds: (ContinuousClock.now - started).seconds, name: name))
        } catch {
            return .failure(error)
        }
    }

    /// Runs a first load (the caller has set `.loading`) and wakes everyone waiting for it.
    private func load() throws(RecognizerError) -> LoadedModel {
        logger.info("loading model", metadata: ["model": "\(name)"])
        let started = ContinuousClock.now
        condition.lock()
        let generation = (loaded?.generation ?? 0) + 1
        let observer = self.observer
        condition.unlock()
        let result = loadOnce(generation: generation, started: started)
        let seconds = (ContinuousClock.now - started).seconds
        observer?(name, seconds, false, (try? result.get()) != nil)

        condition.lock()
        defer { condition.broadcast(); condition.unlock() }
        switch result {
        case .success(let model):
            loaded = model
            failure = nil
            state = .ready
            logger.info("model loaded", metadata: [
                "model": "\(model.engine.info.name)", "seconds": "\(String(format: "%.2f", seconds))",
                "languages": "\(model.engine.info.languages.count)", "parameters": "\(model.engine.info.parameters)",
                "digest": "\(model.digest ?? "none")",
                "precision": "\(model.engine.info.precision?.rawValue ?? "fp32")"])
            return model
        case .failure(let error):
            failure = error
            state = .failed
            logger.error("model load failed", metadata: ["model": "\(name)", "error": "\(error)"])
            throw error
        }
    }
}

/// SHA-256 of a file, read in pieces (a 2.4 GB model never sits in memory twice).
enum FileDigest {
    /// `sha256:<64 hex digits>` of the file's bytes. Blocks for as long as reading the file takes.
    static func sha256(of url: URL) throws -> String {
        let handle = try FileHandle(forReadingFrom: url)
        defer { try? handle.close() }
        var hasher = SHA256()
        while let chunk = try handle.read(upToCount: 8 << 20), !chunk.isEmpty {
            hasher.update(data: chunk)
        }
        return "sha256:" + hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }
}

extension Duration {
    /// The duration in seconds.
    var seconds: Double {
        let (s, attoseconds) = components
        return Double(s) + Double(attoseconds) * 1e-18
    }
}
