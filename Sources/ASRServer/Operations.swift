// The operations side of the routes: request defaults from the command line, the headers that
// say which weights answered and whether the cache did, the client identity rate limits count
// against, model reload over HTTP, and the /metrics page.

import ASR
import Foundation
import Hummingbird

extension ASRService {
    /// What every request inherits from the command line (`--default-language`).
    var requestDefaults: RequestDefaults {
        RequestDefaults(language: configuration.defaultLanguage.map(RequestFields.normalizedLanguage))
    }

    /// `reply` with `X-Model-Digest` (the weights that answered, when they came from a file) and,
    /// for one transcription, `X-Cache: HIT|MISS`.
    func tagged(_ reply: Reply, model: LoadedModel?, cache: CacheStatus? = nil) -> Reply {
        var reply = reply
        if let digest = model?.digest { reply.headers["X-Model-Digest"] = digest }
        if let cache { reply.headers["X-Cache"] = cache.rawValue }
        return reply
    }

    /// Whom rate limits count a request against: its API key's name, else the client's address
    /// (with `--trust-forwarded-for`, the last `X-Forwarded-For` entry: the one the proxy added).
    func client(of request: Request, _ context: VaniRequestContext) -> String {
        if let name = context.apiKeyName { return "key:\(name)" }
        if configuration.trustForwardedFor,
           let last = request.headers[values: .forwardedFor].joined(separator: ",").split(separator: ",").last?
               .trimmingCharacters(in: .whitespaces), !last.isEmpty {
            return "addr:\(last)"
        }
        return "addr:\(context.peerAddress ?? "local")"
    }

    // MARK: - POST /v1/models/{name}/reload

    /// Reloads one model from disk on a thread of its own; requests in flight finish on the old
    /// weights. Needs an API key configured (and presented, like every non-probe endpoint): with
    /// no key, SIGHUP is the way.
    func reloadModel(_ name: String, context: VaniRequestContext) async throws(APIError) -> Reply {
        guard !configuration.apiKeys.isEmpty else {
            throw APIError(.permissionDenied, status: .forbidden,
                           "reloading over HTTP needs --api-key or --api-keys-file; without a key, send the process SIGHUP")
        }
        guard let host = models.host(named: name) else { throw APIError.unknownModel(name, available: models.names) }
        let previous = host.details.loaded
        switch await reloadOffTheLoop(host) {
        case .success(let model):
            context.logger.notice("model reloaded over HTTP", metadata: ["model": "\(name)", "digest": "\(model.digest ?? "none")"])
            return tagged(.json(ReloadResponse(id: name, status: "reloaded", digest: model.digest,
                                               previous_digest: previous?.digest, generation: model.generation,
                                               load_seconds: (model.loadSeconds * 1000).rounded() / 1000)),
                          model: model)
        case .failure(let error):
            let still = previous.map { "; still serving the previous weights (\($0.digest ?? "generation \($0.generation)"))" }
                ?? "; the model is not loaded"
            throw APIError(.internalError, status: .internalServerError,
                           "reload of '\(name)' failed: \(error.description)\(still)")
        }
    }

    // MARK: - GET /metrics

    /// The Prometheus text exposition of this service's registry.
    func metricsPage() -> Response {
        let running = pool.running
        let text = metrics.render(running: running, waiting: max(0, pool.load - running), cache: cache.usage)
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                        body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}

/// The answer to a successful reload.
struct ReloadResponse: Encodable, Sendable {
    var id: String
    var status: String
    var digest: String?
    var previous_digest: String?
    var generation: Int
    var load_seconds: Double
}

extension HeaderName {
    static let forwardedFor = HeaderName("X-Forwarded-For")!
}
