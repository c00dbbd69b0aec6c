// Seeded mutation fuzzing of the decoding path: byte flips, truncations, header-field lies,
// splices. Every input must end in a decoded result that keeps the invariants or in an
// `AudioError`: no trap, no hang, no NaN.
//
// Longer runs: VANI_FUZZ_ITERATIONS=200000 VANI_FUZZ_SEED=123 VANI_FUZZ_LOG=/tmp/case.bin \
//   swift test --filter FuzzTests (the loop runs in a child process; its log path is printed)
// VANI_FUZZ_LOG receives each input before it is decoded, so a crash leaves its input there:
// copy it to Tests/Fixtures/audio/fuzz/ (a regression case, decoded by `regressions()`).

import Audio
import Foundation
import Testing
import VaniTestSupport

@Suite struct FuzzTests {
    static let seedFiles = [
        "wav_s16.wav", "wav_u8.wav", "wav_s24.wav", "wav_f32.wav", "wav_f64.wav", "wav_ext_6ch.wav",
        "wav_list.wav", "wav_odd_chunk.wav", "flac_s16.flac", "ogg_vorbis.ogg", "opus_48k.opus",
        "mp3_44k.mp3",
    ]

    static func environment(_ key: String) -> String? { ProcessInfo.processInfo.environment[key] }

