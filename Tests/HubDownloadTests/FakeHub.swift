// A stand-in for the Hugging Face hub on 127.0.0.1 (ephemeral port), serving the fixture model
// Tests/Fixtures/models/tiny-release as the gated repository `ai4bharat/tiny-release`, with the
// endpoints and headers the real hub uses:
//   GET  /api/models/{repo}/revision/{rev}[?blobs=true]   listing (sha, siblings)
//   GET  /api/models/{repo}/tree/{rev}?recursive=true     the tree listing huggingface_hub uses
//   GET|HEAD /{repo}/resolve/{rev}/{path}                  small files: 200 + ETag (git blob id);
//        LFS files: 302 to http://localhost:{port}/cdn/{sha256} (another host name for the same
//        server) + X-Linked-Etag, X-Linked-Size, X-Repo-Commit
//   GET  /cdn/{sha256}                                     the bytes, with Range
// As on the hub, the listing of the gated repository is public and its files are not: 401
// without a valid token, 403 for a valid token without access; 404 with X-Error-Code.
// Every request is logged so that tests can count downloads and see which headers arrived.

import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import VaniTestSupport

final class FakeHub: @unchecked Sendable {
    struct File {
        var path: String
        var data: Data
        var lfs: Bool
        var sha256: String
        var gitBlob: String
    }

    struct Logged: Sendable {
        var method: String
        var path: String
        var host: String?
        var range: String?
        var authorization: String?
        var status: Int
    }

    static let repository = "ai4bharat/tiny-release"
    static let commit = "5b2f0c8e9a1d4e7f8a3b6c9d0e1f2a3b4c5d6e7f"
    static let goodToken = "hf_goodTOKEN4vaniTESTS_x7Q9"
    static let noAccessToken = "hf_noACCESStoken_for_tests_K2"

    private let lock = NSLock()
    private var log: [Logged] = []
    private var dropped: Set<String> = []
    private var task: Task<Void, any Error>?
    private(set) var port = 0

    let files: [File]
    /// Paths whose first transfer stops halfway (the connection closes).
    let dropOnce: Set<String>
    /// Paths whose every transfer stops early: halfway the first time, before any byte after that.
    let dropAlways: Set<String>
    /// Whether the listing carries blob ids, sizes and LFS digests (as with `?blobs=true`).
    let listsBlobs: Bool

    /// Seconds each file transfer waits before answering (to see how many run at once).
    let transferDelay: Double
    private var inFlight = 0
    private var mostInFlight = 0
    /// The most file transfers that were being answered at the same time.
    var maxConcurrentTransfers: Int { lock.withLock { mostInFlight } }

    init(dropOnce: Set<String> = [], dropAlways: Set<String> = [], listsBlobs: Bool = true, transferDelay: Double = 0) {
        self.transferDelay = transferDelay
        self.dropOnce = dropOnce
        self.dropAlways = dropAlways
        self.listsBlobs = listsBlobs
        var files: [File] = []
        let root = Fixtures.url("models/tiny-release")
        let base = root.standardizedFileURL.path
        var paths = (FileManager.default.enumerator(atPath: base)?.allObjects as? [String] ?? []).filter {
            var dir: ObjCBool = false
            return FileManager.default.fileExists(atPath: base + "/" + $0, isDirectory: &dir) && !dir.boolValue
        }
        paths.sort()
        func add(_ path: String, _ data: Data) {
            let lfs = path.hasSuffix(".onnx") || data.count >= 32 << 10
            var sha1 = Insecure.SHA1()
            sha1.update(data: Array("blob \(data.count)\0".utf8))
            sha1.update(data: data)
            files.append(File(path: path, data: data, lfs: lfs, sha256: Self.hex(SHA256.hash(data: data)),
                              gitBlob: Self.hex(sha1.finalize())))
        }
        for p in paths { add(p, try! Data(contentsOf: root.appendingPathComponent(p))) }
        // Files of the real repository that the converter does not need.
        add(".gitattributes", Data("*.onnx filter=lfs diff=lfs merge=lfs -text\n".utf8))
        add("README.md", Data("# tiny-release\nA fixture.\n".utf8))
        add("model_onnx.py", Data("print('wrapper')\n".utf8))
        add("assets/preprocessor.ts", Data(repeating: 7, count: 40_000))
        self.files = files
    }

