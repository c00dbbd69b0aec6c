// The hub's HTTP side: list a revision's files, then download the ones wanted into the cache,
// several at once, each resumable and checked.
//
// Endpoints (the hub's public API, as huggingface_hub uses it):
//   GET {endpoint}/api/models/{repo}/revision/{rev}?blobs=true → {"sha", "siblings": [{"rfilename",
//       "size", "blobId", "lfs": {"sha256", "size"}}]}
//   GET {endpoint}/{repo}/resolve/{commit}/{path} → the bytes, or a 302 to a CDN for LFS files;
//       headers X-Repo-Commit, ETag / X-Linked-Etag, X-Linked-Size. Range requests resume.
// Redirects are followed here, not by the HTTP client, so the token goes to the hub's own host
// and never to another one.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// One file of a repository revision, as the hub lists it.
public struct RepoFile: Sendable, Equatable {
    /// Path inside the repository (`assets/encoder.onnx`).
    public var path: String
    /// Size in bytes, when listed.
    public var size: Int64?
    /// The git blob id (40 hex digits), when listed.
    public var blobId: String?
    /// The sha256 of an LFS file's content (64 hex digits).
    public var lfsSHA256: String?

    /// The name of its blob in the cache (the hub's ETag): the sha256 of an LFS file, else the git blob id.
    public var etag: String? { lfsSHA256 ?? blobId }

    /// A file entry; `etag` follows from `lfsSHA256` or `blobId`.
    public init(path: String, size: Int64? = nil, blobId: String? = nil, lfsSHA256: String? = nil) {
        self.path = path
        self.size = size
        self.blobId = blobId
        self.lfsSHA256 = lfsSHA256
    }
}

/// A revision's listing: the commit it resolves to and its files.
public struct RepoListing: Sendable {
    /// `owner/name`.
    public var repository: String
    /// The revision asked for (branch, tag or commit).
    public var revision: String
    /// The full commit id the revision resolved to.
    public var commit: String
    /// Every file of the commit.
    public var files: [RepoFile]
}

/// What the download reports while it works (from several tasks at once).
public enum DownloadEvent: Sendable {
    /// The revision was listed: `files` wanted (`bytes` in all), of which `cachedFiles` (`cachedBytes`) are already in the cache.
    case listed(commit: String, files: Int, bytes: Int64, cachedFiles: Int, cachedBytes: Int64)
    /// A file's transfer (re)starts at byte `offset` (non-zero when resuming).
    case started(path: String, size: Int64?, offset: Int64)
    /// `bytes` more bytes of `path` arrived.
    case received(path: String, bytes: Int)
    /// A transfer failed and is retried after a pause (`attempt` counts from 2).
    case retrying(path: String, attempt: Int, reason: String)
    /// A file is complete, checked and in the cache.
    case finished(path: String, size: Int64)
}

/// The outcome of `HubClient.snapshot`.
public struct SnapshotResult: Sendable {
    /// `snapshots/<commit>/` in the cache: a folder laid out like the repository.
    public var folder: URL
    /// The commit the revision resolved to.
    public var commit: String
    /// Paths (inside the repository) of the files now in the snapshot folder.
    public var files: [String]
    /// Files that came over the network in this call (0 when all were cached).
    public var downloadedFiles: Int
    /// Bytes that came over the network in this call.
    public var downloadedBytes: Int64
    /// True when the network was not used (`HF_HUB_OFFLINE`).
    public var offline: Bool
}

/// Limits and pauses of the download.
public struct HubDownloadOptions: Sendable {
    /// Files downloaded at once.
    public var maxConcurrentDownloads: Int
    /// Tries per request (connection failures, dropped transfers, 5xx, 429) before giving up.
    public var maxAttempts: Int
    /// Pause before the first retry, in seconds; doubled for each further one.
    public var retryDelay: Double
    /// Seconds without a byte before a transfer counts as dropped.
    public var readTimeout: Int64
    /// Seconds allowed for a TCP (and TLS) connection.
    public var connectTimeout: Int64

    /// Defaults: 4 files at once, 5 tries, 0.5 s first pause, 60 s read and 10 s connect timeouts.
    public init(maxConcurrentDownloads: Int = 4, maxAttempts: Int = 5, retryDelay: Double = 0.5,
                readTimeout: Int64 = 60, connectTimeout: Int64 = 10) {
        self.maxConcurrentDownloads = max(1, maxConcurrentDownloads)
        self.maxAttempts = max(1, maxAttempts)
        self.retryDelay = retryDelay
        self.readTimeout = readTimeout
        self.connectTimeout = connectTimeout
    }
}

