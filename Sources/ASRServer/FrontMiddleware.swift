// In front of every route: a request id, the API key, MLflow-shaped errors and the access log.

import Foundation
import Hummingbird
import Logging

struct FrontMiddleware: RouterMiddleware {
    typealias Context = VaniRequestContext
    let service: ASRService

    func handle(_ request: Request, context: Context,
                next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        var context = context
        let id = Self.requestID(from: request)
        context.requestID = id
        context.logger[metadataKey: "request_id"] = "\(id)"
        let path = request.uri.path

        var response: Response
        do {
            let keys = service.configuration.apiKeys
            if !keys.isEmpty, service.requiresKey(path) {
                guard let key = Self.presentedKey(request, among: keys) else { throw APIError.unauthenticated }
                context.apiKeyName = key.name
                context.logger[metadataKey: "api_key"] = "\(key.name)"
            }
            context.client = service.client(of: request, context)
            response = try await next(request, context)
        } catch {
            let apiError = Self.apiError(for: error, request: request, requestID: id, routes: service.routeTable,
                                         logger: context.logger)
            response = apiError.response(requestID: id)
            let level: Logger.Level = apiError.status.code >= 500 ? .error : .notice
            context.logger.log(level: apiError.code == .resourceExhausted && apiError.status == .serviceUnavailable ? .warning : level,
                               "request failed", metadata: [
                "method": "\(request.method.rawValue)", "path": "\(path)", "status": "\(apiError.status.code)",
                "error_code": "\(apiError.code.rawValue)", "message": "\(apiError.message)"])
        }
        response.headers[.requestID] = id
        let ms = (ContinuousClock.now - started).seconds * 1000
        let quiet = ASRService.openPaths.contains(path)
        context.logger.log(level: quiet ? .debug : .info, "request", metadata: [
            "method": "\(request.method.rawValue)", "path": "\(path)", "status": "\(response.status.code)",
            "ms": "\(String(format: "%.1f", ms))"])
        return response
    }

    /// Turns anything thrown below into the client's error. Unknown errors are logged here in
    /// full and answered with a bare 500.
    static func apiError(for error: any Error, request: Request, requestID: String, routes: RouteTable,
                         logger: Logger) -> APIError {
        switch error {
        case let apiError as APIError:
            return apiError
        case let rejection as InferencePool.Rejection:
            return APIError(rejection)
        case let httpError as any HTTPResponseError:
            let path = request.uri.path
            switch httpError.status {
            case .notFound:
                if let allowed = routes.allowed(path) {
                    return .methodNotAllowed(request.method.rawValue, path: path, allowed: allowed)
                }
                return .notFound(path)
            case .contentTooLarge:
                return APIError(.resourceExhausted, status: .contentTooLarge, "the request body is too large")
            case let status where status.code < 500:
                return APIError(.badRequest, status: status, "bad request (\(status.reasonPhrase))")
            default:
                logger.error("unexpected HTTP error", metadata: ["error": "\(error)"])
                return .internalError(requestID: requestID)
            }
        default:
            logger.error("unexpected error", metadata: ["error": "\(String(reflecting: error))"])
            return .internalError(requestID: requestID)
        }
    }

    /// The client's `X-Request-Id` when it is short and plain, else a fresh one.
    static func requestID(from request: Request) -> String {
        if let given = request.headers[.requestID], (1...128).contains(given.utf8.count),
           given.utf8.allSatisfy({ isAlphanumeric($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") }) {
            return given
        }
        return newRequestID()
    }

    /// A fresh request id: 16 hex digits.
    static func newRequestID() -> String {
        var generator = SystemRandomNumberGenerator()
        let value = generator.next() as UInt64
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
            || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
    }

    /// The key among `keys` the request presents, compared in constant time, nil when none.
    static func presentedKey(_ request: Request, among keys: [APIKey]) -> APIKey? {
        // Every key is compared, so the time taken does not tell which one nearly matched.
        var found: APIKey?
        for key in keys where authorized(request, key: key.key) && found == nil { found = key }
        return found
    }

    /// `Authorization: Bearer KEY` or `X-API-Key: KEY`, compared in constant time.
    static func authorized(_ request: Request, key: String) -> Bool {
        var candidates: [String] = []
        if let header = request.headers[.authorization] {
            let parts = header.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "bearer" {
                candidates.append(parts[1].trimmingCharacters(in: .whitespaces))
            }
        }
        if let header = request.headers[.apiKey] { candidates.append(header.trimmingCharacters(in: .whitespaces)) }
        return candidates.contains { constantTimeEqual($0, key) }
    }

    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var difference = UInt8(x.count == y.count ? 0 : 1)
        for i in 0..<max(x.count, y.count) {
            difference |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0)
        }
        return difference == 0
    }
}