    /// Runs `mutationFuzzLoop` in a child process (this test binary, filtered to that test),
    /// whose stdout and stderr go to a log file: libmpg123 prints a line for every broken MP3
    /// frame (thousands here), and redirecting this process's stderr would swallow what other
    /// suites print meanwhile. A crash or a failed expectation in the child fails this test
    /// with the log's path and tail.
    @Test func mutationFuzz() async throws {
        guard Self.environment("VANI_FUZZ_CHILD") == nil else { return }
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        let logURL = FileManager.default.temporaryDirectory
            .appendingPathComponent("vani-fuzz-\(ProcessInfo.processInfo.processIdentifier).log")
        #expect(FileManager.default.createFile(atPath: logURL.path, contents: nil), "cannot write \(logURL.path)")
        let log = try FileHandle(forWritingTo: logURL)
        defer { try? log.close() }
        let child = Process()
        child.executableURL = binary
        child.arguments = ["--testing-library", "swift-testing", "--filter", "FuzzTests/mutationFuzzLoop"]
        var environment = ProcessInfo.processInfo.environment
        environment["VANI_FUZZ_CHILD"] = "1"
        child.environment = environment
        child.standardOutput = log
        child.standardError = log
        child.standardInput = FileHandle.nullDevice
        // Wait without holding a thread of the cooperative pool for the child's minute: the
        // server tests' timers run on those threads.
        let exited = AsyncStream<Void> { continuation in
            child.terminationHandler = { _ in continuation.yield(); continuation.finish() }
        }
        try child.run()
        for await _ in exited { break }
        child.waitUntilExit()
        let output = (try? String(contentsOf: logURL, encoding: .utf8)) ?? ""
        for line in output.split(separator: "\n") where line.hasPrefix("[fuzz]") { print(line) }
        print("[fuzz] child log (decoder diagnostics included): \(logURL.path)")
        #expect(output.contains("[fuzz] done"), "the fuzz loop did not run to its end: \(output.suffix(2000))")
        // Issue 18, kind 16: the libraries write nothing to stderr themselves. Every line is the
        // loop's own ("[fuzz] ..."), swift-log's (a timestamp first) or Swift Testing's (a
        // symbol first); FFmpeg's default callback ("[mp3 @ 0x...]") or libmpg123 ("Note: ...",
        // "[src/libmpg123/...]") would start with ASCII text.
        let stray = output.split(separator: "\n").filter { line in
            guard let first = line.unicodeScalars.first else { return false }
            return !line.hasPrefix("[fuzz]") && first.isASCII && !("0"..."9").contains(first)
        }
        #expect(stray.isEmpty, "lines written around swift-log: \(stray.prefix(5))")
        #expect(child.terminationReason == .exit && child.terminationStatus == 0,
                "fuzz child ended with \(child.terminationReason == .exit ? "status" : "signal") \(child.terminationStatus); log \(logURL.path): \(output.suffix(2000))")
    }

    /// The mutation loop itself; runs only in the child started by `mutationFuzz`.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["VANI_FUZZ_CHILD"] != nil, "runs in mutationFuzz's child process"))
    func mutationFuzzLoop() throws {
        let iterations = Self.environment("VANI_FUZZ_ITERATIONS").flatMap(Int.init) ?? 10000
        let seed = Self.environment("VANI_FUZZ_SEED").flatMap { UInt64($0) } ?? 0x5EED_A0D1
        let log = Self.environment("VANI_FUZZ_LOG").map { URL(fileURLWithPath: $0) }
        var corpus = try Self.seedFiles.map { try Data(contentsOf: Fixtures.url("audio/\($0)")) }
        corpus.append(WAVBuilder.pcm16(tone16(600)).data)
        corpus.append(WAVBuilder.float32((0..<500).map { Float($0) / 1000 }).data)

        var rng = SplitMix64(seed: seed)
        var outcomes: [String: Int] = [:]
        let start = Date()
        for i in 0..<iterations {
            let base = corpus[Int(rng.next() % UInt64(corpus.count))]
            var input = [UInt8](base)
            for _ in 0..<(1 + Int(rng.next() % 4)) { mutate(&input, &rng, corpus: corpus) }
            let data = Data(input)
            if let log { try data.write(to: log) }
            do {
                let decoded = try AudioDecoder.decode(data)
                outcomes["decoded", default: 0] += 1
                #expect(!decoded.samples.isEmpty)
                #expect(Resampler.supportedRates.contains(decoded.sampleRate))
                #expect((1...AudioDecoder.maxChannels).contains(decoded.channels))
                let bad = decoded.samples.firstIndex { !(abs($0) <= AudioDecoder.maxMagnitude) }
                #expect(bad == nil, "iteration \(i): sample \(bad ?? -1) out of range")
                if i % 8 == 0, decoded.samples.count < 200_000 {
                    // The resampling path too (short ones only: debug builds are slow).
                    _ = try? AudioDecoder.load16kMono(data, maxSeconds: 30)
                }
            } catch {
                outcomes[error.code, default: 0] += 1
                #expect(!error.description.isEmpty)
            }
        }
        let seconds = Date().timeIntervalSince(start)
        print("[fuzz] \(iterations) inputs (seed \(seed)) in \(String(format: "%.2f", seconds)) s:")
        for (k, v) in outcomes.sorted(by: { $0.value > $1.value }) { print("[fuzz]   \(v) × \(k)") }
        print("[fuzz] done")
    }

    /// Inputs that once failed (crashed, hung or broke an invariant) stay here for good.
    @Test func regressions() throws {
        let dir = Fixtures.url("audio/fuzz")
        let files = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        var checked = 0
        for name in files.sorted() where name.hasSuffix(".bin") {
            let data = try Data(contentsOf: dir.appendingPathComponent(name))
            let outcome: String
            do {
                let d = try AudioDecoder.decode(data)
                #expect(d.samples.allSatisfy { abs($0) <= AudioDecoder.maxMagnitude }, "\(name)")
                outcome = "decoded \(d.samples.count)"
            } catch {
                outcome = error.code
            }
            print("[fuzz] regression \(name): \(outcome)")
            if let expected = Self.regressionOutcomes[name] {
                #expect(outcome == expected, "\(name)")
            }
            checked += 1
        }
        #expect(checked >= Self.regressionOutcomes.count, "regression inputs missing from \(dir.path)")
    }

    /// What the regression inputs (Tests/Fixtures/audio/fuzz/README.md) must now give.
    static let regressionOutcomes = [
        "wav-data-size-zero.bin": "decoded 1600",
        "wav-data-size-lies-100MB.bin": "decoded 1600",   // with a `truncated` warning
        "float-sample-1e30.bin": "out_of_range",
    ]

    // MARK: - Mutations

    /// Values that make header fields lie: zero, one, sign and width edges, absurd sizes.
    static let interesting: [UInt32] = [0, 1, 2, 7, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF,
                                        0x1_0000, 16000, 44100, 1_000_000_000, 0x7FFF_FFFF,
                                        0x8000_0000, 0xFFFF_FFFE, 0xFFFF_FFFF]

    func mutate(_ b: inout [UInt8], _ rng: inout SplitMix64, corpus: [Data]) {
        guard !b.isEmpty else { b = [0x52]; return }
        // Headers hold the interesting fields: aim half of all mutations at the first 128 bytes.
        func position() -> Int {
            let span = rng.next() % 2 == 0 ? min(b.count, 128) : b.count
            return Int(rng.next() % UInt64(span))
        }
        switch rng.next() % 8 {
        case 0:  // flip one bit
            let p = position(); b[p] ^= UInt8(1 << (rng.next() % 8))
        case 1:  // random byte
            b[position()] = UInt8(truncatingIfNeeded: rng.next())
        case 2, 3:  // a header field lies: 16- or 32-bit little-endian
            let v = Self.interesting[Int(rng.next() % UInt64(Self.interesting.count))]
            let width = rng.next() % 2 == 0 ? 2 : 4
            let p = position() & ~1
            for k in 0..<width where p + k < b.count { b[p + k] = UInt8(truncatingIfNeeded: v >> (8 * k)) }
        case 4:  // truncate
            b.removeLast(Int(rng.next() % UInt64(b.count)))
        case 5:  // delete a range
            let p = position(), n = min(Int(rng.next() % 64) + 1, b.count - p)
            b.removeSubrange(p..<(p + n))
        case 6:  // duplicate a range (repeated chunks, frames, pages)
            let p = position(), n = min(Int(rng.next() % 256) + 1, b.count - p)
            b.insert(contentsOf: b[p..<(p + n)], at: min(p + n, b.count))
        default:  // splice the head of one file onto the tail of another
            let other = [UInt8](corpus[Int(rng.next() % UInt64(corpus.count))])
            let cut = position(), from = Int(rng.next() % UInt64(max(other.count, 1)))
            b = Array(b[..<cut]) + other[from...]
            if b.isEmpty { b = [0] }
        }
    }
}