/// A client of the Hugging Face hub for one job: list a revision, download the wanted files into
/// the standard cache, return the snapshot folder.
public struct HubClient: Sendable {
    /// Endpoint, cache and offline setting.
    public let environment: HubEnvironment
    /// Sent as `Authorization: Bearer …` to the endpoint's host only.
    let token: HubToken?
    /// Limits and pauses.
    public var options: HubDownloadOptions

    /// A client for `environment`, authenticating with `token` when given.
    public init(environment: HubEnvironment, token: HubToken?, options: HubDownloadOptions = HubDownloadOptions()) {
        self.environment = environment
        self.token = token
        self.options = options
    }

    /// Makes `snapshots/<commit>/` of `repository` at `revision` hold every file whose path
    /// `wanted` accepts, downloading only what the cache lacks; with `HF_HUB_OFFLINE` it only
    /// looks in the cache.
    /// - Parameter progress: called from several tasks at once.
    /// - Throws: `HubError`, with the token redacted from every message.
    public func snapshot(repository: String, revision: String = "main",
                         wanted: @escaping @Sendable (String) -> Bool,
                         progress: @escaping @Sendable (DownloadEvent) -> Void = { _ in }) async throws(HubError) -> SnapshotResult {
        do {
            let cache = try HubCache(root: environment.cacheDirectory, repository: repository)
            guard HubCache.isSafeRevision(revision) else {
                throw HubError.notFound(repository: repository, revision: revision, path: nil, serverMessage: "not a revision name")
            }
            if environment.offline { return try cachedSnapshot(cache, revision: revision, wanted: wanted) }
            let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: httpConfiguration)
            do {
                let result = try await download(cache, revision: revision, wanted: wanted, http: http, progress: progress)
                try? await http.shutdown()
                return result
            } catch {
                try? await http.shutdown()
                throw error
            }
        } catch {
            throw hubError(error, url: environment.endpoint).redacting(token?.secret)
        }
    }

    /// Lists `repository` at `revision`.
    /// - Throws: `HubError` (401, 403, 404, network), token redacted.
    public func listing(repository: String, revision: String = "main") async throws(HubError) -> RepoListing {
        let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: httpConfiguration)
        do {
            let result = try await list(repository, revision: revision, http: http)
            try? await http.shutdown()
            return result
        } catch {
            try? await http.shutdown()
            throw hubError(error, url: environment.endpoint).redacting(token?.secret)
        }
    }

    var httpConfiguration: HTTPClient.Configuration {
        var c = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: .seconds(options.connectTimeout), read: .seconds(options.readTimeout)),
            decompression: .disabled)
        // Fail a refused connection at once; retries (with pauses) are this client's.
        c.connectionPool.retryConnectionEstablishment = false
        return c
    }

    // MARK: - Offline

    func cachedSnapshot(_ cache: HubCache, revision: String, wanted: (String) -> Bool) throws(HubError) -> SnapshotResult {
        guard let commit = cache.cachedCommit(for: revision) else {
            throw .notCached(repository: cache.repository, revision: revision, cache: cache.root.path, missing: nil)
        }
        let folder = cache.snapshot(commit)
        var files: [String] = []
        let base = folder.standardizedFileURL.path
        if let walker = FileManager.default.enumerator(atPath: base) {
            while let rel = walker.nextObject() as? String {
                var isDir: ObjCBool = false
                let full = base + "/" + rel
                if FileManager.default.fileExists(atPath: full, isDirectory: &isDir), isDir.boolValue { continue }
                guard wanted(rel) else { continue }
                // A link whose blob is gone was never completed (or was pruned).
                guard cache.hasFile(rel, commit: commit, size: nil) else {
                    throw .notCached(repository: cache.repository, revision: revision, cache: cache.root.path, missing: rel)
                }
                files.append(rel)
            }
        }
        guard !files.isEmpty else {
            throw .notCached(repository: cache.repository, revision: revision, cache: cache.root.path, missing: nil)
        }
        return SnapshotResult(folder: folder, commit: commit, files: files.sorted(), downloadedFiles: 0,
                              downloadedBytes: 0, offline: true)
    }

    // MARK: - Online

    func download(_ cache: HubCache, revision: String, wanted: @escaping @Sendable (String) -> Bool, http: HTTPClient,
                  progress: @escaping @Sendable (DownloadEvent) -> Void) async throws -> SnapshotResult {
        let listing = try await list(cache.repository, revision: revision, http: http)
        var files = listing.files.filter { wanted($0.path) }
        guard !files.isEmpty else {
            throw HubError.notFound(repository: cache.repository, revision: revision, path: nil,
                                    serverMessage: "the revision has none of the files needed")
        }
        // A listing without blob ids (an older hub or a mirror): ask each file's ETag.
        for i in files.indices where files[i].etag == nil {
            files[i] = try await metadata(of: files[i], cache: cache, commit: listing.commit, http: http)
        }
        var pending: [RepoFile] = []
        var cachedBytes: Int64 = 0
        for f in files {
            let etag = f.etag!
            if let size = cache.blobSize(etag), f.size == nil || f.size == size {
                try cache.link(f.path, commit: listing.commit, etag: etag)
                cachedBytes += size
            } else {
                pending.append(f)
            }
        }
        let total = files.reduce(Int64(0)) { $0 + ($1.size ?? 0) }
        progress(.listed(commit: listing.commit, files: files.count, bytes: total,
                         cachedFiles: files.count - pending.count, cachedBytes: cachedBytes))

        var downloadedBytes: Int64 = 0
        try await withThrowingTaskGroup(of: Int64.self) { group in
            var next = pending.makeIterator()
            func start() -> Bool {
                guard let f = next.next() else { return false }
                group.addTask { try await self.fetch(f, cache: cache, commit: listing.commit, http: http, progress: progress) }
                return true
            }
            for _ in 0..<options.maxConcurrentDownloads { if !start() { break } }
            while let bytes = try await group.next() {
                downloadedBytes += bytes
                _ = start()
            }
        }
        try cache.writeRef(revision, commit: listing.commit)
        return SnapshotResult(folder: cache.snapshot(listing.commit), commit: listing.commit,
                              files: files.map(\.path).sorted(), downloadedFiles: pending.count,
                              downloadedBytes: downloadedBytes, offline: false)
    }

    func list(_ repository: String, revision: String, http: HTTPClient) async throws -> RepoListing {
        _ = try HubCache(root: environment.cacheDirectory, repository: repository)  // validates the name
        let url = "\(environment.endpoint)/api/models/\(repository)/revision/\(Self.quote(revision, keepSlash: false))?blobs=true"
        var attempt = 0
        while true {
            attempt += 1
            let response: HTTPClientResponse
            let body: ByteBuffer
            do {
                response = try await send(url, method: .GET, headers: [("Accept", "application/json")], http: http)
                body = try await response.body.collect(upTo: 64 << 20)
            } catch {
                if attempt < options.maxAttempts { try await pause(attempt); continue }
                throw HubError.unreachable(url: url, reason: describe(error))
            }
            if Self.isTransient(response.status.code), attempt < options.maxAttempts { try await pause(attempt); continue }
            try check(response, body: body, repository: repository, revision: revision, path: nil, url: url)
            return try Self.parseListing(body, repository: repository, revision: revision, url: url)
        }
    }

    static func parseListing(_ body: ByteBuffer, repository: String, revision: String, url: String) throws -> RepoListing {
        func bad(_ reason: String) -> HubError { .badResponse(url: url, status: 200, reason: reason) }
        guard let object = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any] else {
            throw bad("the listing is not a JSON object")
        }
        guard let commit = object["sha"] as? String, HubCache.isCommit(commit) else { throw bad("no commit id ('sha') in the listing") }
        guard let siblings = object["siblings"] as? [[String: Any]] else { throw bad("no file list ('siblings') in the listing") }
        func int(_ v: Any?) -> Int64? { (v as? NSNumber)?.int64Value }
        var files: [RepoFile] = []
        for s in siblings {
            guard let path = s["rfilename"] as? String else { throw bad("a file without 'rfilename'") }
            guard HubCache.isSafeRevision(path) else { throw bad("unsafe file path '\(path)'") }
            let lfs = s["lfs"] as? [String: Any]
            let sha = (lfs?["sha256"] as? String ?? lfs?["oid"] as? String).map { $0.lowercased() }
            let blob = (s["blobId"] as? String).map { $0.lowercased() }
            let size = int(lfs?["size"]) ?? int(s["size"])
            // The blob name becomes a file name: only hex digits are accepted.
            guard sha.map(isHex) ?? true, blob.map(isHex) ?? true else { throw bad("malformed digest for '\(path)'") }
            files.append(RepoFile(path: path, size: size, blobId: blob, lfsSHA256: sha))
        }
        return RepoListing(repository: repository, revision: revision, commit: commit, files: files)
    }

    /// Fills in a file's ETag and size from a HEAD request on `resolve` (redirects not followed:
    /// the hub's first answer carries `X-Linked-Etag` / `X-Linked-Size`).
    func metadata(of file: RepoFile, cache: HubCache, commit: String, http: HTTPClient) async throws -> RepoFile {
        let url = resolveURL(cache.repository, commit: commit, path: file.path)
        var attempt = 0
        while true {
            attempt += 1
            let response: HTTPClientResponse
            do {
                response = try await send(url, method: .HEAD, headers: [("Accept-Encoding", "identity")], http: http,
                                          followRedirects: false)
                _ = try? await response.body.collect(upTo: 1 << 16)
            } catch {
                if attempt < options.maxAttempts { try await pause(attempt); continue }
                throw HubError.unreachable(url: url, reason: describe(error))
            }
            if Self.isTransient(response.status.code), attempt < options.maxAttempts { try await pause(attempt); continue }
            if !(300..<400).contains(response.status.code) {
                try check(response, body: ByteBuffer(), repository: cache.repository, revision: commit, path: file.path, url: url)
            }
            let h = response.headers
            guard let raw = h.first(name: "X-Linked-Etag") ?? h.first(name: "ETag") else {
                throw HubError.badResponse(url: url, status: Int(response.status.code), reason: "no ETag for \(file.path)")
            }
            let etag = Self.normalizeETag(raw).lowercased()
            guard isHex(etag) else {
                throw HubError.badResponse(url: url, status: Int(response.status.code), reason: "malformed ETag for \(file.path)")
            }
            var f = file
            if etag.count == 64 { f.lfsSHA256 = etag } else { f.blobId = etag }
            if f.size == nil { f.size = (h.first(name: "X-Linked-Size") ?? h.first(name: "Content-Length")).flatMap { Int64($0) } }
            return f
        }
    }

    // MARK: - One file

    /// Downloads one file into its blob (resuming a partial one), checks it, links it into the
    /// snapshot. Returns the bytes that came over the network.
    func fetch(_ file: RepoFile, cache: HubCache, commit: String, http: HTTPClient,
               progress: @escaping @Sendable (DownloadEvent) -> Void) async throws -> Int64 {
        let etag = file.etag!
        try cache.createDirectory(cache.blobs)
        let lock = try await BlobLock.acquire(cache.lock(etag))
        defer { withExtendedLifetime(lock) {} }
        // Another process may have finished it while we waited for the lock.
        if let size = cache.blobSize(etag), file.size == nil || file.size == size {
            try cache.link(file.path, commit: commit, etag: etag)
            progress(.finished(path: file.path, size: size))
            return 0
        }
        let partial = cache.incomplete(etag)
        let writer = try BlobWriter(partial)
        defer { writer.close() }
        var digest = BlobDigest(file)
        var offset = writer.size
        if let size = file.size, offset > size { try writer.truncate(); offset = 0 }
        if offset > 0 { try digest.update(contentsOf: partial, upTo: offset) }

        let url = resolveURL(cache.repository, commit: commit, path: file.path)
        var transferred: Int64 = 0
        var attempt = 0
        var lastReason = ""
        var everAnswered = false
        transfer: while true {
            attempt += 1
            if attempt > options.maxAttempts {
                if !everAnswered { throw HubError.unreachable(url: url, reason: lastReason) }
                throw HubError.interrupted(path: file.path, received: offset, expected: file.size, reason: lastReason)
            }
            if attempt > 1 {
                progress(.retrying(path: file.path, attempt: attempt, reason: lastReason))
                try await pause(attempt - 1)
            }
            if let size = file.size, offset == size { break transfer }  // a complete partial file
            var headers = [("Accept-Encoding", "identity")]
            if offset > 0 { headers.append(("Range", "bytes=\(offset)-")) }
            let response: HTTPClientResponse
            do {
                response = try await send(url, method: .GET, headers: headers, http: http)
            } catch {
                lastReason = describe(error)
                continue transfer
            }
            everAnswered = true
            let status = Int(response.status.code)
            switch status {
            case 200:
                if offset > 0 {  // the server ignored the Range: start over
                    try writer.truncate(); offset = 0; digest = BlobDigest(file)
                }
            case 206:
                let start = response.headers.first(name: "Content-Range").flatMap(Self.rangeStart)
                guard start == offset else {
                    _ = try? await response.body.collect(upTo: 1 << 16)
                    try writer.truncate(); offset = 0; digest = BlobDigest(file)
                    lastReason = "the server resumed at the wrong byte"
                    continue transfer
                }
            case 416:
                _ = try? await response.body.collect(upTo: 1 << 16)
                if file.size == nil || file.size == offset { break transfer }
                try writer.truncate(); offset = 0; digest = BlobDigest(file)
                lastReason = "the server refused to resume"
                continue transfer
            default:
                let body = (try? await response.body.collect(upTo: 1 << 16)) ?? ByteBuffer()
                if Self.isTransient(response.status.code) {
                    lastReason = "HTTP \(status)"
                    continue transfer
                }
                try check(response, body: body, repository: cache.repository, revision: commit, path: file.path, url: url)
                throw HubError.badResponse(url: url, status: status, reason: "expected the file's bytes")
            }
            progress(.started(path: file.path, size: file.size, offset: offset))
            let before = offset
            do {
                for try await buffer in response.body {
                    try writer.write(buffer)
                    digest.update(buffer)
                    offset += Int64(buffer.readableBytes)
                    transferred += Int64(buffer.readableBytes)
                    progress(.received(path: file.path, bytes: buffer.readableBytes))
                }
            } catch let error as HubError {
                throw error  // disk full, permissions: retrying cannot help
            } catch {
                lastReason = describe(error)
                if offset > before { attempt = min(attempt, 1) }  // progress was made: fresh tries
                continue transfer
            }
            if let size = file.size, offset < size {
                lastReason = "the connection closed after \(offset) of \(size) bytes"
                continue transfer
            }
            break transfer
        }

        if let size = file.size, offset != size {
            writer.close(); unlink(partial.path)
            throw HubError.integrity(path: file.path, expected: "\(size) bytes", actual: "\(offset) bytes")
        }
        if let (expected, actual) = digest.mismatch(size: offset) {
            writer.close(); unlink(partial.path)
            throw HubError.integrity(path: file.path, expected: expected, actual: actual)
        }
        try writer.finish()
        guard rename(partial.path, cache.blob(etag).path) == 0 else {
            throw HubError.fileSystem(path: cache.blob(etag).path, reason: String(cString: strerror(errno)))
        }
        try cache.link(file.path, commit: commit, etag: etag)
        progress(.finished(path: file.path, size: offset))
        return transferred
    }

    // MARK: - HTTP

    /// Sends a request, following redirects (at most 10) itself: the token is sent only while the
    /// URL stays on the endpoint's scheme, host and port.
    func send(_ url: String, method: HTTPMethod, headers: [(String, String)], http: HTTPClient,
              followRedirects: Bool = true) async throws -> HTTPClientResponse {
        var current = url
        let home = Self.origin(environment.endpoint)
        for _ in 0...10 {
            var request = HTTPClientRequest(url: current)
            request.method = method
            request.headers.add(name: "User-Agent", value: "vani-convert/1.0 (HubDownload)")
            for (k, v) in headers { request.headers.add(name: k, value: v) }
            if let token, Self.origin(current) == home {
                request.headers.add(name: "Authorization", value: "Bearer \(token.secret)")
            }
            let response = try await http.execute(request, deadline: .now() + .hours(24))
            guard followRedirects, [301, 302, 303, 307, 308].contains(response.status.code),
                  let location = response.headers.first(name: "Location") else { return response }
            _ = try? await response.body.collect(upTo: 1 << 16)
            guard let next = URL(string: location, relativeTo: URL(string: current))?.absoluteURL.absoluteString else {
                throw HubError.badResponse(url: current, status: Int(response.status.code), reason: "malformed redirect")
            }
            current = next
        }
        throw HubError.badResponse(url: url, status: 310, reason: "more than 10 redirects")
    }

    /// Maps an error status to `HubError`; returns for 2xx.
    func check(_ response: HTTPClientResponse, body: ByteBuffer, repository: String, revision: String,
               path: String?, url: String) throws {
        let status = Int(response.status.code)
        if (200..<300).contains(status) { return }
        let message = Self.serverMessage(response, body: body)
        let code = response.headers.first(name: "X-Error-Code")
        switch status {
        case 401:
            // Without a token the hub answers 401 for gated, private and missing repositories alike.
            throw HubError.unauthorized(repository: repository, tokenSource: token?.source)
        case 403:
            throw HubError.forbidden(repository: repository, endpoint: environment.endpoint, serverMessage: message)
        case 404:
            let isFile = path != nil && code != "RepoNotFound" && code != "RevisionNotFound"
            throw HubError.notFound(repository: repository, revision: revision, path: isFile ? path : nil, serverMessage: message)
        default:
            throw HubError.badResponse(url: url, status: status, reason: message ?? response.status.reasonPhrase)
        }
    }

    static func serverMessage(_ response: HTTPClientResponse, body: ByteBuffer) -> String? {
        if let m = response.headers.first(name: "X-Error-Message"), !m.isEmpty { return String(m.prefix(300)) }
        if let obj = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any],
           let m = obj["error"] as? String, !m.isEmpty { return String(m.prefix(300)) }
        return nil
    }

    func resolveURL(_ repository: String, commit: String, path: String) -> String {
        "\(environment.endpoint)/\(repository)/resolve/\(commit)/\(Self.quote(path, keepSlash: true))"
    }

    func pause(_ attempt: Int) async throws {
        let seconds = options.retryDelay * pow(2, Double(max(0, attempt - 1)))
        try await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
    }

    static func isTransient(_ status: UInt) -> Bool { status == 408 || status == 429 || (500..<600).contains(status) }

    static func origin(_ url: String) -> String {
        guard let u = URL(string: url), let scheme = u.scheme?.lowercased(), let host = u.host?.lowercased() else { return url }
        let port = u.port ?? (scheme == "https" ? 443 : 80)
        return "\(scheme)://\(host):\(port)"
    }

    /// Percent-encodes a revision (slashes too, as huggingface_hub does) or a file path (slashes kept).
    static func quote(_ s: String, keepSlash: Bool) -> String {
        var allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))
        if keepSlash { allowed.insert("/") }
        return s.addingPercentEncoding(withAllowedCharacters: allowed) ?? s
    }

    /// `W/"abc"` or `"abc"` → `abc`.
    static func normalizeETag(_ raw: String) -> String {
        var s = raw.trimmingCharacters(in: .whitespaces)
        if s.hasPrefix("W/") { s.removeFirst(2) }
        if s.count >= 2, s.hasPrefix("\""), s.hasSuffix("\"") { s = String(s.dropFirst().dropLast()) }
        return s
    }

    /// The first byte of `bytes START-END/TOTAL`.
    static func rangeStart(_ header: String) -> Int64? {
        guard header.hasPrefix("bytes "), let dash = header.firstIndex(of: "-") else { return nil }
        return Int64(header[header.index(header.startIndex, offsetBy: 6)..<dash])
    }

    /// Maps anything thrown on the way to a `HubError`.
    func hubError(_ error: any Error, url: String) -> HubError {
        if let e = error as? HubError { return e }
        return .unreachable(url: url, reason: describe(error))
    }
}