    static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
        digest.map { String(format: "%02x", $0) }.joined()
    }

    var endpoint: String { "http://127.0.0.1:\(port)" }

    func file(_ path: String) -> File? { files.first { $0.path == path } }

    /// Requests so far.
    var requests: [Logged] { lock.withLock { log } }
    /// Requests that carried file bytes (resolve or CDN GETs answered 200 or 206), i.e. downloads.
    var downloads: [Logged] {
        requests.filter {
            $0.method == "GET" && ($0.path.contains("/resolve/") || $0.path.hasPrefix("/cdn/")) && [200, 206].contains($0.status)
        }
    }

    func clearLog() { lock.withLock { log.removeAll() } }

    // MARK: - Running

    func start() async throws {
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        var logger = Logger(label: "fake-hub")
        logger.logLevel = .critical
        let app = Application(
            responder: CallbackResponder<BasicRequestContext> { [self] request, _ in try await self.respond(request) },
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in continuation.yield(channel.localAddress?.port ?? 0) },
            logger: logger)
        task = Task { try await app.runService(gracefulShutdownSignals: []) }
        for await p in ports { port = p; break }
    }

    func stop() async {
        task?.cancel()
        _ = await task?.result
    }

    // MARK: - Responses

    struct Drop: Error {}

    func respond(_ request: Request) async throws -> Response {
        let response = try await answer(request)
        lock.withLock {
            log.append(Logged(method: request.method.rawValue, path: request.uri.path, host: request.head.authority,
                              range: request.headers[.range], authorization: request.headers[.authorization],
                              status: Int(response.status.code)))
        }
        return response
    }

    func answer(_ request: Request) async throws -> Response {
        let path = request.uri.path
        let prefix = "/api/models/\(Self.repository)/revision/"
        let resolve = "/\(Self.repository)/resolve/"
        if path.hasPrefix("/cdn/") {
            guard let f = files.first(where: { $0.sha256 == path.dropFirst(5) }) else { return error(.notFound, "EntryNotFound") }
            try await transferring()
            return bytes(f, request)
        }
        let tree = "/api/models/\(Self.repository)/tree/"
        if path.hasPrefix(tree) {  // huggingface_hub's own listing (the interop tests)
            if let denied = listingAccess(request) { return denied }
            let revision = String(path.dropFirst(tree.count)).removingPercentEncoding ?? ""
            guard revision == "main" || revision == Self.commit else { return error(.notFound, "RevisionNotFound") }
            return treeListing()
        }
        if path.hasPrefix("/api/models/") {
            guard path.hasPrefix(prefix) else { return missingRepository(request) }
            if let denied = listingAccess(request) { return denied }
            let revision = String(path.dropFirst(prefix.count)).removingPercentEncoding ?? ""
            guard revision == "main" || revision == Self.commit else { return error(.notFound, "RevisionNotFound", "Invalid rev id: \(revision)") }
            return listing(blobs: listsBlobs && request.uri.query?.contains("blobs=true") == true)
        }
        guard path.hasPrefix(resolve) else { return missingRepository(request) }
        if let denied = access(request) { return denied }
        let rest = path.dropFirst(resolve.count)
        guard let slash = rest.firstIndex(of: "/") else { return error(.notFound, "EntryNotFound") }
        let revision = String(rest[..<slash])
        guard revision == "main" || revision == Self.commit else { return error(.notFound, "RevisionNotFound") }
        let filePath = String(rest[rest.index(after: slash)...]).removingPercentEncoding ?? ""
        guard let f = file(filePath) else { return error(.notFound, "EntryNotFound", "Entry not found") }
        var headers = HTTPFields()
        headers[HTTPField.Name("X-Repo-Commit")!] = Self.commit
        if f.lfs {
            headers[.eTag] = "\"\(f.sha256)\""
            headers[HTTPField.Name("X-Linked-Etag")!] = "\"\(f.sha256)\""
            headers[HTTPField.Name("X-Linked-Size")!] = "\(f.data.count)"
            headers[.location] = "http://localhost:\(port)/cdn/\(f.sha256)"
            return Response(status: .found, headers: headers)
        }
        headers[.eTag] = "\"\(f.gitBlob)\""
        if request.method == .head {
            headers[.contentLength] = "\(f.data.count)"
            return Response(status: .ok, headers: headers)
        }
        try await transferring()
        var response = bytes(f, request)
        for field in headers { response.headers.append(field) }
        return response
    }

    /// Counts a file transfer as in flight for `transferDelay` seconds.
    func transferring() async throws {
        guard transferDelay > 0 else { return }
        lock.withLock { inFlight += 1; mostInFlight = max(mostInFlight, inFlight) }
        defer { lock.withLock { inFlight -= 1 } }
        try await Task.sleep(nanoseconds: UInt64(transferDelay * 1e9))
    }

    /// A gated repository's listing is public, as on the hub; a token that is not valid is
    /// refused wherever it is sent.
    func listingAccess(_ request: Request) -> Response? {
        switch request.headers[.authorization] {
        case nil, "Bearer \(Self.goodToken)", "Bearer \(Self.noAccessToken)": return nil
        default: return access(request)
        }
    }

    /// The hub answers 404 to a valid token and 401 otherwise, so as not to tell who may see what.
    func missingRepository(_ request: Request) -> Response {
        request.headers[.authorization] == "Bearer \(Self.goodToken)"
            ? error(.notFound, "RepoNotFound", "Repository not found")
            : error(.unauthorized, "RepoNotFound", "Repository not found")
    }

    /// nil when the request may read the repository's files.
    func access(_ request: Request) -> Response? {
        switch request.headers[.authorization] {
        case "Bearer \(Self.goodToken)":
            return nil
        case "Bearer \(Self.noAccessToken)":
            return error(.forbidden, "GatedRepo",
                         "Access to model \(Self.repository) is restricted and you are not in the authorized list.")
        case nil:
            return error(.unauthorized, "GatedRepo", "Access to model \(Self.repository) is restricted. You must be authenticated.")
        default:
            return error(.unauthorized, nil, "Invalid credentials in Authorization header")
        }
    }

    func error(_ status: HTTPResponse.Status, _ code: String?, _ message: String? = nil) -> Response {
        var headers = HTTPFields()
        if let code { headers[HTTPField.Name("X-Error-Code")!] = code }
        if let message { headers[HTTPField.Name("X-Error-Message")!] = message }
        headers[.contentType] = "application/json"
        let body = "{\"error\": \"\(message ?? code ?? "error")\"}"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    func listing(blobs: Bool) -> Response {
        let siblings: [[String: Any]] = files.map { f in
            var s: [String: Any] = ["rfilename": f.path]
            if blobs {
                s["size"] = f.data.count
                s["blobId"] = f.gitBlob
                if f.lfs { s["lfs"] = ["sha256": f.sha256, "size": f.data.count, "pointerSize": 134] }
            }
            return s
        }
        let object: [String: Any] = ["id": Self.repository, "sha": Self.commit, "private": false, "gated": "manual",
                                     "siblings": siblings]
        let data = try! JSONSerialization.data(withJSONObject: object)
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// `GET /api/models/{repo}/tree/{rev}?recursive=true`: one page with every folder and file.
    func treeListing() -> Response {
        var folders = Set<String>()
        for f in files {
            var parts = f.path.split(separator: "/").dropLast()
            while !parts.isEmpty { folders.insert(parts.joined(separator: "/")); parts = parts.dropLast() }
        }
        var entries: [[String: Any]] = folders.sorted().map { ["type": "directory", "oid": String(repeating: "0", count: 40), "size": 0, "path": $0] }
        for f in files {
            var e: [String: Any] = ["type": "file", "oid": f.gitBlob, "size": f.data.count, "path": f.path]
            if f.lfs { e["lfs"] = ["oid": f.sha256, "size": f.data.count, "pointerSize": 134] }
            entries.append(e)
        }
        let data = try! JSONSerialization.data(withJSONObject: entries)
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// The file's bytes from the requested offset; the first (or every) transfer of a file
    /// marked to drop stops halfway and closes the connection.
    func bytes(_ f: File, _ request: Request) -> Response {
        var start = 0
        var status = HTTPResponse.Status.ok
        var headers = HTTPFields()
        if let range = request.headers[.range], range.hasPrefix("bytes="),
           let from = Int(range.dropFirst(6).split(separator: "-", omittingEmptySubsequences: false).first ?? "") {
            guard from < f.data.count else {
                headers[.contentRange] = "bytes */\(f.data.count)"
                return Response(status: .rangeNotSatisfiable, headers: headers)
            }
            start = from
            status = .partialContent
            headers[.contentRange] = "bytes \(from)-\(f.data.count - 1)/\(f.data.count)"
        }
        headers[.acceptRanges] = "bytes"
        let slice = f.data.subdata(in: start..<f.data.count)
        let drop = lock.withLock { () -> Bool in
            if dropAlways.contains(f.path) { return true }
            if dropOnce.contains(f.path), !dropped.contains(f.path) { dropped.insert(f.path); return true }
            return false
        }
        guard drop else {
            return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: slice)))
        }
        // A file that always drops sends half of itself once, then nothing: no try after the
        // first makes progress.
        let sent = dropAlways.contains(f.path) && start > 0 ? 0 : max(1, slice.count / 2)
        let half = ByteBuffer(bytes: slice.prefix(sent))
        return Response(status: status, headers: headers, body: ResponseBody(contentLength: slice.count) { writer in
            try await writer.write(half)
            throw Drop()
        })
    }
}
