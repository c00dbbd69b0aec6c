// `vani-convert --from-hub` as a user runs it: the built binary against FakeHub, every byte it
// prints captured, so that the token can be shown never to appear, in succeeding and failing runs.

import Foundation
import Testing
import VaniTestSupport
import WeightFormat

/// The `vani-convert` built beside the test bundle (`swift build --build-tests` builds it).
let vaniConvert: URL? = {
    var candidates: [URL] = []
    if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
        candidates.append(URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("vani-convert"))
    }
    if let exe = Bundle.main.executableURL {
        candidates.append(exe.deletingLastPathComponent().appendingPathComponent("vani-convert"))
    }
    candidates.append(Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("vani-convert"))
    candidates.append(Fixtures.root.appendingPathComponent(".build/debug/vani-convert"))
    return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) }
}()

/// A started process and its output pipe, handed to the thread that waits for them.
final class Running: @unchecked Sendable {
    let process: Process
    let pipe: Pipe
    init(process: Process, pipe: Pipe) { self.process = process; self.pipe = pipe }
}

struct Run: Sendable {
    var status: Int32
    var output: String
}

/// Runs vani-convert (or `executable`) with `arguments` and exactly `environment`; stdout and stderr together.
/// The wait happens on a thread of its own, not on one of Swift's cooperative threads, which
/// FakeHub needs to answer.
func runConvert(_ arguments: [String], environment: [String: String], executable: URL? = nil) async throws -> Run {
    let binary = try executable ?? #require(vaniConvert, "vani-convert not built: run `swift build --build-tests`")
    return try await withCheckedThrowingContinuation { continuation in
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        process.environment = environment
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        do { try process.run() } catch { continuation.resume(throwing: error); return }
        let running = Running(process: process, pipe: pipe)
        Thread.detachNewThread {
            let data = running.pipe.fileHandleForReading.readDataToEndOfFile()
            running.process.waitUntilExit()
            continuation.resume(returning: Run(status: running.process.terminationStatus,
                                               output: String(decoding: data, as: UTF8.self)))
        }
    }
}

@Suite struct VaniConvertHubTests {
    let secrets = [FakeHub.goodToken, FakeHub.noAccessToken, "hf_bad_token_0000"]

    func environment(_ hub: FakeHub, cache: URL, home: URL, _ extra: [String: String] = [:]) -> [String: String] {
        var env = ["HOME": home.path, "HF_HUB_CACHE": cache.path, "HF_ENDPOINT": hub.endpoint, "PATH": "/usr/bin:/bin"]
        env.merge(extra) { $1 }
        return env
    }

    func expectNoToken(_ run: Run, sourceLocation: SourceLocation = #_sourceLocation) {
        for secret in secrets {
            #expect(!run.output.contains(secret), "the token appears in the output:\n\(run.output)", sourceLocation: sourceLocation)
            // Not even a good part of it.
            #expect(!run.output.contains(String(secret.dropFirst(3).prefix(12))), sourceLocation: sourceLocation)
        }
    }

