// Several models, or versions of one, in one server: named hosts (each a ModelHost with its own
// lazy/preload/retry and reload), one of them the default. Requests pick one with `model`.

import ASR
import Foundation
import Logging

/// The models a service holds, by name, in the order given, with one default.
public final class ModelRegistry: Sendable {
    /// Every host, in the order given (`--model` order).
    public let hosts: [ModelHost]
    /// The model used when a request names none.
    public let defaultHost: ModelHost
    private let byName: [String: ModelHost]

    /// A registry of `hosts` (names must be unique and there must be at least one); the default is
    /// `defaultName`, else the first.
    /// - Precondition: names unique, `defaultName` (when given) among them.
    public init(hosts: [ModelHost], defaultName: String? = nil) {
        precondition(!hosts.isEmpty, "a model registry needs at least one model")
        var byName: [String: ModelHost] = [:]
        for host in hosts {
            precondition(byName[host.name] == nil, "two models are named '\(host.name)'")
            byName[host.name] = host
        }
        self.hosts = hosts
        self.byName = byName
        if let defaultName {
            guard let host = byName[defaultName] else {
                preconditionFailure("default model '\(defaultName)' is not among \(hosts.map(\.name))")
            }
            self.defaultHost = host
        } else {
            self.defaultHost = hosts[0]
        }
    }

    /// A registry of one model.
    public convenience init(_ host: ModelHost) { self.init(hosts: [host]) }

    /// The names clients may send, in order.
    public var names: [String] { hosts.map(\.name) }

    /// The host called `name`, nil when there is none.
    public func host(named name: String) -> ModelHost? { byName[name] }

    /// Reloads every model that has been loaded (or failed), one after another, logging each
    /// outcome (SIGHUP). Blocks; run it on a thread of its own.
    public func reloadAll(logger: Logger) {
        for host in hosts where host.snapshot.state != .idle {
            do { try host.reload() } catch {
                logger.error("reload failed; the previous weights stay in service",
                             metadata: ["model": "\(host.name)", "error": "\(error)"])
            }
        }
    }
}

extension ASRService {
    /// The host a request's `model` names. `nil` (not sent, or empty) means the default. An
    /// unknown name is 404 `RESOURCE_DOES_NOT_EXIST` listing what exists, unless `lenient`
    /// (OpenAI clients send names like `whisper-1`): then it means the default.
    func modelHost(_ name: String?, lenient: Bool) throws(APIError) -> ModelHost {
        guard let name, !name.isEmpty else { return models.defaultHost }
        if let host = models.host(named: name) { return host }
        if lenient && !configuration.strictModelNames { return models.defaultHost }
        throw APIError.unknownModel(name, available: models.names)
    }

    /// Runs a blocking reload on a thread of its own, so no event loop and no task of Swift's
    /// pool waits on it.
    func reloadOffTheLoop(_ host: ModelHost) async -> Result<LoadedModel, RecognizerError> {
        await withCheckedContinuation { continuation in
            let thread = Thread {
                do throws(RecognizerError) {
                    continuation.resume(returning: .success(try host.reload()))
                } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
            thread.name = "vani-model-reload"
            thread.stackSize = 8 << 20
            thread.start()
        }
    }
}

extension APIError {
    static func unknownModel(_ name: String, available: [String]) -> APIError {
        APIError(.resourceDoesNotExist, status: .notFound,
                 "no model named '\(clip(name))': this server has \(available.joined(separator: ", "))")
    }
}

extension ASRService {
    /// The one model a batch's parsed items name (each item may carry `model`, inherited from the
    /// top level or `params`); items naming different models are refused: one model per request.
    func modelHost(for items: [ParsedItem]) throws(APIError) -> ModelHost {
        var chosen: ModelHost?
        for case .success(let item) in items {
            let host = try modelHost(item.model, lenient: false)
            if let chosen, chosen !== host {
                throw APIError.invalid("the items name different models ('\(chosen.name)' and '\(host.name)'): send one request per model")
            }
            chosen = host
        }
        return chosen ?? models.defaultHost
    }
}
