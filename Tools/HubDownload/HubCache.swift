// The Hugging Face cache layout, as huggingface_hub's file_download.py writes it, so that Python
// tools reuse what this client downloads and the other way round:
//
//   <cache>/models--<owner>--<name>/
//       blobs/<etag>                       file contents, named by the hub's ETag: the sha256 of an
//                                          LFS file, the git blob id of any other
//       blobs/<etag>.incomplete            a download in progress (resumed with a Range request)
//       snapshots/<commit>/<path>          relative symlink → ../../blobs/<etag> (one more ../ per folder)
//       refs/<revision>                    the commit a branch or tag pointed at (not written for a commit)
//   <cache>/.locks/models--<owner>--<name>/<etag>.lock   held while a blob is written

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// One model repository's folder in a Hugging Face cache.
public struct HubCache: Sendable {
    /// The cache root (`HF_HUB_CACHE`).
    public let root: URL
    /// `owner/name`.
    public let repository: String

    /// The folder of `repository` (`owner/name`) in the cache at `root`.
    /// - Throws: `HubError.invalidRepository` unless the name is two safe path components.
    public init(root: URL, repository: String) throws(HubError) {
        let parts = repository.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, parts.allSatisfy({ Self.isSafeComponent($0) }) else {
            throw .invalidRepository(repository)
        }
        self.root = root
        self.repository = repository
    }

    /// `models--owner--name`.
    public var folderName: String { "models--" + repository.replacingOccurrences(of: "/", with: "--") }
    /// `<root>/models--owner--name`.
    public var folder: URL { root.appendingPathComponent(folderName, isDirectory: true) }
    /// `blobs/`.
    public var blobs: URL { folder.appendingPathComponent("blobs", isDirectory: true) }
    /// The blob named `etag`.
    public func blob(_ etag: String) -> URL { blobs.appendingPathComponent(etag) }
    /// The partial download of blob `etag`.
    public func incomplete(_ etag: String) -> URL { blobs.appendingPathComponent(etag + ".incomplete") }
    /// `snapshots/<commit>/`.
    public func snapshot(_ commit: String) -> URL {
        folder.appendingPathComponent("snapshots", isDirectory: true).appendingPathComponent(commit, isDirectory: true)
    }
    /// `snapshots/<commit>/<path>` (the symlink).
    public func file(_ path: String, commit: String) -> URL { snapshot(commit).appendingPathComponent(path) }
    /// `refs/<revision>` (a revision such as `refs/pr/1` nests).
    public func ref(_ revision: String) -> URL { folder.appendingPathComponent("refs").appendingPathComponent(revision) }
    /// The lock file huggingface_hub takes for blob `etag`.
    public func lock(_ etag: String) -> URL {
        root.appendingPathComponent(".locks").appendingPathComponent(folderName).appendingPathComponent(etag + ".lock")
    }

    // MARK: - Reading

    /// The commit `revision` stands for in the cache: the revision itself when it is a full
    /// commit id with a snapshot folder, else the content of `refs/<revision>`; nil when unknown.
    public func cachedCommit(for revision: String) -> String? {
        if Self.isCommit(revision), FileManager.default.fileExists(atPath: snapshot(revision).path) { return revision }
        guard Self.isSafeRevision(revision),
              let data = try? Data(contentsOf: ref(revision)) else { return nil }
        let commit = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return Self.isCommit(commit) ? commit : nil
    }

    /// Whether `snapshots/<commit>/<path>` resolves to a complete blob of `size` bytes (any size when nil).
    func hasFile(_ path: String, commit: String, size: Int64?) -> Bool {
        var st = stat()  // follows the symlink: a dangling one is absent
        guard stat(file(path, commit: commit).path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return false }
        return size.map { $0 == Int64(st.st_size) } ?? true
    }

