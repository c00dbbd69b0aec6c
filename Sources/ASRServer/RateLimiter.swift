// Rate limits per API key (or per client address without keys): token buckets in requests
// (`--rate-limit N`: N per second, bursts of N) and in audio seconds (`--audio-seconds-per-minute
// S`: S per minute, bursts of S). Counted in this process's memory. A refused request gets 429
// `RESOURCE_EXHAUSTED` with `Retry-After` and the IETF `RateLimit-*` headers; a server that is
// merely full still answers 503 (InferencePool).

import Foundation
import Hummingbird

/// Token buckets per client.
final class RateLimiter: @unchecked Sendable {
    /// One limit: `capacity` tokens, refilled at `perSecond`.
    struct Policy: Sendable {
        var capacity: Double
        var perSecond: Double
    }

    /// What a client has left after a request was let through, for the `RateLimit-*` headers.
    struct Quota: Sendable {
        var limit: Double
        var remaining: Double
        /// Seconds until the bucket is full again.
        var reset: Double
    }

    /// Why a request was refused.
    struct Refusal: Error, Sendable {
        /// `rate_limit` or `audio_rate_limit`.
        var reason: String
        var quota: Quota
        /// Seconds until the request would be let through.
        var retryAfter: Double
    }

    private struct Bucket {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }

    let requests: Policy?
    let audio: Policy?
    private let lock = NSLock()
    private var requestBuckets: [String: Bucket] = [:]
    private var audioBuckets: [String: Bucket] = [:]
    private var admissions = 0

    init(requestsPerSecond: Double?, audioSecondsPerMinute: Double?) {
        requests = requestsPerSecond.map { Policy(capacity: max(1, $0), perSecond: $0) }
        audio = audioSecondsPerMinute.map { Policy(capacity: $0, perSecond: $0 / 60) }
    }

    var isEnabled: Bool { requests != nil || audio != nil }

    /// Lets a request of `client` through (taking one request token) or refuses it: no request
    /// token left, or its audio-seconds bucket is empty (audio is charged after decoding, with
    /// `charge(audioSeconds:to:)`, so a long clip may take the bucket below zero and the client
    /// then waits until it refills).
    /// - Returns: the quota to report (the request limit's, else the audio limit's), nil without limits.
    func admit(_ client: String, now: ContinuousClock.Instant = .now) throws(Refusal) -> Quota? {
        lock.lock(); defer { lock.unlock() }
        admissions += 1
        if admissions % 4096 == 0 { forgetFullBuckets(now: now) }
        if let audio {
            let bucket = refilled(audioBuckets[client], audio, now: now)
            audioBuckets[client] = bucket
            if bucket.tokens <= 0 {
                let wait = (-bucket.tokens + 0.001) / audio.perSecond
                throw Refusal(reason: "audio_rate_limit", quota: quota(bucket, audio), retryAfter: wait)
            }
        }
        if let requests {
            var bucket = refilled(requestBuckets[client], requests, now: now)
            guard bucket.tokens >= 1 else {
                requestBuckets[client] = bucket
                throw Refusal(reason: "rate_limit", quota: quota(bucket, requests), retryAfter: (1 - bucket.tokens) / requests.perSecond)
            }
            bucket.tokens -= 1
            requestBuckets[client] = bucket
            return quota(bucket, requests)
        }
        if let audio, let bucket = audioBuckets[client] { return quota(bucket, audio) }
        return nil
    }

    /// Takes `seconds` of audio from `client`'s bucket (after the audio was decoded).
    func charge(audioSeconds seconds: Double, to client: String, now: ContinuousClock.Instant = .now) {
        guard let audio, seconds > 0 else { return }
        lock.lock(); defer { lock.unlock() }
        var bucket = refilled(audioBuckets[client], audio, now: now)
        bucket.tokens -= seconds
        audioBuckets[client] = bucket
    }

    // MARK: - Buckets (callers hold the lock)

    private func refilled(_ bucket: Bucket?, _ policy: Policy, now: ContinuousClock.Instant) -> Bucket {
        guard var bucket else { return Bucket(tokens: policy.capacity, updated: now) }
        let elapsed = max(0, (now - bucket.updated).seconds)
        bucket.tokens = min(policy.capacity, bucket.tokens + elapsed * policy.perSecond)
        bucket.updated = now
        return bucket
    }

    private func quota(_ bucket: Bucket, _ policy: Policy) -> Quota {
        Quota(limit: policy.capacity, remaining: max(0, bucket.tokens),
              reset: max(0, policy.capacity - bucket.tokens) / policy.perSecond)
    }

    /// Drops buckets that have refilled completely: they hold nothing a new bucket would not.
    private func forgetFullBuckets(now: ContinuousClock.Instant) {
        if let requests {
            requestBuckets = requestBuckets.filter { refilled($0.value, requests, now: now).tokens < requests.capacity }
        }
        if let audio {
            audioBuckets = audioBuckets.filter { refilled($0.value, audio, now: now).tokens < audio.capacity }
        }
    }
}

extension RateLimiter.Quota {
    /// `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (whole numbers: the remaining
    /// count rounded down, the seconds up).
    var headers: [String: String] {
        ["RateLimit-Limit": "\(Int(limit.rounded(.down)))",
         "RateLimit-Remaining": "\(Int(remaining.rounded(.down)))",
         "RateLimit-Reset": "\(Int(reset.rounded(.up)))"]
    }
}

extension APIError {
    static func rateLimited(_ refusal: RateLimiter.Refusal, client: String) -> APIError {
        let retry = max(1, Int(refusal.retryAfter.rounded(.up)))
        let what = refusal.reason == "audio_rate_limit"
            ? "the audio seconds per minute allowed (--audio-seconds-per-minute) are used up"
            : "too many requests (--rate-limit)"
        var headers = refusal.quota.headers
        headers["Retry-After"] = "\(retry)"
        return APIError(.resourceExhausted, status: .tooManyRequests,
                        "\(what) for \(client): retry in \(retry) s", headers: headers)
    }
}

/// After the API key check: the client's rate limits, and their `RateLimit-*` headers on the
/// answer. Probes, `/metrics` and CORS preflights are not counted.
struct RateLimitMiddleware: RouterMiddleware {
    typealias Context = VaniRequestContext
    let service: ASRService

    func handle(_ request: Request, context: Context,
                next: (Request, Context) async throws -> Response) async throws -> Response {
        let limiter = service.rateLimiter
        guard limiter.isEnabled, !ASRService.unlimitedPaths.contains(request.uri.path), request.method != .options else {
            return try await next(request, context)
        }
        let client = context.client
        let quota: RateLimiter.Quota?
        do {
            quota = try limiter.admit(client)
        } catch {
            service.metrics.rejected(code: 429, reason: error.reason)
            let name = context.apiKeyName.map { "API key '\($0)'" } ?? "this client"
            throw APIError.rateLimited(error, client: name)
        }
        var response = try await next(request, context)
        if let quota {
            for (name, value) in quota.headers {
                if let field = HeaderName(name) { response.headers[field] = value }
            }
        }
        return response
    }
}