func isHex(_ s: String) -> Bool {
    !s.isEmpty && s.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
}

/// A short reason for a network error, without the client's internal dump.
func describe(_ error: any Error) -> String {
    if let e = error as? NIOConnectionError {
        if let first = e.connectionErrors.first { return describe(first.error) }
        if let dns = e.dnsAError ?? e.dnsAAAAError { return "the host name did not resolve (\(describe(dns)))" }
        return "no connection could be made"
    }
    if let e = error as? IOError { return String(cString: strerror(e.errnoCode)) }
    if let e = error as? HTTPClientError {
        switch e {
        case .connectTimeout: return "the connection timed out"
        case .readTimeout: return "no data arrived for too long"
        case .remoteConnectionClosed: return "the server closed the connection"
        case .cancelled: return "cancelled"
        case .deadlineExceeded: return "the request took too long"
        default: return "\(e)"
        }
    }
    if let e = error as? HTTPParserError, e == .invalidEOFState { return "the connection closed before the end of the file" }
    if error is ChannelError { return "the connection failed (\(error))" }
    if error is CancellationError { return "cancelled" }
    return "\(error)"
}

// MARK: - Writing and checking a blob

// The C calls under names that BlobWriter's own methods do not shadow.
private func systemWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int { write(fd, p, n) }
private func systemClose(_ fd: Int32) { _ = close(fd) }

