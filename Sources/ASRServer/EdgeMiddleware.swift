// The outermost layer: counts every answer for /metrics (by endpoint and status, with its
// time) and, with `--cors-origin`, answers CORS preflights and marks answers for browsers. It
// sits outside the front middleware, so it sees the final status of every request, errors
// included, and preflights pass without an API key (browsers send none).

import Foundation
import Hummingbird

struct EdgeMiddleware: RouterMiddleware {
    typealias Context = VaniRequestContext
    let service: ASRService

    /// Headers a browser may send, and may read back.
    static let allowedHeaders = "Authorization, Content-Type, X-API-Key, X-Request-Id"
    static let exposedHeaders = "X-Request-Id, X-Cache, X-Model-Digest, Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset"

    func handle(_ request: Request, context: Context,
                next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        let origin = request.headers[.origin]
        let allowedOrigin = origin.flatMap(allowed)
        var response: Response
        if let allowedOrigin, request.method == .options, request.headers[.accessControlRequestMethod] != nil {
            response = preflight(allowedOrigin, for: request)
        } else {
            response = try await next(request, context)
        }
        if let allowedOrigin {
            response.headers[.accessControlAllowOrigin] = allowedOrigin
            response.headers[.accessControlExposeHeaders] = Self.exposedHeaders
            if allowedOrigin != "*" { response.headers[values: .vary].append("Origin") }
        }
        let endpoint = service.routeTable.pattern(for: request.uri.path) ?? "other"
        service.metrics.request(endpoint: endpoint, code: Int(response.status.code),
                                seconds: (ContinuousClock.now - started).seconds)
        return response
    }

    /// The `Access-Control-Allow-Origin` value for `origin`, nil when it is not allowed (or
    /// CORS is off).
    func allowed(_ origin: String) -> String? {
        let origins = service.configuration.corsOrigins
        if origins.contains("*") { return "*" }
        return origins.contains(origin) ? origin : nil
    }

    /// 204 with what the browser asked to use, when the path exists; the real request then meets
    /// the API key and everything else as usual.
    func preflight(_ origin: String, for request: Request) -> Response {
        var headers = HTTPFields()
        let methods = service.routeTable.allowed(request.uri.path) ?? ["GET", "HEAD", "POST"]
        headers[.accessControlAllowMethods] = (methods + ["OPTIONS"]).joined(separator: ", ")
        headers[.accessControlAllowHeaders] = Self.allowedHeaders
        headers[.accessControlMaxAge] = "600"
        headers[.requestID] = FrontMiddleware.requestID(from: request)
        return Response(status: .noContent, headers: headers)
    }
}