    @Test func downloadsConvertsAndVerifiesInOneCommandThenReusesTheCache() async throws {
        let home = temporaryDirectory()
        let cache = temporaryDirectory().appendingPathComponent("hub")
        let out = temporaryDirectory().appendingPathComponent("model.safetensors")
        try await withHub(FakeHub(dropOnce: ["assets/ctc_decoder.onnx"])) { hub in
            let env = environment(hub, cache: cache, home: home, ["HF_TOKEN": FakeHub.goodToken])
            let args = ["--from-hub", FakeHub.repository, "-o", out.path]
            let first = try await runConvert(args, environment: env)
            #expect(first.status == 0, "\(first.output)")
            expectNoToken(first)
            #expect(first.output.contains("token from HF_TOKEN"))
            #expect(first.output.contains("assets/ctc_decoder.onnx: the connection closed before the end of the file; retrying"),
                    "\(first.output)")
            #expect(first.output.contains("resuming assets/ctc_decoder.onnx at byte"), "\(first.output)")
            #expect(first.output.contains("verified"), "\(first.output)")
            let archive = try WeightsArchive(contentsOf: out)
            #expect(archive.metadata["format"] == "vani")
            #expect(hub.downloads.contains { $0.range != nil })

            // Second run: the listing only, zero downloads, the same file.
            hub.clearLog()
            let firstBytes = try Data(contentsOf: out)
            let second = try await runConvert(args, environment: env)
            #expect(second.status == 0, "\(second.output)")
            expectNoToken(second)
            #expect(hub.downloads.isEmpty, "\(hub.downloads.map(\.path))")
            #expect(second.output.contains("were in the cache"), "\(second.output)")
            #expect(try Data(contentsOf: out) == firstBytes)

            // Offline: no request at all.
            hub.clearLog()
            let offline = try await runConvert(args + ["--no-verify"], environment: env.merging(["HF_HUB_OFFLINE": "1"]) { $1 })
            #expect(offline.status == 0, "\(offline.output)")
            #expect(hub.requests.isEmpty)
            #expect(!offline.output.contains("verified"))
        }
    }

    @Test func failuresNameTheCauseAndNeverShowTheToken() async throws {
        let home = temporaryDirectory()
        let cache = temporaryDirectory().appendingPathComponent("hub")
        let out = temporaryDirectory().appendingPathComponent("model.safetensors")
        let tokenFile = temporaryDirectory().appendingPathComponent("token")
        try Data("\(FakeHub.noAccessToken)\n".utf8).write(to: tokenFile)
        // The login file `huggingface-cli login` writes ($HOME/.cache/huggingface/token).
        let login = home.appendingPathComponent(".cache/huggingface/token")
        try FileManager.default.createDirectory(at: login.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data("hf_bad_token_0000".utf8).write(to: login)
        try await withHub { hub in
            let base = environment(hub, cache: cache, home: home)
            let args = ["--from-hub", FakeHub.repository, "-o", out.path]
            let cases: [(args: [String], env: [String: String], expect: String)] = [
                // The login file is used when nothing else is given, and the hub refuses it.
                (args, base, "refused the token from the login file"),
                // HF_TOKEN wins over the login file; a wrong one is refused.
                (args, base.merging(["HF_TOKEN": "hf_bad_token_0000"]) { $1 }, "refused the token from HF_TOKEN"),
                // --token-file wins over HF_TOKEN; valid but without access to the gated repository.
                (args + ["--token-file", tokenFile.path], base.merging(["HF_TOKEN": FakeHub.goodToken]) { $1 },
                 "has no access to \(FakeHub.repository) (403"),
                (args + ["--revision", "v9"], base.merging(["HF_TOKEN": FakeHub.goodToken]) { $1 }, "not found (404"),
                (["--from-hub", "ai4bharat/none", "-o", out.path], base.merging(["HF_TOKEN": FakeHub.goodToken, "HF_HUB_OFFLINE": "1"]) { $1 },
                 "HF_HUB_OFFLINE is set"),
            ]
            for c in cases {
                let run = try await runConvert(c.args, environment: c.env)
                #expect(run.status == 1, "\(run.output)")
                #expect(run.output.contains("error: ") && run.output.contains(c.expect), "\(run.output)")
                expectNoToken(run)
            }
            #expect(hub.downloads.isEmpty)
            #expect(!FileManager.default.fileExists(atPath: out.path))
        }
        // Nothing listens: a network failure, still without the token.
        let closed = try await withHub { hub in hub.port }
        let run = try await runConvert(["--from-hub", FakeHub.repository, "-o", out.path],
                                       environment: ["HOME": home.path, "HF_HUB_CACHE": cache.path, "HF_TOKEN": FakeHub.goodToken,
                                                     "HF_ENDPOINT": "http://127.0.0.1:\(closed)"])
        #expect(run.status == 1)
        #expect(run.output.contains("cannot reach http://127.0.0.1:\(closed)"), "\(run.output)")
        expectNoToken(run)
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/script"), "needs script(1) for a terminal"))
    func aTerminalGetsBarsAndNoToken() async throws {
        let binary = try #require(vaniConvert)
        let home = temporaryDirectory()
        let cache = temporaryDirectory().appendingPathComponent("hub")
        let out = temporaryDirectory().appendingPathComponent("model.safetensors")
        try await withHub { hub in
            // script(1) gives vani-convert a pseudo-terminal as stderr and copies what it shows.
            let command = "\(binary.path) --from-hub \(FakeHub.repository) -o \(out.path)"
            let run = try await runConvert(["-qec", command, "/dev/null"], environment:
                environment(hub, cache: cache, home: home, ["HF_TOKEN": FakeHub.goodToken, "TERM": "dumb"]),
                executable: URL(fileURLWithPath: "/usr/bin/script"))
            #expect(run.status == 0, "\(run.output)")
            expectNoToken(run)
            // (The fixture is too small for the hashing and writing bars, drawn for 64 MiB and more.)
            for bar in ["\r\u{1B}[Kdownload [", "\r\u{1B}[Kverifying ["] {
                #expect(run.output.contains(bar), "no '\(bar.dropFirst(4))' bar in:\n\(run.output)")
            }
            #expect(run.output.contains("] 100%  4.8 MiB / 4.8 MiB"), "\(run.output)")
            #expect(!run.output.contains("  download 10%"))  // the plain lines are for pipes and files
        }
    }

    @Test func argumentsAreCheckedBeforeAnyWork() async throws {
        let run = try await runConvert(["-o", "x.safetensors"], environment: [:])
        #expect(run.status != 0 && run.output.contains("either ONNX_DIR or --from-hub"), "\(run.output)")
    }
}
