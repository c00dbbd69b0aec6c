// The MLflow scoring protocol: POST /invocations in its four input formats.

import ASR
@testable import ASRServer
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

@Suite struct InvocationsTests {
    func invoke(_ client: some TestClientProtocol, _ object: [String: Any]) async throws -> TestResponse {
        try await client.execute(uri: "/invocations", method: .post, headers: .json, body: jsonBody(object))
    }

    func durations(_ response: TestResponse) -> [Double?] {
        ((response.json["predictions"] as? [[String: Any]]) ?? []).map { $0["duration"] as? Double }
    }

    @Test func dataframeRecords() async throws {
        try await makeService().application().test(.router) { client in
            let response = try await invoke(client, ["dataframe_records": [
                ["audio": base64WAV(1), "language": "hi"],
                ["audio_base64": base64WAV(2), "lang": "ta", "decoding": "rnnt", "timestamps": 1],
            ]])
            #expect(response.status == .ok)
            let predictions = try #require(response.json["predictions"] as? [[String: Any]])
            #expect(predictions.count == 2)
            #expect(predictions[0]["text"] as? String == FakeEngine.text)
            #expect(predictions[1]["language"] as? String == "ta")
            #expect(predictions[1]["decoding"] as? String == "rnnt")
            #expect(predictions[1]["words"] != nil)
            #expect(durations(response) == [1, 2])
        }
    }

    @Test func dataframeSplit() async throws {
        try await makeService().application().test(.router) { client in
            let response = try await invoke(client, ["dataframe_split": [
                "columns": ["audio", "language"],
                "data": [[base64WAV(1), "hi"], [base64WAV(3), "bn"]],
                "index": [0, 1],
            ]])
            #expect(response.status == .ok)
            #expect(durations(response) == [1, 3])
        }
    }

    @Test func instancesAndInputs() async throws {
        try await makeService().application().test(.router) { client in
            let instances = try await invoke(client, ["instances": [["audio": base64WAV(1), "language": "hi"]]])
            #expect(instances.status == .ok)
            #expect(durations(instances) == [1])

            // Columnar inputs, with params as defaults for every row.
            let columnar = try await invoke(client, [
                "inputs": ["audio": [base64WAV(1), base64WAV(2)]],
                "params": ["language": "hi", "decoding": "rnnt"],
            ])
            #expect(columnar.status == .ok)
            #expect(durations(columnar) == [1, 2])
            let predictions = columnar.json["predictions"] as? [[String: Any]] ?? []
            #expect(predictions.allSatisfy { $0["decoding"] as? String == "rnnt" })

            // A single row as scalars, and a bare list of clips.
            let scalar = try await invoke(client, ["inputs": ["audio": base64WAV(1), "language": "ta"]])
            #expect(durations(scalar) == [1])
            let bare = try await invoke(client, ["inputs": [base64WAV(1), base64WAV(2)], "params": ["language": "hi"]])
            #expect(durations(bare) == [1, 2])
        }
    }

    @Test func rowErrorsInPlaceAndSingleRowErrorsAsStatus() async throws {
        try await makeService().application().test(.router) { client in
            let mixed = try await invoke(client, ["dataframe_records": [
                ["audio": base64WAV(1), "language": "hi"],
                ["audio": base64WAV(1), "language": "zz"],
            ]])
            #expect(mixed.status == .ok)
            let predictions = try #require(mixed.json["predictions"] as? [[String: Any]])
            #expect(predictions[0]["text"] as? String == FakeEngine.text)
            #expect(predictions[1]["error_code"] as? String == "INVALID_PARAMETER_VALUE")

            let single = try await invoke(client, ["dataframe_records": [["audio": base64WAV(1), "language": "zz"]]])
            expectError(single, .badRequest, "INVALID_PARAMETER_VALUE", containing: "unknown language")
            let badAudio = try await invoke(client, ["instances": [["audio": Data("nope".utf8).base64EncodedString(), "language": "hi"]]])
            expectError(badAudio, .unprocessableContent, "INVALID_PARAMETER_VALUE")
        }
    }

    @Test func malformedInvocations() async throws {
        try await makeService().application().test(.router) { client in
            expectError(try await invoke(client, ["audio": base64WAV(), "language": "hi"]), .badRequest, "BAD_REQUEST",
                        containing: "dataframe_split")
            expectError(try await invoke(client, ["instances": [] as [Any], "inputs": [] as [Any]]), .badRequest, "BAD_REQUEST")
            expectError(try await invoke(client, ["dataframe_records": [] as [Any]]), .badRequest, "INVALID_PARAMETER_VALUE")
            expectError(try await invoke(client, ["dataframe_records": "x"]), .badRequest, "INVALID_PARAMETER_VALUE")
            expectError(try await invoke(client, ["dataframe_records": [5]]), .badRequest, "INVALID_PARAMETER_VALUE")
            expectError(try await invoke(client, ["dataframe_split": ["columns": ["audio"], "data": [[1, 2]]]]), .badRequest,
                        "INVALID_PARAMETER_VALUE", containing: "one per column")
            expectError(try await invoke(client, ["inputs": ["audio": [base64WAV()], "language": ["hi", "ta"]]]), .badRequest,
                        "INVALID_PARAMETER_VALUE", containing: "different lengths")
            expectError(try await invoke(client, ["instances": [["language": "hi"]]]), .badRequest, "INVALID_PARAMETER_VALUE",
                        containing: "missing field 'instances[0].audio'")
            expectError(try await invoke(client, ["instances": [["audio": base64WAV()]], "params": "hi"]), .badRequest,
                        "INVALID_PARAMETER_VALUE", containing: "params")
            let notJSON = try await client.execute(uri: "/invocations", method: .post, headers: .json, body: ByteBuffer(string: "{,}"))
            expectError(notJSON, .badRequest, "BAD_REQUEST")
        }
    }
}
