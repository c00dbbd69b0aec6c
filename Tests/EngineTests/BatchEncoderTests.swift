// The CPU encoder over a batch (issue 16): every utterance of a batch gets bit for bit the
// encoder output, and so the tokens and transcript, it gets alone — for batches of 1…8 clips of
// different lengths (1 to 22 s, so some batches span several runs of ≤ 512 rows), on both fixture
// models, in fp32, bf16 and int8, on one thread and two, and with every fp32 product forced onto
// OpenBLAS (the kernel machines without AVX-512 take).

import ASR
import Backend
import ConformerModel
import Decoding
import Foundation
import Frontend
import TensorModule
import Testing
import VaniTestSupport

/// Runs `body` on a thread of its own and hands back its result.
private func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        let thread = Thread { continuation.resume(returning: body()) }
        thread.stackSize = 8 << 20
        thread.start()
    }
}

/// Exact equality of two encoder outputs, by Float bit pattern; the first differing element.
private func firstDifference(_ a: Tensor, _ b: Tensor) -> String? {
    guard a.shape == b.shape else { return "shape \(a.shape) vs \(b.shape)" }
    for i in 0..<a.count where a.pointer[i].bitPattern != b.pointer[i].bitPattern {
        return "element \(i) of \(a.count): \(a.pointer[i]) vs \(b.pointer[i])"
    }
    return nil
}

@Suite("Batched CPU encoder: each item equals its own run", .serialized)
struct BatchEncoderTests {
    static let precisions: [Precision] = [.fp32, .bf16, .int8]
    static let cases: [(String, Precision)] = ConvertedModels.variants.flatMap { v in precisions.map { (v, $0) } }

    /// The clips' decoded audio (the model's rate), in `ConvertedModels.clips` order.
    static func audio(_ recognizer: Recognizer) throws -> [PreparedAudio] {
        try ConvertedModels.clips.map { clip in
            try recognizer.decodeAudio(Data(contentsOf: Fixtures.url("clips/\(clip).wav")))
        }
    }

    /// Batches of 1…8 clips, each size starting at another clip, with repeats past the seventh.
    static func batches(of count: Int) -> [[Int]] {
        (1...8).map { size in (0..<size).map { (size + $0) % count } }
    }

    /// Every comparison of one model and precision (outputs by bit pattern, tokens of every
    /// decoder), on 1 and 2 threads: how many items were compared, and what differed.
    static func compare(_ recognizer: Recognizer, features: [Features],
                        decoders: [Decoder]) -> (compared: Int, failures: [String]) {
        var compared = 0
        var failures: [String] = []
        for threads in [1, 2] {
            let singles = Parallel.withThreads(threads) { features.map { recognizer.encode($0) } }
            if Set(singles.map { $0.shape[0] }).count != features.count { failures.append("the clips do not differ in length") }
            for batch in batches(of: features.count) {
                let encoded = Parallel.withThreads(threads) { recognizer.backend.encode(batch.map { features[$0] }) }
                if encoded.count != batch.count { failures.append("batch \(batch): \(encoded.count) outputs") }
                for (item, clip) in zip(encoded, batch) {
                    compared += 1
                    if let difference = firstDifference(item, singles[clip]) {
                        failures.append("\(threads) thread(s), batch \(batch), clip \(ConvertedModels.clips[clip]): \(difference)")
                    }
                    for decoder in decoders where decoder.decode(item.pointer, frames: item.shape[0])
                        != decoder.decode(singles[clip].pointer, frames: singles[clip].shape[0]) {
                        failures.append("\(threads) thread(s), batch \(batch), clip \(clip): \(decoder.kind.rawValue) tokens differ")
                    }
                }
                // The backend's own batched recognize, once per thread count (the widest batch).
                guard batch.count == 8 else { continue }
                for decoder in decoders {
                    let batched = Parallel.withThreads(threads) {
                        recognizer.backend.recognize(batch.map { features[$0] }, decoder: decoder)
                    }
                    let alone = batch.map { decoder.decode(singles[$0].pointer, frames: singles[$0].shape[0]) }
                    if batched != alone { failures.append("\(threads) thread(s): recognize(\(decoder.kind.rawValue)) of batch \(batch)") }
                }
            }
        }
        return (compared, failures)
    }

