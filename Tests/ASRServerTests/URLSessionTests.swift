// A client that shares nothing with Hummingbird: Foundation's URLSession over loopback, as a
// Python or curl client would talk to the service.

import ASR
@testable import ASRServer
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Hummingbird
import HummingbirdTesting
import Testing

@Suite struct URLSessionTests {
    func send(_ request: URLRequest) async throws -> (Int, [String: Any], String?) {
        let (data, response) = try await URLSession.shared.data(for: request)
        let http = try #require(response as? HTTPURLResponse)
        let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
        return (http.statusCode, json, http.value(forHTTPHeaderField: "X-Request-Id"))
    }

    @Test func asrAndErrorsOverURLSession() async throws {
        try await makeService().application().test(.live) { client in
            let base = "http://127.0.0.1:\(try #require(client.port))"
            var request = URLRequest(url: URL(string: base + "/asr")!)
            request.httpMethod = "POST"
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.httpBody = try JSONSerialization.data(withJSONObject: ["audio": base64WAV(2), "language": "hi"])
            let (status, json, id) = try await send(request)
            #expect(status == 200)
            #expect(json["text"] as? String == FakeEngine.text)
            #expect(json["duration"] as? Double == 2)
            #expect(id != nil)

            request.httpBody = Data("{\"audio\": 1}".utf8)
            let (badStatus, badJSON, badID) = try await send(request)
            #expect(badStatus == 400)
            #expect(badJSON["error_code"] as? String == "INVALID_PARAMETER_VALUE")
            #expect(badID != nil)

            let (healthStatus, health, _) = try await send(URLRequest(url: URL(string: base + "/health")!))
            #expect(healthStatus == 200)
            #expect(health["status"] as? String == "ok")
        }
    }
}
