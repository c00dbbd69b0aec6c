// The health family: `/health` (readiness: are the models able to answer), `/ping` (liveness),
// `/version` and `/metrics` (Prometheus).

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
        router.get("/metrics") { _, _ in service.metricsPage() }
    }
}

extension ASRService {
    /// 200 when every model can answer (loaded, or not yet asked for in lazy mode), else 503:
    /// `loading` while one loads, `error` after one failed. `model` is the default model, `models`
    /// all of them.
    func health() -> Response {
        let (state, info) = host.snapshot
        let entries = models.hosts.map(healthEntry)
        let states = Set(entries.map(\.state))
        let status = states.contains(ModelState.failed.rawValue) ? "error"
            : states.contains(ModelState.loading.rawValue) ? "loading" : "ok"
        let model = HealthResponse.Model(
            name: info?.name ?? host.name, state: state.rawValue, languages: info?.languages,
            decoders: info?.decoders.map(\.rawValue), parameters: info?.parameters, sample_rate: info?.sampleRate,
            precision: info?.precision?.rawValue)
        let body = HealthResponse(
            status: status, model: model, models: entries, max_audio_seconds: configuration.maxAudioSeconds,
            uptime_s: ((ContinuousClock.now - started).seconds * 10).rounded() / 10,
            version: Self.version,
            queue: .init(in_flight: pool.load, workers: pool.workers, capacity: pool.workers + pool.queueCapacity),
            error: status == "error" ? "a model failed to load; the server log has the reason" : nil)
        var reply = Reply.json(body)
        // Probes read the status code: only a model that can answer is healthy.
        reply.status = status == "ok" ? .ok : .serviceUnavailable
        return reply.response
    }
}

extension ASRService {
    /// One model as `/health` lists it.
    func healthEntry(_ host: ModelHost) -> HealthResponse.Entry {
        let (state, loaded, reloadFailure) = host.details
        let info = loaded?.engine.info
        return HealthResponse.Entry(
            id: host.name, default: host === models.defaultHost, state: state.rawValue, name: info?.name,
            digest: loaded?.digest, file: host.file?.lastPathComponent, generation: loaded?.generation,
            load_seconds: loaded.map { ($0.loadSeconds * 1000).rounded() / 1000 }, languages: info?.languages,
            decoders: info?.decoders.map(\.rawValue), parameters: info?.parameters, reload_error: reloadFailure)
    }
}
