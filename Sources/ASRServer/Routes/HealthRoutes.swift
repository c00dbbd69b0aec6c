// The health family: `/health` (readiness: is the model able to answer), `/ping` (liveness)
// and `/version`.

import ASR
import Foundation
import Hummingbird

/// Probes and the version.
struct HealthRoutes {
    let service: ASRService

    func addRoutes(to router: some RouterMethods<VaniRequestContext>) {
        router.get("/ping") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain"], body: .init(byteBuffer: ByteBuffer(string: "\n")))
        }
        router.get("/health") { _, _ in service.health() }
        router.get("/version") { _, _ in Reply.text(ASRService.version).response }
    }
}

extension ASRService {
    /// 200 when the model can answer (loaded, or not yet asked for in lazy mode), else 503.
    func health() -> Response {
        let (state, info) = host.snapshot
        let status: String
        switch state {
        case .idle, .ready: status = "ok"
        case .loading: status = "loading"
        case .failed: status = "error"
        }
        let model = HealthResponse.Model(
            name: info?.name ?? host.name, state: state.rawValue, languages: info?.languages,
            decoders: info?.decoders.map(\.rawValue), parameters: info?.parameters, sample_rate: info?.sampleRate,
            precision: info?.precision?.rawValue)
        let body = HealthResponse(
            status: status, model: model,
            uptime_s: ((ContinuousClock.now - started).seconds * 10).rounded() / 10,
            version: Self.version,
            queue: .init(in_flight: pool.load, workers: pool.workers, capacity: pool.workers + pool.queueCapacity),
            error: state == .failed ? "the model failed to load; the server log has the reason" : nil)
        var reply = Reply.json(body)
        // Probes read the status code: only a model that can answer is healthy.
        reply.status = status == "ok" ? .ok : .serviceUnavailable
        return reply.response
    }
}
