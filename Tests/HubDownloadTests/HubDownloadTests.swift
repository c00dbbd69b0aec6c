// The hub download against FakeHub (loopback only): listing, redirects without the token,
// resumes, checks, the cache layout huggingface_hub reads, access errors, offline mode, and the
// whole road download → cache → convert → verify.

import Crypto
import Foundation
import HubDownload
import ONNXImport
import Testing
import VaniTestSupport
import WeightFormat

/// A new empty folder under the system's temporary folder.
func temporaryDirectory() -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vani-hub-\(UUID().uuidString)")
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}

/// The files vani-convert asks for (its ModelFiles rule).
@Sendable func converterFiles(_ path: String) -> Bool {
    path == "config.json" || (path.hasPrefix("assets/") && !path.hasSuffix(".ts"))
}

/// An environment pointing at `hub` with a fresh cache and nothing from the machine's own.
func hubEnvironment(_ hub: FakeHub?, cache: URL = temporaryDirectory().appendingPathComponent("hub"),
                    extra: [String: String] = [:]) -> HubEnvironment {
    var env = ["HOME": temporaryDirectory().path, "HF_HUB_CACHE": cache.path,
               "HF_ENDPOINT": hub?.endpoint ?? "http://127.0.0.1:9"]
    env.merge(extra) { $1 }
    return HubEnvironment(environment: env)
}

let fast = HubDownloadOptions(maxConcurrentDownloads: 3, maxAttempts: 3, retryDelay: 0.01, readTimeout: 10, connectTimeout: 5)

func client(_ hub: FakeHub?, cache: URL, token: String? = FakeHub.goodToken, extra: [String: String] = [:]) -> HubClient {
    HubClient(environment: hubEnvironment(hub, cache: cache, extra: extra),
              token: token.map { HubToken($0, source: "HF_TOKEN") }, options: fast)
}

/// Runs `body` with a started FakeHub, stopping it afterwards.
func withHub<T>(_ hub: FakeHub = FakeHub(), _ body: (FakeHub) async throws -> T) async throws -> T {
    try await hub.start()
    do {
        let r = try await body(hub)
        await hub.stop()
        return r
    } catch {
        await hub.stop()
        throw error
    }
}

