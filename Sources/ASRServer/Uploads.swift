// Receiving request bodies: a shared memory budget for every body held at once, and a deadline
// that a slow client cannot stretch (a minimum average rate after a short grace period, and the
// request timeout as the outer bound). A body takes no place in the worker pool while it
// arrives: a client that trickles its upload holds only its own bytes of the budget.

import Foundation
import Hummingbird
import NIOHTTP1

/// Bytes of request bodies held in memory at once, across all requests.
final class BodyBudget: @unchecked Sendable {
    /// The most bytes held at once.
    let capacity: Int
    private let lock = NSLock()
    private var held = 0

    init(capacity: Int) { self.capacity = max(1, capacity) }

    /// Bytes held now.
    var inUse: Int {
        lock.lock(); defer { lock.unlock() }
        return held
    }

    /// Takes `bytes` of the budget, or returns false when they do not fit.
    func reserve(_ bytes: Int) -> Bool {
        lock.lock(); defer { lock.unlock() }
        guard held + bytes <= capacity else { return false }
        held += bytes
        return true
    }

    /// Gives `bytes` back.
    func release(_ bytes: Int) {
        lock.lock(); held -= bytes; lock.unlock()
    }
}

/// The bytes one request holds in the budget; given back once, when the request is done.
final class BodyReservation: @unchecked Sendable {
    private let budget: BodyBudget
    private let lock = NSLock()
    private var bytes = 0

    init(budget: BodyBudget) { self.budget = budget }

    /// Takes `count` more bytes for this request.
    /// - Throws: `RESOURCE_EXHAUSTED` (503) when the budget is spent.
    func grow(by count: Int) throws(APIError) {
        guard budget.reserve(count) else { throw APIError.bodyBudgetSpent }
        lock.lock(); bytes += count; lock.unlock()
    }

    /// Bytes received so far.
    var received: Int {
        lock.lock(); defer { lock.unlock() }
        return bytes
    }

    /// Gives everything back (idempotent).
    func release() {
        lock.lock()
        let count = bytes
        bytes = 0
        lock.unlock()
        budget.release(count)
    }

    deinit { release() }
}

extension ASRService {
    /// The whole body, counted against the shared budget as it arrives, within the upload
    /// deadline: the request timeout, and after `uploadGraceSeconds` an average of at least
    /// `minUploadBytesPerSecond`.
    /// - Throws: 413 over the size limit, 503 when the budget is spent, 408 for a slow or
    ///   stalled upload, 400 for broken chunk framing.
    func collectBody(_ request: Request, into reservation: BodyReservation) async throws -> ByteBuffer {
        let limit = configuration.maxBodyBytes
        let timeout = configuration.timeoutSeconds
        let grace = configuration.uploadGraceSeconds
        let minRate = Double(configuration.minUploadBytesPerSecond)
        let body = request.body
        let started = ContinuousClock.now
        do {
            return try await withThrowingTaskGroup(of: ByteBuffer?.self) { group in
                group.addTask {
                    var buffer = ByteBuffer()
                    for try await chunk in body {
                        guard buffer.readableBytes + chunk.readableBytes <= limit else {
                            throw APIError.bodyTooLarge(limit: limit)
                        }
                        try reservation.grow(by: chunk.readableBytes)
                        var chunk = chunk
                        buffer.writeBuffer(&chunk)
                    }
                    return buffer
                }
                group.addTask {
                    // The watchdog: wakes a few times a second and ends a slow upload.
                    while true {
                        try await Task.sleep(for: .milliseconds(200))
                        let elapsed = (ContinuousClock.now - started).seconds
                        if elapsed >= timeout { throw APIError.uploadTimeout(seconds: timeout) }
                        if elapsed >= grace, Double(reservation.received) < minRate * elapsed {
                            throw APIError.uploadTooSlow(bytes: reservation.received, seconds: elapsed,
                                                         minimum: Int(minRate))
                        }
                    }
                }
                defer { group.cancelAll() }
                guard let first = try await group.next(), let buffer = first else {
                    throw APIError.uploadTimeout(seconds: timeout)
                }
                return buffer
            }
        } catch let error as any HTTPResponseError where error.status == .contentTooLarge {
            throw APIError.bodyTooLarge(limit: limit)
        } catch let error as HTTPParserError {
            // Broken chunk framing inside the body: the client's fault, answered in the contract.
            throw APIError(.badRequest, status: .badRequest,
                           "the request body's framing is malformed (\(error)): send a valid chunked or Content-Length body")
        }
    }
}
