// Errors of the hub download: each says what happened and ends with what to do. None of them
// ever carries the access token (HubClient redacts it from anything the server or the network
// layer says before it lands in a message).

import Foundation

/// Why a repository could not be listed, downloaded or found in the cache.
public enum HubError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The repository name is not `owner/name`.
    case invalidRepository(String)
    /// `--token-file` (or the login file named by `HF_TOKEN_PATH`) could not be used.
    case tokenFile(path: String, reason: String)
    /// 401: no token was sent (`tokenSource` nil) or the hub refused the one sent.
    case unauthorized(repository: String, tokenSource: String?)
    /// 403: the token is valid but has no access to this (gated or private) repository.
    case forbidden(repository: String, endpoint: String, serverMessage: String?)
    /// 404: the repository, the revision or a file does not exist (or is private).
    case notFound(repository: String, revision: String, path: String?, serverMessage: String?)
    /// The hub (or the CDN it redirected to) could not be reached.
    case unreachable(url: String, reason: String)
    /// The connection kept dropping while a file was downloading; what arrived is kept.
    case interrupted(path: String, received: Int64, expected: Int64?, reason: String)
    /// The disk is full (ENOSPC while writing).
    case diskFull(path: String)
    /// Another file-system failure in the cache (permissions, a file where a folder should be, …).
    case fileSystem(path: String, reason: String)
    /// A downloaded file does not have the size or the digest the hub announced.
    case integrity(path: String, expected: String, actual: String)
    /// An answer the client cannot use (unexpected status, malformed listing).
    case badResponse(url: String, status: Int, reason: String)
    /// `HF_HUB_OFFLINE` is set and the revision (or a file of it) is not in the cache.
    case notCached(repository: String, revision: String, cache: String, missing: String?)

    /// One sentence or two: what happened, then what to do.
    public var description: String {
        switch self {
        case let .invalidRepository(name):
            return "'\(name)' is not a repository name. Pass it as owner/name, e.g. "
                + "ai4bharat/indic-conformer-600m-multilingual."
        case let .tokenFile(path, reason):
            return "cannot use the token file \(path): \(reason). Put the token (hf_…) alone in the "
                + "file, or set HF_TOKEN instead."
        case let .unauthorized(repo, source):
            if let source {
                return "the hub refused the token from \(source) for \(repo) (401: invalid, expired or "
                    + "revoked). Create a read token at https://huggingface.co/settings/tokens and pass "
                    + "it with HF_TOKEN, --token-file or `huggingface-cli login`."
            }
            return "\(repo) needs an access token (401: gated or private repository). Accept its "
                + "conditions on its page, create a read token at https://huggingface.co/settings/tokens, "
                + "then set HF_TOKEN, pass --token-file, or run `huggingface-cli login`."
        case let .forbidden(repo, endpoint, message):
            return "the token has no access to \(repo) (403\(message.map { ": \($0)" } ?? "")). It is "
                + "gated: open \(endpoint)/\(repo), log in as the token's owner and accept the conditions "
                + "(access may need the authors' approval), or use a token with read access to it."
        case let .notFound(repo, revision, path, message):
            let what = path.map { "file '\($0)' at revision '\(revision)' of \(repo)" }
                ?? "\(repo) at revision '\(revision)'"
            return "\(what) not found (404\(message.map { ": \($0)" } ?? "")). Check the repository name "
                + "and --revision (a branch, tag or commit); a private repository also answers 404 "
                + "without a token that can read it."
        case let .unreachable(url, reason):
            return "cannot reach \(url): \(reason). Check the network connection and HF_ENDPOINT; "
                + "with the model already in the cache, set HF_HUB_OFFLINE=1 to use it without the network."
        case let .interrupted(path, received, expected, reason):
            let of = expected.map { " of \($0)" } ?? ""
            return "the download of \(path) kept failing (\(reason)) after \(received)\(of) bytes. "
                + "Run the command again: it resumes from the bytes already received."
        case let .diskFull(path):
            return "no space left on the device while writing \(path). Free some space, or point "
                + "HF_HUB_CACHE (or --cache-dir) at a larger disk, then run the command again: it resumes."
        case let .fileSystem(path, reason):
            return "cannot write \(path) in the cache: \(reason). Check the folder's permissions, or "
                + "point HF_HUB_CACHE (or --cache-dir) elsewhere."
        case let .integrity(path, expected, actual):
            return "\(path) arrived damaged (expected \(expected), got \(actual)); the partial file "
                + "was removed. Run the command again to download it afresh."
        case let .badResponse(url, status, reason):
            return "unexpected answer from \(url) (HTTP \(status)): \(reason). Check HF_ENDPOINT, "
                + "or try again later."
        case let .notCached(repo, revision, cache, missing):
            let what = missing.map { "file '\($0)' of \(repo) at '\(revision)'" } ?? "\(repo) at revision '\(revision)'"
            return "HF_HUB_OFFLINE is set and \(what) is not in the cache \(cache). Run the command "
                + "once without HF_HUB_OFFLINE=1 to download it (or set HF_HUB_CACHE to the cache that has it)."
        }
    }

    /// The same error with every occurrence of `secret` replaced, for messages that quote
    /// text from elsewhere (server messages, network errors).
    func redacting(_ secret: String?) -> HubError {
        guard let secret, !secret.isEmpty else { return self }
        func r(_ s: String) -> String { s.replacingOccurrences(of: secret, with: "***") }
        func r(_ s: String?) -> String? { s.map { r($0) } }
        switch self {
        case let .invalidRepository(n): return .invalidRepository(r(n))
        case let .tokenFile(p, reason): return .tokenFile(path: r(p), reason: r(reason))
        case let .unauthorized(repo, s): return .unauthorized(repository: r(repo), tokenSource: r(s))
        case let .forbidden(repo, e, m): return .forbidden(repository: r(repo), endpoint: r(e), serverMessage: r(m))
        case let .notFound(repo, rev, p, m):
            return .notFound(repository: r(repo), revision: r(rev), path: r(p), serverMessage: r(m))
        case let .unreachable(u, reason): return .unreachable(url: r(u), reason: r(reason))
        case let .interrupted(p, got, exp, reason): return .interrupted(path: r(p), received: got, expected: exp, reason: r(reason))
        case let .diskFull(p): return .diskFull(path: r(p))
        case let .fileSystem(p, reason): return .fileSystem(path: r(p), reason: r(reason))
        case let .integrity(p, e, a): return .integrity(path: r(p), expected: r(e), actual: r(a))
        case let .badResponse(u, s, reason): return .badResponse(url: r(u), status: s, reason: r(reason))
        case let .notCached(repo, rev, c, m): return .notCached(repository: r(repo), revision: r(rev), cache: r(c), missing: r(m))
        }
    }
}