/// The HubError `body` throws (records an issue otherwise); checks that the message ends with
/// what to do and never shows a token.
func hubError(_ body: () async throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) async -> HubError? {
    do {
        try await body()
        Issue.record("expected a HubError, got none", sourceLocation: sourceLocation)
    } catch let e as HubError {
        #expect(e.description.hasSuffix("."), "message should end with what to do: \(e)", sourceLocation: sourceLocation)
        for secret in [FakeHub.goodToken, FakeHub.noAccessToken, "hf_bad_token_0000"] {
            #expect(!e.description.contains(secret), "token in message: \(e)", sourceLocation: sourceLocation)
        }
        return e
    } catch {
        Issue.record("not a HubError: \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

func readLink(_ url: URL) -> String? { try? FileManager.default.destinationOfSymbolicLink(atPath: url.path) }

@Suite struct HubEnvironmentTests {
    @Test func cacheEndpointAndOfflineFollowHuggingFaceHub() {
        let home = "/home/u"
        #expect(HubEnvironment(environment: ["HOME": home]).cacheDirectory.path == "/home/u/.cache/huggingface/hub")
        #expect(HubEnvironment(environment: ["HOME": home]).endpoint == "https://huggingface.co")
        #expect(HubEnvironment(environment: ["HOME": home]).offline == false)
        #expect(HubEnvironment(environment: ["HOME": home]).loginTokenFile.path == "/home/u/.cache/huggingface/token")
        #expect(HubEnvironment(environment: ["HOME": home, "XDG_CACHE_HOME": "/x"]).cacheDirectory.path == "/x/huggingface/hub")
        let hfHome = HubEnvironment(environment: ["HOME": home, "HF_HOME": "/h", "XDG_CACHE_HOME": "/x"])
        #expect(hfHome.cacheDirectory.path == "/h/hub" && hfHome.loginTokenFile.path == "/h/token")
        #expect(HubEnvironment(environment: ["HOME": home, "HF_HOME": "/h", "HF_HUB_CACHE": "/c"]).cacheDirectory.path == "/c")
        #expect(HubEnvironment(environment: ["HOME": home, "HF_HUB_CACHE": "~/c"]).cacheDirectory.path == "/home/u/c")
        #expect(HubEnvironment(environment: ["HOME": home, "HF_TOKEN_PATH": "/t/tok"]).loginTokenFile.path == "/t/tok")
        #expect(HubEnvironment(environment: ["HF_ENDPOINT": "http://mirror:8080//"]).endpoint == "http://mirror:8080")
        for on in ["1", "true", "YES", "On"] { #expect(HubEnvironment(environment: ["HF_HUB_OFFLINE": on]).offline) }
        for off in ["0", "", "false"] { #expect(!HubEnvironment(environment: ["HF_HUB_OFFLINE": off]).offline) }
    }

    @Test func tokenFromFileThenVariableThenLoginFile() throws {
        let dir = temporaryDirectory()
        let explicit = dir.appendingPathComponent("explicit")
        let login = dir.appendingPathComponent("hf/token")
        try FileManager.default.createDirectory(at: login.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data("hf_fromFILE\n".utf8).write(to: explicit)
        try Data("  hf_fromLOGIN \n".utf8).write(to: login)
        let both = HubEnvironment(environment: ["HOME": dir.path, "HF_HOME": dir.appendingPathComponent("hf").path,
                                                "HF_TOKEN": "hf_fromVARIABLE"])
        let loginOnly = HubEnvironment(environment: ["HOME": dir.path, "HF_HOME": dir.appendingPathComponent("hf").path])
        let none = HubEnvironment(environment: ["HOME": dir.path, "HF_HOME": dir.appendingPathComponent("empty").path])

        let a = try #require(try HubToken.find(tokenFile: explicit.path, environment: both))
        #expect(a.source == "--token-file \(explicit.path)")
        let b = try #require(try HubToken.find(tokenFile: nil, environment: both))
        #expect(b.source == "HF_TOKEN")
        let c = try #require(try HubToken.find(tokenFile: nil, environment: loginOnly))
        #expect(c.source.contains(login.path))
        #expect(try HubToken.find(tokenFile: nil, environment: none) == nil)
        // The secret shows nowhere a token is printed.
        for t in [a, b, c] {
            var dumped = ""
            dump(t, to: &dumped)
            for text in ["\(t)", String(describing: t), String(reflecting: t), t.description, dumped] {
                #expect(!text.contains("hf_from"), "\(text)")
            }
        }
        // An explicit file that is missing, empty or not one word is an error that names the file only.
        try Data("\n".utf8).write(to: dir.appendingPathComponent("empty-token"))
        try Data("hf_secretPART1 hf_secretPART2\n".utf8).write(to: dir.appendingPathComponent("two-words"))
        for (name, reason) in [("missing", "it does not exist"), ("empty-token", "it is empty"),
                               ("two-words", "it holds more than one word")] {
            let path = dir.appendingPathComponent(name).path
            #expect(throws: HubError.tokenFile(path: path, reason: reason)) {
                try HubToken.find(tokenFile: path, environment: none)
            }
        }
        do {
            _ = try HubToken.find(tokenFile: dir.appendingPathComponent("two-words").path, environment: none)
        } catch {
            #expect(!error.description.contains("hf_secret"))
        }
    }
}

@Suite struct HubDownloadTests {
    @Test func downloadsIntoTheHuggingFaceCacheConvertsVerifiesAndReusesIt() async throws {
        let cache = temporaryDirectory().appendingPathComponent("hub")
        try await withHub(FakeHub(transferDelay: 0.02)) { hub in
            let c = client(hub, cache: cache)
            let events = EventLog()
            let snap = try await c.snapshot(repository: FakeHub.repository, revision: "main", wanted: converterFiles,
                                            progress: events.add)
            let repo = cache.appendingPathComponent("models--ai4bharat--tiny-release")
            #expect(snap.commit == FakeHub.commit)
            #expect(snap.folder.standardizedFileURL == repo.appendingPathComponent("snapshots/\(FakeHub.commit)").standardizedFileURL)
            let expected = hub.files.map(\.path).filter(converterFiles).sorted()
            #expect(snap.files == expected)
            #expect(!snap.files.contains("README.md") && !snap.files.contains("assets/preprocessor.ts"))
            #expect(snap.downloadedFiles == expected.count)
            #expect(snap.downloadedBytes == Int64(hub.files.filter { converterFiles($0.path) }.reduce(0) { $0 + $1.data.count }))

            // Layout: relative links into blobs/ named by the ETag, refs/main, no partial files.
            for f in hub.files where converterFiles(f.path) {
                let etag = f.lfs ? f.sha256 : f.gitBlob
                let depth = f.path.split(separator: "/").count + 1
                #expect(readLink(snap.folder.appendingPathComponent(f.path))
                        == String(repeating: "../", count: depth) + "blobs/" + etag, "\(f.path)")
                #expect(try Data(contentsOf: repo.appendingPathComponent("blobs/\(etag)")) == f.data)
            }
            #expect(try String(contentsOf: repo.appendingPathComponent("refs/main"), encoding: .utf8) == FakeHub.commit)
            let blobs = try FileManager.default.contentsOfDirectory(atPath: repo.appendingPathComponent("blobs").path)
            #expect(!blobs.contains { $0.hasSuffix(".incomplete") })
            #expect(FileManager.default.fileExists(atPath: cache.appendingPathComponent(".locks/models--ai4bharat--tiny-release").path))

            // The token went to the hub's host, never to the CDN host the LFS files redirect to.
            let cdn = hub.requests.filter { $0.path.hasPrefix("/cdn/") }
            #expect(cdn.count == hub.files.filter { converterFiles($0.path) && $0.lfs }.count)
            #expect(cdn.allSatisfy { $0.authorization == nil && $0.host?.hasPrefix("localhost:") == true })
            #expect(hub.requests.filter { !$0.path.hasPrefix("/cdn/") }
                .allSatisfy { $0.authorization == "Bearer \(FakeHub.goodToken)" })
            #expect(events.finished == Set(expected))
            // Several files at once, never more than the bound (3 in `fast`).
            #expect((2...3).contains(hub.maxConcurrentTransfers), "\(hub.maxConcurrentTransfers) transfers at once")

            // Convert and verify from the snapshot: the same file as from the fixture folder.
            let fromHub = temporaryDirectory().appendingPathComponent("hub.safetensors")
            let direct = temporaryDirectory().appendingPathComponent("direct.safetensors")
            let result = try Converter.convert(folder: snap.folder, output: fromHub, name: "same", verify: true)
            #expect(result.verifiedTensors == result.plan.tensors.count && result.verifiedTensors > 0)
            _ = try Converter.convert(folder: Fixtures.url("models/tiny-release"), output: direct, name: "same")
            #expect(try Data(contentsOf: fromHub) == Data(contentsOf: direct))
            #expect(try Converter.plan(folder: snap.folder).config.name == FakeHub.repository)

            // A second run lists the revision and downloads nothing.
            hub.clearLog()
            let again = try await c.snapshot(repository: FakeHub.repository, revision: "main", wanted: converterFiles)
            #expect(again.downloadedFiles == 0 && again.downloadedBytes == 0)
            #expect(again.files == expected)
            #expect(hub.downloads.isEmpty, "\(hub.downloads.map(\.path))")
            #expect(hub.requests.count == 1)  // the listing
        }
    }

    @Test func resumesWithRangeAfterTheConnectionDropsMidFile() async throws {
        let path = "assets/ctc_decoder.onnx"
        let cache = temporaryDirectory().appendingPathComponent("hub")
        try await withHub(FakeHub(dropOnce: [path])) { hub in
            let events = EventLog()
            let snap = try await client(hub, cache: cache).snapshot(repository: FakeHub.repository, wanted: converterFiles,
                                                                   progress: events.add)
            let f = try #require(hub.file(path))
            let gets = hub.requests.filter { $0.path == "/cdn/\(f.sha256)" }
            #expect(gets.count == 2)
            #expect(gets.first?.range == nil)
            let resumedAt = try #require(gets.last?.range.flatMap { Int($0.dropFirst(6).dropLast()) })
            #expect(resumedAt > 0 && resumedAt < f.data.count)
            #expect(try Data(contentsOf: snap.folder.appendingPathComponent(path)) == f.data)
            #expect(events.retried.contains(path))
            _ = try Converter.convert(folder: snap.folder, output: temporaryDirectory().appendingPathComponent("w.safetensors"),
                                      verify: true)
        }
    }

    @Test func resumesAPartialFileLeftByAnEarlierRunAndRejectsADamagedOne() async throws {
        let path = "assets/language_masks.json"
        let cache = temporaryDirectory().appendingPathComponent("hub")
        try await withHub { hub in
            let f = try #require(hub.file(path))
            let blobs = cache.appendingPathComponent("models--ai4bharat--tiny-release/blobs")
            try FileManager.default.createDirectory(at: blobs, withIntermediateDirectories: true)
            let partial = blobs.appendingPathComponent(f.sha256 + ".incomplete")
            try f.data.prefix(1000).write(to: partial)
            let snap = try await client(hub, cache: cache).snapshot(repository: FakeHub.repository, wanted: { $0 == path })
            #expect(hub.downloads.last?.range == "bytes=1000-")
            #expect(try Data(contentsOf: snap.folder.appendingPathComponent(path)) == f.data)
            #expect(!FileManager.default.fileExists(atPath: partial.path))

            // A partial file whose bytes differ from the hub's: the sha256 check fails, the partial goes.
            try FileManager.default.removeItem(at: blobs.appendingPathComponent(f.sha256))
            try Data(repeating: 0x41, count: 1000).write(to: partial)
            let e = await hubError {
                _ = try await client(hub, cache: cache).snapshot(repository: FakeHub.repository, wanted: { $0 == path })
            }
            guard case let .integrity(p, expected, _) = e else { Issue.record("got \(String(describing: e))"); return }
            #expect(p == path && expected == "sha256 \(f.sha256)")
            #expect(!FileManager.default.fileExists(atPath: partial.path))
        }
    }

    @Test func worksFromTheRevisionListingAloneOrFromHeadRequests() async throws {
        let cache = temporaryDirectory().appendingPathComponent("hub")
        try await withHub(FakeHub(listsBlobs: false)) { hub in
            let snap = try await client(hub, cache: cache).snapshot(repository: FakeHub.repository, revision: FakeHub.commit,
                                                                   wanted: converterFiles)
            // One HEAD per file (a retry after a slow answer on a loaded machine may repeat one).
            let heads = hub.requests.filter { $0.method == "HEAD" }
            #expect(Set(heads.map(\.path)).count == snap.files.count)
            #expect(heads.count >= snap.files.count)
            for name in snap.files {
                let f = try #require(hub.file(name))
                #expect(readLink(snap.folder.appendingPathComponent(name))?.hasSuffix("blobs/" + (f.lfs ? f.sha256 : f.gitBlob)) == true)
            }
            // A commit id as revision writes no ref.
            #expect(!FileManager.default.fileExists(atPath: cache.appendingPathComponent("models--ai4bharat--tiny-release/refs").path))
        }
    }

    @Test func accessErrorsSayWhatToDo() async throws {
        try await withHub { hub in
            let cache = temporaryDirectory().appendingPathComponent("hub")
            let noToken = await hubError {
                _ = try await client(hub, cache: cache, token: nil).snapshot(repository: FakeHub.repository, wanted: converterFiles)
            }
            #expect(noToken == .unauthorized(repository: FakeHub.repository, tokenSource: nil))
            #expect(noToken?.description.contains("HF_TOKEN") == true)

            let bad = await hubError {
                _ = try await client(hub, cache: cache, token: "hf_bad_token_0000").snapshot(repository: FakeHub.repository,
                                                                                             wanted: converterFiles)
            }
            #expect(bad == .unauthorized(repository: FakeHub.repository, tokenSource: "HF_TOKEN"))

            let gated = await hubError {
                _ = try await client(hub, cache: cache, token: FakeHub.noAccessToken).snapshot(repository: FakeHub.repository,
                                                                                              wanted: converterFiles)
            }
            guard case let .forbidden(repo, endpoint, message) = gated else { Issue.record("got \(String(describing: gated))"); return }
            #expect(repo == FakeHub.repository && endpoint == hub.endpoint && message?.contains("authorized list") == true)
            #expect(gated?.description.contains("\(hub.endpoint)/\(FakeHub.repository)") == true)

            let revision = await hubError {
                _ = try await client(hub, cache: cache).snapshot(repository: FakeHub.repository, revision: "v9", wanted: converterFiles)
            }
            guard case let .notFound(_, rev, path, _) = revision else { Issue.record("got \(String(describing: revision))"); return }
            #expect(rev == "v9" && path == nil)

            let missingRepo = await hubError {
                _ = try await client(hub, cache: cache).snapshot(repository: "ai4bharat/missing", wanted: converterFiles)
            }
            #expect(missingRepo == .notFound(repository: "ai4bharat/missing", revision: "main", path: nil,
                                             serverMessage: "Repository not found"))
            // Without a token the hub does not say whether a repository exists.
            let hidden = await hubError {
                _ = try await client(hub, cache: cache, token: nil).snapshot(repository: "ai4bharat/missing", wanted: converterFiles)
            }
            #expect(hidden == .unauthorized(repository: "ai4bharat/missing", tokenSource: nil))

            let name = await hubError {
                _ = try await client(hub, cache: cache).snapshot(repository: "../etc", wanted: converterFiles)
            }
            #expect(name == .invalidRepository("../etc"))
            #expect(hub.downloads.isEmpty)
            #expect(!FileManager.default.fileExists(atPath: cache.appendingPathComponent("models--ai4bharat--tiny-release/snapshots").path))
        }
    }

    @Test func networkFailuresAreReportedClearly() async throws {
        // Connection refused: a port that was just free.
        let closed = try await withHub { hub in hub.port }
        let env = HubEnvironment(environment: ["HOME": temporaryDirectory().path, "HF_ENDPOINT": "http://127.0.0.1:\(closed)",
                                               "HF_HUB_CACHE": temporaryDirectory().path])
        let refused = await hubError {
            _ = try await HubClient(environment: env, token: HubToken(FakeHub.goodToken, source: "HF_TOKEN"), options: fast)
                .snapshot(repository: FakeHub.repository, wanted: converterFiles)
        }
        guard case let .unreachable(url, reason) = refused else { Issue.record("got \(String(describing: refused))"); return }
        #expect(url.hasPrefix("http://127.0.0.1:\(closed)/api/models/"))
        #expect(reason.lowercased().contains("refused"), "\(reason)")
        #expect(refused?.description.contains("HF_HUB_OFFLINE=1") == true)

        // A connection that drops on every try: what arrived stays for the next run.
        let path = "assets/ctc_decoder.onnx"
        let cache = temporaryDirectory().appendingPathComponent("hub")
        try await withHub(FakeHub(dropAlways: [path])) { hub in
            let dropped = await hubError {
                _ = try await client(hub, cache: cache).snapshot(repository: FakeHub.repository, wanted: { $0 == path })
            }
            guard case let .interrupted(p, received, expected, _) = dropped else {
                Issue.record("got \(String(describing: dropped))"); return
            }
            let f = try #require(hub.file(path))
            #expect(p == path && expected == Int64(f.data.count) && received > 0 && received < expected!)
            #expect(dropped?.description.contains("resumes") == true)
            let partial = cache.appendingPathComponent("models--ai4bharat--tiny-release/blobs/\(f.sha256).incomplete")
            #expect(try Data(contentsOf: partial) == f.data.prefix(Int(received)))
        }
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/dev/full"), "needs /dev/full (Linux)"))
    func aFullDiskIsReportedAsSuch() async throws {
        let path = "assets/ctc_decoder.onnx"
        let cache = temporaryDirectory().appendingPathComponent("hub")
        try await withHub { hub in
            let f = try #require(hub.file(path))
            let blobs = cache.appendingPathComponent("models--ai4bharat--tiny-release/blobs")
            try FileManager.default.createDirectory(at: blobs, withIntermediateDirectories: true)
            // Every write into the partial file then fails with ENOSPC, as on a full disk.
            try FileManager.default.createSymbolicLink(atPath: blobs.appendingPathComponent(f.sha256 + ".incomplete").path,
                                                       withDestinationPath: "/dev/full")
            let e = await hubError {
                _ = try await client(hub, cache: cache).snapshot(repository: FakeHub.repository, wanted: { $0 == path })
            }
            guard case let .diskFull(p) = e else { Issue.record("got \(String(describing: e))"); return }
            #expect(p.hasSuffix(f.sha256 + ".incomplete"))
            #expect(e?.description.contains("no space left") == true && e?.description.contains("HF_HUB_CACHE") == true)
            #expect(hub.requests.filter { $0.path.hasPrefix("/cdn/") }.count == 1)  // not retried
        }
    }

    @Test func offlineUsesTheCacheOnly() async throws {
        let cache = temporaryDirectory().appendingPathComponent("hub")
        let empty = await hubError {
            _ = try await client(nil, cache: cache, extra: ["HF_HUB_OFFLINE": "1"])
                .snapshot(repository: FakeHub.repository, wanted: converterFiles)
        }
        guard case .notCached(FakeHub.repository, "main", cache.path, nil) = empty else {
            Issue.record("got \(String(describing: empty))"); return
        }
        #expect(empty?.description.contains("without HF_HUB_OFFLINE=1") == true)

        let online = try await withHub { hub in
            try await client(hub, cache: cache).snapshot(repository: FakeHub.repository, wanted: converterFiles)
        }
        // The hub is gone: offline mode needs no network, by branch name or by commit.
        for revision in ["main", FakeHub.commit] {
            let offline = try await client(nil, cache: cache, extra: ["HF_HUB_OFFLINE": "1"])
                .snapshot(repository: FakeHub.repository, revision: revision, wanted: converterFiles)
            #expect(offline.offline && offline.files == online.files && offline.folder == online.folder)
        }
        // A blob removed behind the cache's back: named, not silently skipped.
        let victim = try #require(readLink(online.folder.appendingPathComponent("config.json")))
        try FileManager.default.removeItem(at: online.folder.appendingPathComponent(victim).standardizedFileURL)
        let missing = await hubError {
            _ = try await client(nil, cache: cache, extra: ["HF_HUB_OFFLINE": "1"])
                .snapshot(repository: FakeHub.repository, wanted: converterFiles)
        }
        #expect(missing == .notCached(repository: FakeHub.repository, revision: "main", cache: cache.path, missing: "config.json"))
    }
}

/// Collects DownloadEvents from several tasks.
final class EventLog: @unchecked Sendable {
    private let lock = NSLock()
    private var events: [DownloadEvent] = []

    @Sendable func add(_ e: DownloadEvent) { lock.withLock { events.append(e) } }

    var finished: Set<String> {
        lock.withLock { Set(events.compactMap { if case let .finished(p, _) = $0 { return p } else { return nil } }) }
    }

    var retried: Set<String> {
        lock.withLock { Set(events.compactMap { if case let .retrying(p, _, _) = $0 { return p } else { return nil } }) }
    }
}