    // The long comparisons run on a thread of their own, not on the Swift cooperative pool
    // (two threads on a 2-core machine): the service's timing tests running beside them need it.

    @Test("encoder output and tokens bit-exact for batches of 1…8", arguments: cases)
    func batchEqualsSingles(variant: String, precision: Precision) async throws {
        let url = try #require(ConvertedModels.urls[variant])
        let recognizer = try Recognizer(modelURL: url, options: RecognizerOptions(precision: precision))
        let features = try Self.audio(recognizer).map { recognizer.features($0.samples) }
        let language = try recognizer.language(try #require(recognizer.info.languages.first))
        let decoders = try recognizer.info.decoders.map { try recognizer.decoder($0, for: language) }
        let (compared, failures) = await onOwnThread { Self.compare(recognizer, features: features, decoders: decoders) }
        #expect(compared == 2 * (1...8).reduce(0, +), "every item of every batch compared")
        #expect(failures.isEmpty, "\(variant) \(precision.rawValue): \(failures.prefix(5))")
    }

    @Test("fp32 products forced onto OpenBLAS: still bit-exact", arguments: ConvertedModels.variants)
    func openBLASOnly(variant: String) async throws {
        let recognizer = try ConvertedModels.recognizer(variant)
        let features = try Self.audio(recognizer).map { recognizer.features($0.samples) }
        // The forced path is per thread: one thread, so every product starts on this one.
        let failures = await onOwnThread { () -> [String] in
            Parallel.withThreads(1) {
                BLAS.withOpenBLASOnly {
                    let singles = features.map { recognizer.encode($0) }
                    let order = Array(features.indices) + features.indices.reversed()
                    let encoded = recognizer.backend.encode(order.map { features[$0] })
                    return zip(encoded, order).compactMap { item, clip in
                        firstDifference(item, singles[clip]).map { "clip \(ConvertedModels.clips[clip]): \($0)" }
                    } + (encoded.count == order.count ? [] : ["\(encoded.count) outputs for \(order.count)"])
                }
            }
        }
        #expect(failures.isEmpty, "\(variant) OpenBLAS: \(failures)")
    }

    @Test("Recognizer.transcribe(batch:) equals each item's own transcript",
          arguments: ConvertedModels.variants)
    func recognizerBatch(variant: String) async throws {
        let recognizer = try ConvertedModels.recognizer(variant)
        let audio = try Self.audio(recognizer)
        let codes = recognizer.info.languages
        var items: [Recognizer.BatchItem] = []
        for (i, clip) in audio.enumerated() {
            let language = try recognizer.language(codes[i % codes.count])
            let decoder = recognizer.info.decoders[i % recognizer.info.decoders.count]
            items.append(.init(audio: clip, language: language, decoder: decoder))
        }
        // Past the model's 30 s window: cut into windows, so it runs alone within the batch.
        var long = audio[audio.count - 1]
        long.samples = long.samples + long.samples                          // 44 s
        items.append(.init(audio: long, language: try recognizer.language(codes[0]), decoder: .ctc))
        let batchItems = items
        let (results, alone) = await onOwnThread {
            (recognizer.transcribe(batch: batchItems), batchItems.map { item in
                Result { () throws(RecognizerError) in
                    try recognizer.transcribe(decoded: item.audio, language: item.language, decoder: item.decoder)
                }
            })
        }
        #expect(results.count == items.count)
        for (result, own) in zip(results, alone) {
            #expect(try result.get() == own.get())
        }
    }

    @Test func rowRunsKeepEachUtteranceOnItsKernel() {
        let runs = RowRuns(counts: [63, 63, 1, 200, 300, 600, 12, 500, 13], maxRunRows: 512)
        #expect(runs.segments.map(\.count) == [63, 63, 1, 200, 300, 600, 12, 500, 13])
        #expect(runs.rows == 1752)
        // 63 + 63 | 1 alone (sgemv) | 200 + 300 | 600 alone (past 512) | 12 + 500 | 13
        #expect(runs.runs == [0..<126, 126..<127, 127..<627, 627..<1227, 1227..<1739, 1739..<1752])
        for run in runs.runs {
            let inside = runs.segments.filter { $0.overlaps(run) }
            #expect(inside.allSatisfy { run.contains($0.lowerBound) && run.contains($0.upperBound - 1) },
                    "a run holds whole utterances")
        }
    }
}
