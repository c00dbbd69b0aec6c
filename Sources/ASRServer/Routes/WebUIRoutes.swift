// The browser page: `GET /` (and `/ui`) serves a single page that drives the service's own API
// (upload, microphone, word timestamps, subtitles). Everything ships in the binary as string
// literals (WebUI/WebUI+Page.swift, WebUI/WebUI+Script.swift): no files read at run time, no
// build step, nothing fetched from third parties.
//
// The page holds no secrets, so its paths answer without an API key; the API calls it makes
// send the key the user types (kept in sessionStorage). A strict Content-Security-Policy forbids
// inline scripts and styles, so the script, the style sheet and the AudioWorklet module each have
// their own path. The 404/405 table picks the paths up from the router like any other route.

import Hummingbird

/// The browser page's paths, bodies and security headers.
enum WebUI {
    /// One served file: its path, media type and bytes.
    struct Asset: Sendable {
        let path: String
        let contentType: String
        let body: ByteBuffer
    }

    /// Every UI path, in the order they are registered.
    static let assets: [Asset] = [
        Asset(path: "/", contentType: "text/html; charset=utf-8", body: ByteBuffer(string: page)),
        Asset(path: "/ui", contentType: "text/html; charset=utf-8", body: ByteBuffer(string: page)),
        Asset(path: "/ui/app.css", contentType: "text/css; charset=utf-8", body: ByteBuffer(string: styleSheet)),
        Asset(path: "/ui/app.js", contentType: "text/javascript; charset=utf-8", body: ByteBuffer(string: script)),
        Asset(path: "/ui/recorder-worklet.js", contentType: "text/javascript; charset=utf-8",
              body: ByteBuffer(string: recorderWorklet)),
        Asset(path: "/ui/icon.svg", contentType: "image/svg+xml", body: ByteBuffer(string: icon)),
    ]

    /// Every UI path.
    static let paths: Set<String> = Set(assets.map(\.path))

    /// Same-origin only; no inline code. `blob:` media lets the page play the file it uploads or
    /// the recording it made; `connect-src 'self'` covers the API calls (and a same-origin
    /// WebSocket, should the service offer one).
    static let contentSecurityPolicy = [
        "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self'",
        "media-src 'self' blob:", "connect-src 'self'", "font-src 'self'", "object-src 'none'",
        "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'",
    ].joined(separator: "; ")

    /// Headers on every UI response.
    static func headers(contentType: String) -> HTTPFields {
        var fields = HTTPFields()
        fields[.contentType] = contentType
        fields[.contentSecurityPolicy] = contentSecurityPolicy
        fields[.contentTypeOptions] = "nosniff"
        fields[.referrerPolicy] = "no-referrer"
        fields[.frameOptions] = "DENY"
        fields[.permissionsPolicy] = "microphone=(self), camera=(), geolocation=()"
        // The page changes with the binary: let the browser revalidate rather than guess.
        fields[.cacheControl] = "no-cache"
        return fields
    }
}

extension HeaderName {
    static let contentSecurityPolicy = HeaderName("Content-Security-Policy")!
    static let contentTypeOptions = HeaderName("X-Content-Type-Options")!
    static let referrerPolicy = HeaderName("Referrer-Policy")!
    static let frameOptions = HeaderName("X-Frame-Options")!
    static let permissionsPolicy = HeaderName("Permissions-Policy")!
}

/// The page and its files, registered only when `configuration.webUI` is on.
struct WebUIRoutes {
    let service: ASRService

    func addRoutes(to router: some RouterMethods<VaniRequestContext>) {
        for asset in WebUI.assets {
            let headers = WebUI.headers(contentType: asset.contentType)
            router.get(RouterPath(asset.path)) { _, _ in
                Response(status: .ok, headers: headers, body: .init(byteBuffer: asset.body))
            }
        }
    }
}

extension ASRService {
    /// Whether `path` answers without an API key: the probes, and the page when it is on (the
    /// router serves `/ui/` as `/ui`, so a trailing slash is open too).
    func isOpen(_ path: String) -> Bool {
        if Self.openPaths.contains(path) { return true }
        guard configuration.webUI else { return false }
        let trimmed = path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
        return WebUI.paths.contains(trimmed)
    }
}