    /// The size of blob `etag`, nil when absent.
    func blobSize(_ etag: String) -> Int64? {
        var st = stat()
        guard stat(blob(etag).path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        return Int64(st.st_size)
    }

    // MARK: - Writing

    /// Records that `revision` points at `commit` (nothing for a commit id itself).
    func writeRef(_ revision: String, commit: String) throws(HubError) {
        guard revision != commit, Self.isSafeRevision(revision) else { return }
        let url = ref(revision)
        if cachedCommit(for: revision) == commit { return }
        try createDirectory(url.deletingLastPathComponent())
        do { try Data(commit.utf8).write(to: url, options: .atomic) } catch {
            throw Self.fileError(url, error)
        }
    }

    /// Points `snapshots/<commit>/<path>` at blob `etag` with a relative symlink, replacing
    /// whatever was there.
    func link(_ path: String, commit: String, etag: String) throws(HubError) {
        let pointer = file(path, commit: commit)
        try createDirectory(pointer.deletingLastPathComponent())
        // snapshots/<commit>/a/b/file → ../../../../blobs/<etag>: two levels for snapshots/<commit>,
        // one per folder inside the repository.
        let depth = 2 + path.split(separator: "/").count - 1
        let target = String(repeating: "../", count: depth) + "blobs/" + etag
        var existing = [CChar](repeating: 0, count: 4096)
        let n = readlink(pointer.path, &existing, existing.count - 1)
        if n > 0, String(decoding: existing[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) == target { return }
        unlink(pointer.path)
        guard symlink(target, pointer.path) == 0 else {
            throw .fileSystem(path: pointer.path, reason: String(cString: strerror(errno)))
        }
    }

    func createDirectory(_ url: URL) throws(HubError) {
        do { try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true) } catch {
            throw Self.fileError(url, error)
        }
    }

    static func fileError(_ url: URL, _ error: any Error) -> HubError {
        let ns = error as NSError
        let code = (ns.userInfo[NSUnderlyingErrorKey] as? NSError).flatMap { $0.domain == NSPOSIXErrorDomain ? $0.code : nil }
            ?? (ns.domain == NSPOSIXErrorDomain ? ns.code : nil)
        if code == Int(ENOSPC) { return .diskFull(path: url.path) }
        return .fileSystem(path: url.path, reason: errnoReason(error))
    }

    // MARK: - Names

    /// A 40-hex-digit git commit id.
    static func isCommit(_ s: String) -> Bool {
        s.utf8.count == 40 && s.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
    }

    /// A path component that cannot climb out of its folder.
    static func isSafeComponent(_ s: Substring) -> Bool {
        !s.isEmpty && s != "." && s != ".." && !s.contains("\\") && !s.contains("\0")
    }

    /// A revision or a file path inside the repository: relative, no `..`, no empty part.
    static func isSafeRevision(_ s: String) -> Bool {
        !s.hasPrefix("/") && s.split(separator: "/", omittingEmptySubsequences: false).allSatisfy(isSafeComponent)
    }
}

// MARK: - Lock

/// An exclusive `flock` on huggingface_hub's lock file for one blob (its `filelock` takes the
/// same kind of lock), so two processes never write the same `.incomplete` file.
final class BlobLock {
    private let fd: Int32

    /// Waits (polling, without blocking a thread) until the lock is held.
    static func acquire(_ url: URL) async throws -> BlobLock {
        do {
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        } catch {
            throw HubCache.fileError(url.deletingLastPathComponent(), error)
        }
        let fd = open(url.path, O_RDWR | O_CREAT | O_CLOEXEC, 0o664)
        guard fd >= 0 else { throw HubError.fileSystem(path: url.path, reason: String(cString: strerror(errno))) }
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR else {
                let reason = String(cString: strerror(errno))
                close(fd)
                throw HubError.fileSystem(path: url.path, reason: reason)
            }
            do { try await Task.sleep(nanoseconds: 100_000_000) } catch { close(fd); throw error }
        }
        return BlobLock(fd: fd)
    }

    private init(fd: Int32) { self.fd = fd }

    deinit {
        flock(fd, LOCK_UN)
        close(fd)
    }
}
