// The MLflow family: `POST /asr` (the MLflow PyFunc ASR service's own contract: one item or
// `items`) and `POST /invocations` (MLflow's scoring protocol: `dataframe_split`,
// `dataframe_records`, `instances`, `inputs`, with `params` as defaults).

import ASR
import Foundation
import Hummingbird

/// The routes the MLflow service had.
struct MLflowRoutes {
    let service: ASRService

    func addRoutes(to router: some RouterMethods<VaniRequestContext>) {
        router.post("/asr") { request, context in
            try await service.infer(request, context, accepting: .json) { body, scope, deadline throws(APIError) in
                try service.asr(body: body, scope: scope, deadline: deadline)
            }
        }
        router.post("/invocations") { request, context in
            try await service.infer(request, context, accepting: .json) { body, scope, deadline throws(APIError) in
                try service.invocations(body: body, scope: scope, deadline: deadline)
            }
        }
    }
}

extension ASRService {
    // MARK: - POST /asr

    func asr(body: ByteBuffer, scope: Scope, deadline: InferencePool.Deadline) throws(APIError) -> Reply {
        guard case .object(let object) = try JSONValue.parse(body) else {
            throw APIError(.badRequest, status: .badRequest,
                           "the body must be a JSON object with 'audio' and 'language' (or 'items': [...])")
        }
        if let itemsValue = object["items"] {
            let defaults = try RequestFields.defaults(object, inherited: requestDefaults)
            let items = try batchItems(itemsValue, field: "items", defaults: defaults)
            let batch = try results(items, scope: scope, deadline: deadline)
            return tagged(.json(BatchResponse(results: batch.outcomes)), model: batch.model)
        }
        let item = try RequestFields.item(object, defaults: requestDefaults)
        let model = try loaded(try modelHost(item.model, lenient: false), scope)
        let (answer, cache) = try result(item, model: model, scope: scope, isCancelled: { deadline.isExpired }).get()
        return tagged(.json(answer), model: model, cache: cache)
    }

    func batchItems(_ value: JSONValue, field: String, defaults: RequestDefaults) throws(APIError) -> [ParsedItem] {
        guard case .array(let values) = value else {
            throw APIError.wrongType(field, expected: "an array of objects, not \(value.kind)")
        }
        guard !values.isEmpty else { throw APIError.invalid("field '\(field)' is empty: send at least one item") }
        guard values.count <= configuration.maxBatchItems else {
            throw APIError.invalid("field '\(field)' has \(values.count) items; the limit is \(configuration.maxBatchItems) per request")
        }
        return values.enumerated().map { index, value in
            let path = "\(field)[\(index)]."
            guard case .object(let object) = value else {
                return .failure(.wrongType("\(field)[\(index)]", expected: "an object, not \(value.kind)"))
            }
            do throws(APIError) {
                return .success(try RequestFields.item(object, defaults: defaults, path: path))
            } catch {
                return .failure(error)
            }
        }
    }

    // MARK: - POST /invocations (MLflow scoring protocol)

    static let invocationKeys = ["dataframe_split", "dataframe_records", "instances", "inputs"]

    func invocations(body: ByteBuffer, scope: Scope, deadline: InferencePool.Deadline) throws(APIError) -> Reply {
        guard case .object(let object) = try JSONValue.parse(body) else {
            throw invocationFormatError()
        }
        let present = Self.invocationKeys.filter { object[$0] != nil }
        guard present.count == 1, let key = present.first, let payload = object[key] else { throw invocationFormatError() }
        // A top-level `model` (beside the data) or `params.model` picks the model.
        var defaults = requestDefaults
        if let model = try RequestFields.modelName(object, path: "") { defaults.model = model }
        if let params = object["params"], params != .null {
            guard case .object(let paramsObject) = params else { throw APIError.wrongType("params", expected: "an object") }
            defaults = try RequestFields.defaults(paramsObject, path: "params.", inherited: defaults)
        }
        let rows = try invocationRows(payload, key: key)
        guard !rows.isEmpty else { throw APIError.invalid("field '\(key)' holds no rows: send at least one") }
        guard rows.count <= configuration.maxBatchItems else {
            throw APIError.invalid("'\(key)' has \(rows.count) rows; the limit is \(configuration.maxBatchItems) per request")
        }
        let items: [ParsedItem] = rows.enumerated().map { index, row in
            do throws(APIError) {
                return .success(try RequestFields.item(row, defaults: defaults, path: "\(key)[\(index)]."))
            } catch {
                return .failure(error)
            }
        }
        // One row: its error is the request's error, as MLflow's scoring server answers.
        if items.count == 1, case .failure(let error) = items[0] { throw error }
        let batch = try results(items, scope: scope, deadline: deadline, inBatch: items.count > 1)
        if batch.outcomes.count == 1, case .failure(let error) = batch.outcomes[0] { throw error }
        // One row is one transcription: its cache status goes in the header, as on /asr.
        return tagged(.json(PredictionsResponse(predictions: batch.outcomes)), model: batch.model,
                      cache: items.count == 1 ? batch.cache[0] : nil)
    }

    func invocationFormatError() -> APIError {
        APIError(.badRequest, status: .badRequest,
                 "the body must be a JSON object with exactly one of 'dataframe_split', 'dataframe_records', 'instances' or 'inputs'")
    }

    /// Rows of the four MLflow input formats, as objects with the item fields.
    func invocationRows(_ payload: JSONValue, key: String) throws(APIError) -> [[String: JSONValue]] {
        switch (key, payload) {
        case ("dataframe_split", .object(let split)):
            guard case .array(let columnValues)? = split["columns"], case .array(let data)? = split["data"] else {
                throw APIError.invalid("'dataframe_split' needs 'columns' (array of names) and 'data' (array of rows)")
            }
            var columns: [String] = []
            for value in columnValues {
                guard case .string(let name) = value else { throw APIError.wrongType("dataframe_split.columns", expected: "an array of strings") }
                columns.append(name)
            }
            var rows: [[String: JSONValue]] = []
            for (index, row) in data.enumerated() {
                guard case .array(let cells) = row, cells.count == columns.count else {
                    throw APIError.invalid("dataframe_split.data[\(index)] must be an array of \(columns.count) values (one per column)")
                }
                rows.append(Dictionary(zip(columns, cells), uniquingKeysWith: { first, _ in first }))
            }
            return rows
        case ("dataframe_records", .array(let records)), ("instances", .array(let records)), ("inputs", .array(let records)):
            return try records.enumerated().map { (index, record) throws(APIError) -> [String: JSONValue] in
                switch record {
                case .object(let row): return row
                case .string: return ["audio": record]   // a bare list of base64 clips
                default: throw APIError.wrongType("\(key)[\(index)]", expected: "an object, not \(record.kind)")
                }
            }
        case ("inputs", .object(let columns)), ("instances", .object(let columns)):
            // Columnar: {"audio": [...], "language": [...]} (or scalars for a single row).
            let lengths = Set(columns.values.compactMap { if case .array(let a) = $0 { a.count } else { nil } })
            if lengths.isEmpty { return [columns] }
            guard lengths.count == 1, let count = lengths.first else {
                throw APIError.invalid("the columns of '\(key)' have different lengths: send one value per row in each")
            }
            return (0..<count).map { row in
                columns.mapValues { if case .array(let values) = $0 { values[row] } else { $0 } }
            }
        default:
            throw APIError.wrongType(key, expected: key == "dataframe_split" ? "an object" : "an array of objects")
        }
    }
}
