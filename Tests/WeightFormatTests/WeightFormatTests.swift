// The weights file: writer/reader round trip and the reader's strict checks.

import Foundation
import Testing
@testable import WeightFormat

/// A fresh path in a per-test temporary folder.
func temporaryURL(_ name: String = "w.safetensors") -> URL {
    let dir = FileManager.default.temporaryDirectory
        .appendingPathComponent("vani-wf-\(UUID().uuidString)", isDirectory: true)
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.appendingPathComponent(name)
}

func bytes<T>(_ values: [T]) -> [UInt8] { values.withUnsafeBytes { Array($0) } }

/// A raw safetensors file from a literal header and data (to make damaged files).
func rawFile(header: String, data: [UInt8], at url: URL) throws {
    var out = [UInt8]()
    let h = Array(header.utf8)
    withUnsafeBytes(of: UInt64(h.count).littleEndian) { out.append(contentsOf: $0) }
    out += h + data
    try Data(out).write(to: url)
}

func expectError(_ expected: (WeightFormatError) -> Bool, _ body: () throws -> Void,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        try body()
        Issue.record("expected an error, got none", sourceLocation: sourceLocation)
    } catch {
        guard let error = error as? WeightFormatError else {
            Issue.record("not a WeightFormatError: \(error)", sourceLocation: sourceLocation); return
        }
        #expect(expected(error), "unexpected error: \(error)", sourceLocation: sourceLocation)
        #expect(error.description.hasSuffix("."), sourceLocation: sourceLocation)
    }
}

@Suite struct RoundTrip {
    @Test func writesAndReadsTensorsAndMetadata() throws {
        let url = temporaryURL()
        let a: [Float] = (0..<12).map { Float($0) * 0.5 - 2 }
        let b: [Float] = [1e-30, -3.25, .infinity]
        let ids: [Int64] = [7, -1]
        let meta = ["format": "vani", "format_version": "1", "vani.config": "{\"x\": \"ä\\n\"}"]
        try SafetensorsWriter.write(url: url, tensors: [
            (TensorDeclaration(name: "enc.a", dtype: .f32, shape: [3, 4]), bytes(a)),
            (TensorDeclaration(name: "ids", dtype: .i64, shape: [2]), bytes(ids)),
            (TensorDeclaration(name: "b \"quoted\"", dtype: .f32, shape: [3]), bytes(b)),
            (TensorDeclaration(name: "scalar", dtype: .f32, shape: []), bytes([Float(42)])),
        ], metadata: meta)

        let archive = try WeightsArchive(contentsOf: url)
        #expect(archive.metadata == meta)
        #expect(archive.dataStart % 64 == 0)
        #expect(archive.tensorNames == ["enc.a", "ids", "b \"quoted\"", "scalar"])
        #expect(archive.info("ids")?.dtype == .i64)
        #expect(archive.info("enc.a")?.dataOffsets == 0..<48)
        let wa = try archive.floats("enc.a", shape: [3, 4])
        #expect(Array(wa.array) == a)
        #expect(wa.count == 12)
        #expect(Array(try archive.floats("b \"quoted\"").array) == b)
        #expect(try archive.floats("scalar", shape: []).pointer.pointee == 42)
        #expect(Array(archive.rawBytes("ids")!) == bytes(ids))
        expectError({ if case .unsupportedDType(_, "ids", "I64") = $0 { true } else { false } }) {
            _ = try archive.floats("ids")
        }
        // No partial file is left behind.
        let left = try FileManager.default.contentsOfDirectory(atPath: url.deletingLastPathComponent().path)
        #expect(left == ["w.safetensors"])
    }

    @Test func borrowedViewsOutliveTheArchiveHandle() throws {
        let url = temporaryURL()
        let v: [Float] = [1, 2, 3, 4]
        try SafetensorsWriter.write(url: url, tensors: [(TensorDeclaration(name: "v", dtype: .f32, shape: [4]), bytes(v))],
                                    metadata: [:])
        var archive: WeightsArchive? = try WeightsArchive(contentsOf: url)
        let w = try archive!.floats("v", shape: [4])
        archive = nil
        #expect(Array(w.array) == v)
    }

