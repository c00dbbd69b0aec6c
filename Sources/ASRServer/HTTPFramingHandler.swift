// Below the router, on each connection: what HTTP framing alone decides, answered in the
// service's contract rather than by the framework's defaults.
//
// - A request that cannot be parsed (bad request line, header or chunk framing) between
//   requests gets a 400 in MLflow's error shape with a request id, then the connection closes
//   (Hummingbird's own answer is a bare 400 with no body). A framing error inside a body reaches
//   the route's body reader, which answers it the same way (InferenceRoad.swift).
// - A declared `Content-Length` over the body limit (or ≥ 2^63, or not a number) is answered
//   413/400 at once and the connection closed: nothing waits for, or drains, such a body.
// - At most `maxConnections` connections are open (one more is answered 503 and closed), and a
//   new connection has `headerTimeout` seconds to send its first request head (else 408).
// - `Expect: 100-continue` is answered with `100 Continue` as soon as the head arrives (after
//   the length check above), so clients (curl waits a second; some wait for ever) never stall.

import Foundation
import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

/// One per connection (channel handlers are not shared between channels).
final class HTTPFramingHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let maxBodyBytes: Int
    private let headerTimeout: Double
    private let connections: ConnectionCounter
    private let maxConnections: Int
    /// A request head arrived and its response has not ended yet.
    private var requestInProgress = false
    /// The connection answered a framing error and drops whatever else comes.
    private var closing = false
    /// This connection is counted in `connections`.
    private var counted = false
    /// Fires when the first request head has not arrived in time.
    private var headerTimer: Scheduled<Void>?

    init(maxBodyBytes: Int, headerTimeout: Double, connections: ConnectionCounter, maxConnections: Int) {
        self.maxBodyBytes = maxBodyBytes
        self.headerTimeout = headerTimeout
        self.connections = connections
        self.maxConnections = maxConnections
    }

    func handlerAdded(context: ChannelHandlerContext) {
        // Added to a connection that is already active: count it and start the head's clock.
        guard context.channel.isActive, !counted else { return }
        opened(context: context)
    }

    func channelActive(context: ChannelHandlerContext) {
        if !counted { opened(context: context) }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        headerTimer?.cancel()
        if counted { connections.close(); counted = false }
        context.fireChannelInactive()
    }

    /// Counts the connection (refusing one over the cap) and gives it `headerTimeout` seconds
    /// to send its first request head: a flood of idle or trickling sockets is turned away
    /// with an answer rather than left to starve new clients silently.
    private func opened(context: ChannelHandlerContext) {
        guard connections.open(max: maxConnections) else {
            answer(context: context, APIError(.resourceExhausted, status: .serviceUnavailable,
                                              "the server has too many open connections: retry in a few seconds",
                                              headers: ["Retry-After": "2"]))
            return
        }
        counted = true
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let seconds = headerTimeout
        headerTimer = context.eventLoop.scheduleTask(in: .milliseconds(Int64(headerTimeout * 1000))) {
            let (handler, context) = loopBound.value
            guard !handler.requestInProgress, !handler.closing else { return }
            handler.answer(context: context, APIError(.deadlineExceeded, status: .requestTimeout,
                                                      "no complete request head arrived within \(formatSeconds(seconds)) s: send the request line and headers at once"))
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        let part = unwrapInboundIn(data)
        if case .head(let head) = part {
            headerTimer?.cancel()
            headerTimer = nil
            requestInProgress = true
            // A body over the limit, or a length that is no length, is refused before anything
            // reads it: the connection closes, so nobody waits for (or drains) 2^63 bytes.
            if let refusal = APIError.checkContentLength(head.headerFields[.contentLength], limit: maxBodyBytes) {
                answer(context: context, refusal)
                return
            }
            if head.headerFields[.expect]?.lowercased() == "100-continue" {
                context.write(wrapOutboundOut(.head(HTTPResponse(status: .continue))), promise: nil)
                context.flush()
            }
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { requestInProgress = false }
        context.write(data, promise: promise)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Between requests nobody else can answer in the contract's shape: do it here. Inside
        // a request the route is reading the body and answers it itself.
        if error is HTTPParserError, !requestInProgress, !closing {
            answer(context: context, APIError(.badRequest, status: .badRequest,
                                              "the request is not well-formed HTTP/1.1 (\(Self.describe(error))): fix the request line, headers or chunk framing"))
            return
        }
        context.fireErrorCaught(error)
    }

    /// Writes `error` as a complete response with a fresh request id and closes the connection.
    private func answer(context: ChannelHandlerContext, _ error: APIError) {
        closing = true
        let id = FrontMiddleware.newRequestID()
        let body = JSONBody.encode(error.body)
        var fields = HTTPFields()
        fields[.contentType] = "application/json"
        fields[.contentLength] = String(body.readableBytes)
        fields[.connection] = "close"
        fields[.requestID] = id
        for (name, value) in error.headers {
            if let field = HTTPField.Name(name) { fields[field] = value }
        }
        context.write(wrapOutboundOut(.head(HTTPResponse(status: error.status, headerFields: fields))), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }

    /// The parser's complaint in a few words.
    private static func describe(_ error: any Error) -> String {
        guard let parserError = error as? HTTPParserError else { return "unreadable" }
        switch parserError {
        case .invalidChunkSize: return "invalid chunk size"
        case .invalidContentLength, .unexpectedContentLength: return "invalid Content-Length"
        case .invalidHeaderToken, .invalidConstant: return "invalid header"
        case .headerOverflow: return "headers too large"
        case .invalidMethod: return "invalid method"
        case .invalidURL: return "invalid URL"
        case .invalidVersion: return "invalid HTTP version"
        default: return "malformed framing"
        }
    }
}

/// Open connections across the server, for `ServerConfiguration.maxConnections`.
final class ConnectionCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0

    /// Counts one more connection unless `max` are open.
    func open(max: Int) -> Bool {
        lock.lock(); defer { lock.unlock() }
        guard count < max else { return false }
        count += 1
        return true
    }

    /// Counts one connection fewer.
    func close() { lock.lock(); count -= 1; lock.unlock() }

    /// Connections open now.
    var current: Int {
        lock.lock(); defer { lock.unlock() }
        return count
    }
}