/// The `.incomplete` file: appended to with write(2), so that a full disk is seen as ENOSPC.
final class BlobWriter {
    let url: URL
    private var fd: Int32

    init(_ url: URL) throws(HubError) {
        self.url = url
        fd = open(url.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw Self.error(url, errno) }
    }

    /// Bytes already in the file.
    var size: Int64 {
        var st = stat()
        return fstat(fd, &st) == 0 ? Int64(st.st_size) : 0
    }

    func write(_ buffer: ByteBuffer) throws(HubError) {
        var failure: Int32 = 0
        buffer.withUnsafeReadableBytes { raw in
            var done = 0
            while done < raw.count {
                let n = systemWrite(fd, raw.baseAddress! + done, raw.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    return
                }
                done += n
            }
        }
        if failure != 0 { throw Self.error(url, failure) }
    }

    func truncate() throws(HubError) {
        guard ftruncate(fd, 0) == 0 else { throw Self.error(url, errno) }
    }

    /// Flushes to disk (a full disk may only show here).
    func finish() throws(HubError) {
        guard fsync(fd) == 0 || errno == EINVAL else { throw Self.error(url, errno) }
    }

    func close() {
        if fd >= 0 { systemClose(fd); fd = -1 }
    }

    deinit { close() }

    static func error(_ url: URL, _ code: Int32) -> HubError {
        code == ENOSPC || code == EDQUOT ? .diskFull(path: url.path)
            : .fileSystem(path: url.path, reason: String(cString: strerror(code)))
    }
}