    @Test func widensHalfAndBFloat() throws {
        let url = temporaryURL()
        // 1, -2, 65504 (max), 2^-24 (smallest subnormal), 2^-14 (smallest normal), +inf, -0
        let half: [UInt16] = [0x3C00, 0xC000, 0x7BFF, 0x0001, 0x0400, 0x7C00, 0x8000]
        let want: [Float] = [1, -2, 65504, 5.9604645e-08, 6.1035156e-05, .infinity, -0.0]
        let bf: [UInt16] = [0x3F80, 0xC0A0]          // 1, -5
        // An F16 tensor of odd length first leaves the F32 tensor after it misaligned.
        let odd: [UInt16] = [0x3C00]
        let f: [Float] = [3.5, -1]
        try SafetensorsWriter.write(url: url, tensors: [
            (TensorDeclaration(name: "h", dtype: .f16, shape: [7]), bytes(half)),
            (TensorDeclaration(name: "bf", dtype: .bf16, shape: [2]), bytes(bf)),
            (TensorDeclaration(name: "odd", dtype: .f16, shape: [1]), bytes(odd)),
            (TensorDeclaration(name: "f", dtype: .f32, shape: [2]), bytes(f)),
        ], metadata: [:])
        let archive = try WeightsArchive(contentsOf: url)
        let h = Array(try archive.floats("h", shape: [7]).array)
        #expect(h.map(\.bitPattern) == want.map(\.bitPattern))
        #expect(Array(try archive.floats("bf", shape: [2]).array) == [1, -5])
        #expect(Array(try archive.floats("f", shape: [2]).array) == f)   // misaligned: copied
        // NaN stays NaN.
        #expect(float16ToFloat(0x7E00).isNaN)
    }

    @Test func unusedNamesTrackFloatsCallsAcrossThreads() async throws {
        let url = temporaryURL()
        let names = (0..<64).map { "t\($0)" }
        try SafetensorsWriter.write(url: url, tensors: names.map {
            (TensorDeclaration(name: $0, dtype: .f32, shape: [2]), bytes([Float(1), 2]))
        }, metadata: [:])
        let archive = try WeightsArchive(contentsOf: url)
        #expect(archive.unusedNames() == names)
        _ = archive.info("t0"); _ = archive.rawBytes("t0")        // looking is not using
        #expect(archive.unusedNames().count == 64)
        await withTaskGroup(of: Void.self) { group in
            for name in names.dropLast(2) {
                group.addTask { _ = try? archive.floats(name, shape: [2]) }
            }
        }
        #expect(archive.unusedNames() == ["t62", "t63"])
        _ = try? archive.floats("t62", shape: [3])                  // a failed request is not a use
        #expect(archive.unusedNames() == ["t62", "t63"])
    }
}

@Suite struct StrictReader {
    func goodFile() throws -> URL {
        let url = temporaryURL()
        try SafetensorsWriter.write(url: url, tensors: [
            (TensorDeclaration(name: "a", dtype: .f32, shape: [2, 3]), bytes([Float](repeating: 1, count: 6))),
            (TensorDeclaration(name: "b", dtype: .f32, shape: [4]), bytes([Float](repeating: 2, count: 4))),
        ], metadata: ["format": "vani"])
        return url
    }

    @Test func wrongShapeRequest() throws {
        let archive = try WeightsArchive(contentsOf: try goodFile())
        expectError({ if case .shapeMismatch(_, "a", [3, 2], [2, 3]) = $0 { true } else { false } }) {
            _ = try archive.floats("a", shape: [3, 2])
        }
        expectError({ if case .missingTensor(_, "zzz") = $0 { true } else { false } }) {
            _ = try archive.floats("zzz", shape: [1])
        }
    }

    @Test func truncatedFiles() throws {
        let url = try goodFile()
        let full = try Data(contentsOf: url)
        for keep in [0, 5, 8, 20, full.count - 1] {
            try full.prefix(keep).write(to: url)
            expectError({ if case .truncated = $0 { true } else { false } }) {
                _ = try WeightsArchive(contentsOf: url)
            }
        }
    }

    @Test func missingFileAndDirectory() throws {
        let url = temporaryURL("absent.safetensors")
        expectError({ if case .cannotOpen = $0 { true } else { false } }) { _ = try WeightsArchive(contentsOf: url) }
        expectError({ if case .cannotOpen = $0 { true } else { false } }) {
            _ = try WeightsArchive(contentsOf: url.deletingLastPathComponent())
        }
    }

    @Test func corruptedHeader() throws {
        let url = try goodFile()
        var data = try Data(contentsOf: url)
        data[8] = UInt8(ascii: "[")                         // not an object
        try data.write(to: url)
        expectError({ if case .corruptHeader = $0 { true } else { false } }) { _ = try WeightsArchive(contentsOf: url) }
        data[8] = UInt8(ascii: "{"); data[12] = 0xFF         // invalid UTF-8 / JSON inside
        try data.write(to: url)
        expectError({ if case .corruptHeader = $0 { true } else { false } }) { _ = try WeightsArchive(contentsOf: url) }
        // A header length of garbage.
        var garbage = try Data(contentsOf: try goodFile())
        garbage.replaceSubrange(0..<8, with: [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F])
        try garbage.write(to: url)
        expectError({ if case .corruptHeader = $0 { true } else { false } }) { _ = try WeightsArchive(contentsOf: url) }
    }

