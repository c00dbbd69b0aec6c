// The settings huggingface_hub reads from the environment, read the same way, so that a cache
// and a token shared with Python tools are found where those tools put them.

import Foundation

/// Where the hub is, where its cache lives and whether the network may be used: huggingface_hub's
/// environment variables, with the same defaults.
public struct HubEnvironment: Sendable {
    /// The hub's base URL without a trailing slash: `HF_ENDPOINT`, else `https://huggingface.co`.
    public var endpoint: String
    /// The cache root: `HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`
    /// (`$XDG_CACHE_HOME/huggingface/hub` when `XDG_CACHE_HOME` is set).
    public var cacheDirectory: URL
    /// `HF_HUB_OFFLINE` is 1/true/yes/on: use the cache only, never the network.
    public var offline: Bool
    /// The file `huggingface-cli login` writes: `HF_TOKEN_PATH`, else `$HF_HOME/token`.
    public var loginTokenFile: URL
    /// `HF_TOKEN` when set and not empty.
    var tokenVariable: String?

    /// Reads the settings from `environment` (default: the process's).
    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        func value(_ key: String) -> String? {
            guard let v = environment[key]?.trimmingCharacters(in: .whitespacesAndNewlines), !v.isEmpty else { return nil }
            return v
        }
        let home = value("HOME").map { URL(fileURLWithPath: $0) } ?? FileManager.default.homeDirectoryForCurrentUser
        func expand(_ path: String) -> URL {
            if path == "~" || path.hasPrefix("~/") {
                return home.appendingPathComponent(String(path.dropFirst(2)))
            }
            return URL(fileURLWithPath: path)
        }
        var endpoint = value("HF_ENDPOINT") ?? "https://huggingface.co"
        while endpoint.hasSuffix("/") { endpoint.removeLast() }
        self.endpoint = endpoint
        let hfHome = value("HF_HOME").map(expand)
            ?? (value("XDG_CACHE_HOME").map(expand) ?? home.appendingPathComponent(".cache"))
                .appendingPathComponent("huggingface")
        cacheDirectory = value("HF_HUB_CACHE").map(expand) ?? hfHome.appendingPathComponent("hub")
        loginTokenFile = value("HF_TOKEN_PATH").map(expand) ?? hfHome.appendingPathComponent("token")
        offline = ["1", "true", "yes", "on"].contains(value("HF_HUB_OFFLINE")?.lowercased() ?? "")
        tokenVariable = value("HF_TOKEN")
    }
}

/// A hub access token. It is printed nowhere: `description` names only where it came from.
public struct HubToken: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The secret, sent only as `Authorization: Bearer …` to the hub's own host.
    let secret: String
    /// Where the token was found (`--token-file PATH`, `HF_TOKEN`, the login file), for messages.
    public let source: String

    /// A token given directly (tests, embedding); `source` is what messages call it.
    public init(_ secret: String, source: String) {
        self.secret = secret
        self.source = source
    }

    /// `token from <source>`: never the secret.
    public var description: String { "token from \(source)" }
    /// The same as `description`, so that `debugPrint` and `dump` do not show the secret either.
    public var debugDescription: String { description }
    /// Only `source`: `dump` and debuggers do not show the secret.
    public var customMirror: Mirror { Mirror(self, children: ["source": source]) }

    /// Finds the token: `tokenFile` (an explicit `--token-file`), else `HF_TOKEN`, else the
    /// login file (`HF_TOKEN_PATH`, else `$HF_HOME/token`); nil when none is set.
    /// - Throws: `HubError.tokenFile` when the explicit file cannot be read or is empty (a missing
    ///   login file is not an error: public repositories need no token).
    public static func find(tokenFile: String?, environment: HubEnvironment) throws(HubError) -> HubToken? {
        if let tokenFile {
            return try read(URL(fileURLWithPath: tokenFile), source: "--token-file \(tokenFile)", required: true)
        }
        if let secret = environment.tokenVariable { return HubToken(secret, source: "HF_TOKEN") }
        return try read(environment.loginTokenFile, source: "the login file \(environment.loginTokenFile.path)",
                        required: false)
    }

    private static func read(_ url: URL, source: String, required: Bool) throws(HubError) -> HubToken? {
        guard FileManager.default.fileExists(atPath: url.path) else {
            if required { throw .tokenFile(path: url.path, reason: "it does not exist") }
            return nil
        }
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw .tokenFile(path: url.path, reason: "it cannot be read (\(errnoReason(error)))")
        }
        // The file holds the token alone; surrounding white space and a final newline are common.
        let secret = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !secret.isEmpty else {
            if required { throw .tokenFile(path: url.path, reason: "it is empty") }
            return nil
        }
        guard !secret.contains(where: { $0.isWhitespace || $0.isNewline }) else {
            // Never quote the content: it may be the token with a typo.
            throw .tokenFile(path: url.path, reason: "it holds more than one word")
        }
        return HubToken(secret, source: source)
    }
}

/// A short reason for a Foundation file error (never its full dump).
func errnoReason(_ error: any Error) -> String {
    let ns = error as NSError
    if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
        return String(cString: strerror(Int32(underlying.code)))
    }
    if ns.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(ns.code))) }
    return ns.localizedDescription
}