/// The digest the hub announced for a file: sha256 of an LFS file's content, or the git blob id
/// (sha1 over `blob <size>\0` + content) of any other.
struct BlobDigest {
    private enum Kind { case sha256(SHA256, expected: String), gitBlob(Insecure.SHA1, expected: String), none }
    private var kind: Kind

    init(_ file: RepoFile) {
        if let sha = file.lfsSHA256 {
            kind = .sha256(SHA256(), expected: sha)
        } else if let blob = file.blobId, blob.count == 40, let size = file.size {
            var h = Insecure.SHA1()
            h.update(data: Array("blob \(size)\0".utf8))
            kind = .gitBlob(h, expected: blob)
        } else {
            kind = .none
        }
    }

    mutating func update(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { update($0) }
    }

    mutating func update(_ raw: UnsafeRawBufferPointer) {
        switch kind {
        case .sha256(var h, let e): h.update(bufferPointer: raw); kind = .sha256(h, expected: e)
        case .gitBlob(var h, let e): h.update(bufferPointer: raw); kind = .gitBlob(h, expected: e)
        case .none: break
        }
    }

    /// Feeds the first `count` bytes of a partial file (before resuming it).
    mutating func update(contentsOf url: URL, upTo count: Int64) throws(HubError) {
        guard let handle = FileHandle(forReadingAtPath: url.path) else {
            throw .fileSystem(path: url.path, reason: "cannot reopen the partial download")
        }
        defer { try? handle.close() }
        var left = count
        while left > 0 {
            let chunk = handle.readData(ofLength: Int(min(left, 4 << 20)))
            if chunk.isEmpty { break }
            chunk.withUnsafeBytes { update($0) }
            left -= Int64(chunk.count)
        }
    }

    /// (expected, actual) when the digest differs; nil when it matches or none was announced.
    func mismatch(size: Int64) -> (String, String)? {
        func hex<D: Sequence>(_ d: D) -> String where D.Element == UInt8 { d.map { String(format: "%02x", $0) }.joined() }
        switch kind {
        case let .sha256(h, e):
            let a = hex(h.finalize())
            return a == e ? nil : ("sha256 \(e)", "sha256 \(a)")
        case let .gitBlob(h, e):
            let a = hex(h.finalize())
            return a == e ? nil : ("git blob \(e)", "git blob \(a)")
        case .none:
            return nil
        }
    }
}
