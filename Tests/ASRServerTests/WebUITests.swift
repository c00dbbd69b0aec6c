// The browser page: served from the binary at / and /ui with a strict CSP, its script and
// worklet as JavaScript, open without the API key, gone with --no-ui. (The page itself is driven
// in a real browser by Tests/Browser/browser_test.py, which `make test` runs.)

@testable import ASRServer
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

@Suite struct WebUITests {
    static let javaScriptPaths = ["/ui/app.js", "/ui/recorder-worklet.js"]

    func expectUIHeaders(_ response: TestResponse, contentType: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(response.status == .ok, "body: \(response.text.prefix(200))", sourceLocation: sourceLocation)
        #expect(response.headers[.contentType] == contentType, sourceLocation: sourceLocation)
        #expect(response.headers[header("X-Content-Type-Options")] == "nosniff", sourceLocation: sourceLocation)
        let csp = response.headers[header("Content-Security-Policy")] ?? ""
        for directive in ["default-src 'self'", "script-src 'self'", "style-src 'self'", "media-src 'self' blob:",
                          "connect-src 'self'", "frame-ancestors 'none'"] {
            #expect(csp.contains(directive), "CSP lacks \(directive): \(csp)", sourceLocation: sourceLocation)
        }
        #expect(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), sourceLocation: sourceLocation)
    }

    @Test(arguments: ["/", "/ui"])
    func pageIsHTMLWithCSP(path: String) async throws {
        try await makeService().application().test(.router) { client in
            let response = try await client.execute(uri: path, method: .get)
            expectUIHeaders(response, contentType: "text/html; charset=utf-8")
            let html = response.text
            #expect(html.hasPrefix("<!doctype html>"))
            #expect(html.contains(#"<script src="/ui/app.js" defer></script>"#))
            #expect(html.contains(#"<link rel="stylesheet" href="/ui/app.css">"#))
            // The CSP forbids inline code: no script body, no style element or attribute, no handlers.
            #expect(html.components(separatedBy: "<script").count == 2)
            #expect(!html.contains("<script>") && !html.contains("<style") && !html.contains(" style=")
                    && !html.contains(" onclick="))
            // Nothing from another origin.
            #expect(!html.contains("http://") && !html.contains("https://") && !html.contains("//cdn"))
            #expect(html.contains(#"aria-live="polite""#) && html.contains(#"role="status""#))
        }
    }

    @Test(arguments: javaScriptPaths)
    func scriptsAreJavaScript(path: String) async throws {
        try await makeService().application().test(.router) { client in
            let response = try await client.execute(uri: path, method: .get)
            expectUIHeaders(response, contentType: "text/javascript; charset=utf-8")
            #expect(response.text.hasPrefix("'use strict';"))
            #expect(!response.text.contains("http://") && !response.text.contains("https://"))
        }
    }

    @Test func workletRegistersTheRecorder() async throws {
        try await makeService().application().test(.router) { client in
            let worklet = try await client.execute(uri: "/ui/recorder-worklet.js", method: .get).text
            #expect(worklet.contains("registerProcessor('vani-recorder'"))
            let app = try await client.execute(uri: "/ui/app.js", method: .get).text
            #expect(app.contains("addModule('/ui/recorder-worklet.js')"))
            #expect(app.contains("'vani-recorder'"))
        }
    }

    @Test func styleSheetAndIcon() async throws {
        try await makeService().application().test(.router) { client in
            let css = try await client.execute(uri: "/ui/app.css", method: .get)
            expectUIHeaders(css, contentType: "text/css; charset=utf-8")
            #expect(css.text.contains("Noto Sans Devanagari") && css.text.contains("Noto Sans Tamil")
                    && css.text.contains("Noto Sans Bengali"))
            let icon = try await client.execute(uri: "/ui/icon.svg", method: .get)
            expectUIHeaders(icon, contentType: "image/svg+xml")
            let head = try await client.execute(uri: "/", method: .head)
            #expect(head.status == .ok && head.body.readableBytes == 0)
        }
    }

    @Test func openWithoutTheAPIKeyButTheAPIIsNot() async throws {
        let service = makeService { $0.apiKey = "s3cret" }
        try await service.application().test(.router) { client in
            for path in WebUI.paths.sorted() {
                #expect(try await client.execute(uri: path, method: .get).status == .ok, "\(path)")
            }
            expectError(try await client.execute(uri: "/asr", method: .post, headers: .json,
                                                 body: jsonBody(["audio": base64WAV(), "language": "hi"])),
                        .unauthorized, "UNAUTHENTICATED")
            #expect(try await client.execute(uri: "/ui/", method: .get).status == .ok)
            expectError(try await client.execute(uri: "/ui/secret", method: .get), .unauthorized, "UNAUTHENTICATED")
            // A page path with a method it does not answer: 405, and the key is not asked for.
            expectError(try await client.execute(uri: "/ui", method: .post), .methodNotAllowed, "METHOD_NOT_ALLOWED")
        }
    }

    @Test func noUIGivesNotFound() async throws {
        try await makeService { $0.webUI = false }.application().test(.router) { client in
            for path in WebUI.paths.sorted() {
                expectError(try await client.execute(uri: path, method: .get), .notFound, "ENDPOINT_NOT_FOUND")
            }
            #expect(try await client.execute(uri: "/health", method: .get).status == .ok)
        }
        // With a key and no page, the page paths are as closed as any unknown path.
        try await makeService { $0.webUI = false; $0.apiKey = "k" }.application().test(.router) { client in
            expectError(try await client.execute(uri: "/", method: .get), .unauthorized, "UNAUTHENTICATED")
        }
    }

    @Test func onByDefault() {
        #expect(ServerConfiguration().webUI)
    }

    @Test func theRouteTableHasThePageOnlyWhenItIsOn() {
        let on = makeService()
        _ = on.router()
        for path in WebUI.paths {
            #expect(on.routeTable.allowed(path) == ["GET", "HEAD"], "\(path)")
        }
        #expect(on.routeTable.allowed("/asr") == ["POST"])
        let off = makeService { $0.webUI = false }
        _ = off.router()
        #expect(WebUI.paths.allSatisfy { off.routeTable.allowed($0) == nil })
    }

    @Test func pageOverLoopback() async throws {
        try await makeService { $0.apiKey = "k" }.application().test(.live) { client in
            let page = try await client.execute(uri: "/", method: .get)
            expectUIHeaders(page, contentType: "text/html; charset=utf-8")
            let worklet = try await client.execute(uri: "/ui/recorder-worklet.js", method: .get)
            expectUIHeaders(worklet, contentType: "text/javascript; charset=utf-8")
        }
    }
}
