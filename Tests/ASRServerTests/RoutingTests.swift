// The server's shape: the 404/405 table read back from the registered routes, the OpenAI form
// read by the JSON field reader (aliases included), and the pool's own errors mapped in one place.

import ASR
@testable import ASRServer
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

@Suite struct RoutingTests {
    @Test func theRouteTableIsWhatTheRouterRegistered() {
        let service = makeService { $0.webUI = false }  // the page's routes: WebUITests
        let router = service.router()
        let registered = Set(router.routes.map { "\($0.method.rawValue) \($0.path)" })
        #expect(registered == ["GET /health", "GET /ping", "GET /version", "GET /metrics", "POST /asr", "POST /invocations",
                               "POST /v1/audio/transcriptions", "GET /v1/models", "GET /v1/models/{name}",
                               "POST /v1/models/{name}/reload"])
        #expect(service.routeTable.paths == ["/asr", "/health", "/invocations", "/metrics", "/ping", "/v1/audio/transcriptions",
                                             "/v1/models", "/v1/models/{name}", "/v1/models/{name}/reload", "/version"])
        #expect(service.routeTable.allowed("/health") == ["GET", "HEAD"], "GET routes answer HEAD too")
        #expect(service.routeTable.allowed("/asr") == ["POST"])
        #expect(service.routeTable.allowed("/nope") == nil)
        // Paths with parameters match their route, for 405 and the metrics' endpoint label.
        #expect(service.routeTable.allowed("/v1/models/x/reload") == ["POST"])
        #expect(service.routeTable.pattern(for: "/v1/models/x") == "/v1/models/{name}")
        #expect(service.routeTable.pattern(for: "/v1/models/x/y") == nil)
    }

    @Test func notFoundAndMethodNotAllowedComeFromTheTable() async throws {
        try await makeService().application().test(.router) { client in
            let wrongMethod = try await client.execute(uri: "/v1/models", method: .post)
            expectError(wrongMethod, .methodNotAllowed, "METHOD_NOT_ALLOWED", containing: "use GET or HEAD")
            #expect(wrongMethod.headers[header("Allow")] == "GET, HEAD")
            let missing = try await client.execute(uri: "/v2/asr", method: .post)
            expectError(missing, .notFound, "ENDPOINT_NOT_FOUND")
            let head = try await client.execute(uri: "/health", method: .head)
            #expect(head.status == .ok)
        }
    }

    @Test func theOpenAIFormTakesTheSameAliasesAsJSON() async throws {
        let engine = FakeEngine()
        try await makeService(engine: engine).application().test(.router) { client in
            var form = MultipartBody()
            form.file("file", filename: "clip.wav", makeWAV(seconds: 1))
            form.field("lang", " TA ")            // alias and normalisation, as in a JSON body
            form.field("decoder", "rnn-t")        // alias and spelling, as in a JSON body
            form.field("response_format", "verbose_json")
            let response = try await client.execute(uri: "/v1/audio/transcriptions", method: .post,
                                                    headers: form.headers, body: form.body)
            #expect(response.status == .ok, "\(response.text)")
            #expect(response.json["language_code"] as? String == "ta")
            #expect(response.json["language"] as? String == "tamil")
            var bad = MultipartBody()
            bad.file("file", filename: "clip.wav", makeWAV(seconds: 1))
            bad.field("language", "hi")
            bad.field("decoding", "beam")
            let refused = try await client.execute(uri: "/v1/audio/transcriptions", method: .post,
                                                   headers: bad.headers, body: bad.body)
            expectError(refused, .badRequest, "INVALID_PARAMETER_VALUE", containing: "'ctc' or 'rnnt'")
            var none = MultipartBody()
            none.file("file", filename: "clip.wav", makeWAV(seconds: 1))
            let missing = try await client.execute(uri: "/v1/audio/transcriptions", method: .post,
                                                   headers: none.headers, body: none.body)
            expectError(missing, .badRequest, "INVALID_PARAMETER_VALUE", containing: "'language' or 'lang'")
        }
    }

    @Test func poolRejectionsAndAudioErrorsAreMappedByCase() {
        #expect(APIError(.queueFull(retryAfter: 3)).status == .serviceUnavailable)
        #expect(APIError(.queueFull(retryAfter: 3)).headers["Retry-After"] == "3")
        #expect(APIError(.deadlineExceeded(seconds: 5)).code == .deadlineExceeded)
        #expect(APIError(.cancelled).status == .badRequest)
        #expect(APIError(.ticketReused).status == .internalServerError)
        let short = APIError.from(.audio(.tooShort(samples: 10, minimum: 400)))
        #expect(short?.status == .unprocessableContent)
        #expect(short?.message == AudioError.tooShort(samples: 10, minimum: 400).description)
        let garbage = APIError.from(.audio(.notAudio(detail: "x")))
        #expect(garbage?.status == .unprocessableContent)
        #expect(garbage?.message.hasPrefix("the audio could not be decoded:") == true)
        #expect(APIError.from(.unknownLanguage("xx", available: ["hi"]))?.status == .badRequest)
        #expect(APIError.from(.invalidModel("bad")) == nil, "the server's fault: logged, answered without details")
    }
}