    @Test func malformedEntries() throws {
        let url = temporaryURL()
        let data = [UInt8](repeating: 0, count: 8)
        let cases: [(String, String)] = [
            (#"{"a":{"dtype":"F99","shape":[2],"data_offsets":[0,8]}}"#, "unknown dtype"),
            (#"{"a":{"shape":[2],"data_offsets":[0,8]}}"#, "no dtype"),
            (#"{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, "shape"),
            (#"{"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}}"#, "shape"),
            (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}}"#, "data_offsets"),
            (#"{"a":[1,2]}"#, "not an object"),
        ]
        for (header, why) in cases {
            try rawFile(header: header, data: data, at: url)
            expectError({ if case .badEntry(_, "a", let r) = $0 { r.contains(why) } else { false } }) {
                _ = try WeightsArchive(contentsOf: url)
            }
        }
        try rawFile(header: #"{"__metadata__":{"k":1},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
                    data: data, at: url)
        expectError({ if case .corruptHeader = $0 { true } else { false } }) { _ = try WeightsArchive(contentsOf: url) }
    }

    @Test func offsetsOutsideTheFile() throws {
        let url = temporaryURL()
        try rawFile(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[10],"data_offsets":[8,48]}}"#,
                    data: [UInt8](repeating: 0, count: 16), at: url)
        expectError({ if case .truncated(_, _, let needed) = $0 { needed > 48 } else { false } }) {
            _ = try WeightsArchive(contentsOf: url)
        }
    }

    @Test func offsetsInconsistentOrWithHoles() throws {
        let url = temporaryURL()
        let data = [UInt8](repeating: 0, count: 16)
        let cases: [(String, String)] = [
            (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[12,4]}}"#, "b"),
            (#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#, "a"),
            (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, "b"),
            (#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#, "b"),
            (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, "a"),       // data left over
        ]
        for (header, tensor) in cases {
            try rawFile(header: header, data: data, at: url)
            expectError({ if case .badOffsets(_, tensor, _) = $0 { true } else { false } }) {
                _ = try WeightsArchive(contentsOf: url)
            }
        }
    }
}

@Suite struct Writer {
    @Test func rejectsMisuse() throws {
        let url = temporaryURL()
        let decl = [TensorDeclaration(name: "a", dtype: .f32, shape: [2]),
                    TensorDeclaration(name: "b", dtype: .f32, shape: [1])]
        let w = try SafetensorsWriter(url: url, tensors: decl, metadata: [:])
        let two: [Float] = [1, 2]
        expectError({ if case .writeFailed = $0 { true } else { false } }) {
            try two.withUnsafeBufferPointer { p in Result { () throws(WeightFormatError) in try w.write("b", floats: p) } }.get()
        }
        expectError({ if case .writeFailed = $0 { true } else { false } }) {
            try [Float(1)].withUnsafeBufferPointer { p in Result { () throws(WeightFormatError) in try w.write("a", floats: p) } }.get()
        }
        try two.withUnsafeBufferPointer { p in Result { () throws(WeightFormatError) in try w.write("a", floats: p) } }.get()
        #expect(w.nextTensor == "b")
        expectError({ if case .writeFailed = $0 { true } else { false } }) { try w.finish() }
        #expect(!FileManager.default.fileExists(atPath: url.path))
        expectError({ if case .writeFailed = $0 { true } else { false } }) {
            _ = try SafetensorsWriter(url: url, tensors: decl + decl, metadata: [:])
        }
    }

    @Test func droppedWriterLeavesNoFile() throws {
        let url = temporaryURL()
        do {
            _ = try SafetensorsWriter(url: url, tensors: [TensorDeclaration(name: "a", dtype: .f32, shape: [2])], metadata: [:])
        }
        let left = try FileManager.default.contentsOfDirectory(atPath: url.deletingLastPathComponent().path)
        #expect(left.isEmpty)
    }

    @Test func emptyFileIsValid() throws {
        let url = temporaryURL()
        try SafetensorsWriter.write(url: url, tensors: [], metadata: ["format": "vani"])
        let a = try WeightsArchive(contentsOf: url)
        #expect(a.tensorNames.isEmpty && a.metadata["format"] == "vani")
    }
}
