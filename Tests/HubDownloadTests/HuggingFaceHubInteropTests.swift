// The cache is shared with Python's huggingface_hub in both directions. Optional: it runs when
// VANI_HF_PYTHON names a Python with huggingface_hub installed (CI has none; it runs no Python):
//   python3 -m venv /tmp/hf && /tmp/hf/bin/pip install huggingface_hub
//   VANI_HF_PYTHON=/tmp/hf/bin/python swift test --filter HuggingFaceHubInterop

import Foundation
import HubDownload
import Testing

let interopPython = ProcessInfo.processInfo.environment["VANI_HF_PYTHON"].flatMap { $0.isEmpty ? nil : $0 }

/// Python that downloads the converter's files with huggingface_hub (`snapshot_download`), then
/// checks the cache with `scan_cache_dir` and prints the snapshot folder.
let interopScript = """
import sys
from huggingface_hub import snapshot_download, scan_cache_dir
cache, repo = sys.argv[1], sys.argv[2]
folder = snapshot_download(repo, cache_dir=cache, allow_patterns=["config.json", "assets/*"],
                           ignore_patterns=["*.ts"])
info = scan_cache_dir(cache)
assert not info.warnings, info.warnings
(r,) = info.repos
(rev,) = r.revisions
print("SNAPSHOT", folder)
print("FILES", len(rev.files), "REFS", ",".join(sorted(rev.refs)))
"""

@Suite(.enabled(if: interopPython != nil, "set VANI_HF_PYTHON to a Python with huggingface_hub"))
struct HuggingFaceHubInteropTests {
    func python(_ hub: FakeHub, cache: URL) async throws -> Run {
        try await runConvert(["-c", interopScript, cache.path, FakeHub.repository],
                             environment: ["HOME": temporaryDirectory().path, "HF_ENDPOINT": hub.endpoint,
                                           "HF_TOKEN": FakeHub.goodToken, "HF_HUB_DISABLE_TELEMETRY": "1",
                                           "HF_HUB_DISABLE_PROGRESS_BARS": "1"],
                             executable: URL(fileURLWithPath: interopPython!))
    }

    @Test func huggingFaceHubReusesWhatVaniDownloaded() async throws {
        let cache = temporaryDirectory().appendingPathComponent("hub")
        try await withHub { hub in
            let ours = try await client(hub, cache: cache).snapshot(repository: FakeHub.repository, wanted: converterFiles)
            hub.clearLog()
            let run = try await python(hub, cache: cache)
            #expect(run.status == 0, "\(run.output)")
            #expect(run.output.contains("SNAPSHOT \(ours.folder.path)"), "\(run.output)")
            #expect(run.output.contains("FILES \(ours.files.count) REFS main"), "\(run.output)")
            // It asked the hub (online, not a fallback to the cache) and fetched no file.
            #expect(hub.requests.contains { $0.path.contains("/tree/") })
            #expect(hub.downloads.isEmpty, "\(hub.downloads.map(\.path))")
        }
    }

    @Test func vaniReusesWhatHuggingFaceHubDownloaded() async throws {
        let cache = temporaryDirectory().appendingPathComponent("hub")
        try await withHub { hub in
            let run = try await python(hub, cache: cache)
            #expect(run.status == 0, "\(run.output)")
            #expect(hub.requests.contains { $0.path.hasPrefix("/cdn/") })
            hub.clearLog()
            let ours = try await client(hub, cache: cache).snapshot(repository: FakeHub.repository, wanted: converterFiles)
            #expect(ours.downloadedFiles == 0)
            #expect(hub.downloads.isEmpty, "\(hub.downloads.map(\.path))")
            #expect(run.output.contains("SNAPSHOT \(ours.folder.path)"), "\(run.output)")
        }
    }
}
