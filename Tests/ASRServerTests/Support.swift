// Test doubles and helpers: a fake engine with the Recognizer's shape, WAV and multipart
// builders, and a service factory with small limits.

import ASR
import ASRServer
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Testing

// MARK: - Fake engine

/// Deterministic stand-in for `Recognizer`: reads a WAV header for the duration, rejects
/// non-WAV bytes and text, and transcribes a truncated WAV as far as it goes with a `truncated`
/// warning, like the real decoder; sleeps `delay` seconds to occupy a worker, and returns fixed
/// Hindi text with token times (clamped to the audio by `Transcript`).
struct FakeEngine: TranscriptionEngine {
    static let text = "नमस्ते दुनिया"
    let info: ModelInfo
    var delay: Double = 0
    /// What it answers (`FakeEngine.text` unless told otherwise: reload tests tell engines apart).
    var text: String = FakeEngine.text
    /// Counts calls to `transcribe` (cache hits do not call it).
    let calls = Counter()

    init(delay: Double = 0, languages: [String] = ["hi", "ta", "bn"], decoders: [String] = ["ctc", "rnnt"],
         name: String = "fake-indicconformer", text: String = FakeEngine.text) {
        self.delay = delay
        self.text = text
        self.info = makeModelInfo(name: name, languages: languages, decoders: decoders)
    }

    func language(_ code: String) throws(RecognizerError) -> Language {
        guard info.languages.contains(code) else { throw .unknownLanguage(code, available: info.languages) }
        return Language(code: code, vocabulary: Vocabulary(pieces: ["<unk>", "▁नम", "स्ते", "<blank>"]),
                        ctcBlock: 0..<3, postNet: nil)
    }

    /// As many samples as the WAV lasts at 16 kHz, their values taken from the file's bytes (so
    /// that different files hash differently).
    func decodeAudio(_ audio: Data) throws(RecognizerError) -> PreparedAudio {
        let (duration, warnings) = try Self.wavDuration(audio)
        let count = Int((duration * 16000).rounded())
        guard count >= 400 else { throw .audio(.tooShort(samples: count, minimum: 400)) }
        let bytes = [UInt8](audio)
        let samples = (0..<count).map { Float(bytes[(44 + $0) % bytes.count]) / 255 }
        return PreparedAudio(samples: samples, sampleRate: 16000, format: "WAV", warnings: warnings)
    }

    func transcribe(decoded audio: PreparedAudio, language resolved: Language,
                    decoder: DecoderKind) throws(RecognizerError) -> Transcript {
        calls.add(1)
        let language = resolved.code
        guard info.decoders.contains(decoder) else { throw .decoderUnavailable(decoder) }
        if delay > 0 { Thread.sleep(forTimeInterval: delay) }
        let duration = Double(audio.samples.count) / 16000
        let tokens = [
            TokenTiming(text: " नम", id: 10, start: 0.08, end: 0.24, logProb: -0.1),
            TokenTiming(text: "स्ते", id: 11, start: 0.24, end: 0.40, logProb: -0.2),
            TokenTiming(text: " दुनिया", id: 12, start: 0.56, end: 0.88, logProb: -0.3),
        ]
        return Transcript(text: text, language: language, decoder: decoder, duration: duration,
                          confidence: -0.2, tokens: tokens, warnings: audio.warnings)
    }

    /// Seconds of audio in a PCM WAV file (what it holds, with a warning when its header
    /// promises more), or `.audio` for anything else.
    static func wavDuration(_ data: Data) throws(RecognizerError) -> (Double, [AudioWarning]) {
        let bytes = [UInt8](data)
        if !bytes.isEmpty, bytes.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) {
            throw .audio(.textNotAudio(preview: String(decoding: bytes.prefix(60), as: UTF8.self)))
        }
        func u32(_ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 | Int(bytes[at + 2]) << 16 | Int(bytes[at + 3]) << 24 }
        guard bytes.count >= 12, bytes[0..<4] == [0x52, 0x49, 0x46, 0x46], bytes[8..<12] == [0x57, 0x41, 0x56, 0x45] else {
            throw .audio(.notAudio(detail: "unrecognised audio format"))
        }
        var offset = 12
        var byteRate = 0
        while offset + 8 <= bytes.count {
            let id = String(decoding: bytes[offset..<offset + 4], as: UTF8.self)
            let size = u32(offset + 4)
            if id == "fmt ", offset + 16 <= bytes.count { byteRate = u32(offset + 16) }
            if id == "data" {
                guard byteRate > 0 else { throw .audio(.malformed(detail: "WAV file with a zero byte rate")) }
                let present = min(size, bytes.count - offset - 8)
                guard present > 0 else {
                    throw .audio(size > 0 ? .truncated(expectedFrames: size, decodedFrames: 0) : .noSamples)
                }
                let seconds = Double(present) / Double(byteRate)
                guard present < size else { return (seconds, []) }
                return (seconds, [.truncated(container: "WAV", expectedSeconds: Double(size) / Double(byteRate),
                                             decodedSeconds: seconds)])
            }
            offset += 8 + size + (size & 1)
        }
        throw .audio(.malformed(detail: "WAV file without a data chunk"))
    }
}

/// A thread-safe counter.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func add(_ n: Int) { lock.lock(); value += n; lock.unlock() }
    func load() -> Int { lock.lock(); defer { lock.unlock() }; return value }
}

func makeModelInfo(name: String, languages: [String], decoders: [String]) -> ModelInfo {
    // ModelInfo has no public memberwise init; it is Codable.
    let json = """
        {"name": "\(name)", "languages": [\(languages.map { "\"\($0)\"" }.joined(separator: ","))],
         "decoders": [\(decoders.map { "\"\($0)\"" }.joined(separator: ","))], "parameters": 1234, "sampleRate": 16000}
        """
    return try! JSONDecoder().decode(ModelInfo.self, from: Data(json.utf8))
}

// MARK: - Audio

/// A 16-bit PCM WAV file of a 440 Hz tone.
func makeWAV(seconds: Double, sampleRate: Int = 16000, channels: Int = 1) -> Data {
    let frames = Int(seconds * Double(sampleRate))
    var data = Data()
    func u32(_ v: Int) { withUnsafeBytes(of: UInt32(v).littleEndian) { data.append(contentsOf: $0) } }
    func u16(_ v: Int) { withUnsafeBytes(of: UInt16(v).littleEndian) { data.append(contentsOf: $0) } }
    let dataBytes = frames * channels * 2
    data.append(contentsOf: Array("RIFF".utf8)); u32(36 + dataBytes); data.append(contentsOf: Array("WAVE".utf8))
    data.append(contentsOf: Array("fmt ".utf8)); u32(16); u16(1); u16(channels); u32(sampleRate)
    u32(sampleRate * channels * 2); u16(channels * 2); u16(16)
    data.append(contentsOf: Array("data".utf8)); u32(dataBytes)
    for i in 0..<frames {
        let sample = Int16(8000 * sin(2 * Double.pi * 440 * Double(i) / Double(sampleRate)))
        for _ in 0..<channels { withUnsafeBytes(of: sample.littleEndian) { data.append(contentsOf: $0) } }
    }
    return data
}

// MARK: - Service under test

let testLogger: Logger = {
    var logger = Logger(label: "vani.test")
    logger.logLevel = .critical
    return logger
}()

/// A service with a loaded fake engine and small, test-sized limits.
func makeService(engine: any TranscriptionEngine = FakeEngine(), host: ModelHost? = nil,
                 _ configure: (inout ServerConfiguration) -> Void = { _ in }) -> ASRService {
    var configuration = ServerConfiguration(host: "127.0.0.1", port: 0, concurrency: 2, threads: 1,
                                            queueCapacity: 2, timeoutSeconds: 20, cores: 2)
    configure(&configuration)
    return ASRService(configuration: configuration, host: host ?? ModelHost(engine: engine, logger: testLogger),
                      logger: testLogger)
}

// MARK: - Requests and responses

extension HTTPFields {
    static var json: HTTPFields { [.contentType: "application/json"] }
}

func header(_ name: String) -> HTTPFields.Element.Name { HTTPFields.Element.Name(name)! }

func jsonBody(_ object: [String: Any]) -> ByteBuffer {
    ByteBuffer(bytes: try! JSONSerialization.data(withJSONObject: object))
}

func base64WAV(_ seconds: Double = 1) -> String { makeWAV(seconds: seconds).base64EncodedString() }

extension TestResponse {
    /// The body as a JSON object (fails the test if it is not one).
    var json: [String: Any] {
        let object = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))
        let dictionary = object as? [String: Any]
        #expect(dictionary != nil, "not a JSON object: \(String(buffer: body))")
        return dictionary ?? [:]
    }
    var text: String { String(buffer: body) }
}

/// Checks the MLflow error shape, the status, the code and the request id header.
func expectError(_ response: TestResponse, _ status: HTTPResponse.Status, _ code: String,
                 containing fragment: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(response.status == status, "body: \(response.text)", sourceLocation: sourceLocation)
    let json = response.json
    #expect(json["error_code"] as? String == code, "body: \(response.text)", sourceLocation: sourceLocation)
    #expect(Set(json.keys) == ["error_code", "message"], sourceLocation: sourceLocation)
    #expect(!(json["message"] as? String ?? "").isEmpty, sourceLocation: sourceLocation)
    if let fragment {
        #expect((json["message"] as? String ?? "").contains(fragment), "message: \(json["message"] ?? "")",
                sourceLocation: sourceLocation)
    }
    #expect(response.headers[header("X-Request-Id")] != nil, sourceLocation: sourceLocation)
    #expect(response.headers[.contentType] == "application/json", sourceLocation: sourceLocation)
}

// MARK: - Multipart

struct MultipartBody {
    let boundary = "vani-test-boundary-\(UInt32.random(in: 0...UInt32.max))"
    var data = Data()

    mutating func field(_ name: String, _ value: String) {
        data.append(Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"\r\n\r\n\(value)\r\n".utf8))
    }
    mutating func file(_ name: String, filename: String, _ bytes: Data, type: String = "audio/wav") {
        data.append(Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"; filename=\"\(filename)\"\r\nContent-Type: \(type)\r\n\r\n".utf8))
        data.append(bytes)
        data.append(Data("\r\n".utf8))
    }
    var body: ByteBuffer {
        var all = data
        all.append(Data("--\(boundary)--\r\n".utf8))
        return ByteBuffer(bytes: all)
    }
    var headers: HTTPFields { [.contentType: "multipart/form-data; boundary=\(boundary)"] }
}

/// Polls `/health` until `predicate` holds on its JSON (at most ~10 s).
func waitForHealth(_ client: some TestClientProtocol, _ predicate: ([String: Any]) -> Bool) async throws -> [String: Any] {
    var last: [String: Any] = [:]
    for _ in 0..<200 {
        let response = try await client.execute(uri: "/health", method: .get)
        last = response.json
        if predicate(last) { return last }
        try await Task.sleep(for: .milliseconds(50))
    }
    Issue.record("health never reached the expected state: \(last)")
    return last
}

// MARK: - Raw sockets

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Sends `bytes` to 127.0.0.1:`port` over a plain TCP socket, then reads until the server
/// closes, a JSON body has ended, or `readTimeout` passes; runs on its own thread so it never
/// blocks Swift's pool.
func rawExchange(port: Int, _ bytes: [UInt8], readTimeout: Double) async -> String {
    await onThread {
        guard let connection = RawConnection(port: port) else { return "connect failed" }
        connection.send(bytes)
        return connection.receive(timeout: readTimeout) { text in text.contains("\r\n\r\n{") && text.hasSuffix("}") }.text
    }
}

/// A plain TCP connection to the server under test, for what HTTP clients won't send.
final class RawConnection: @unchecked Sendable {
    let fd: Int32
    init?(port: Int) {
        #if canImport(Glibc)
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { return nil }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { close(fd); return nil }
    }
    deinit { close(fd) }

    func send(_ text: String) { send(Array(text.utf8)) }
    func send(_ bytes: [UInt8]) {
        #if canImport(Glibc)
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        #else
        _ = bytes.withUnsafeBytes { Darwin.send(fd, $0.baseAddress, $0.count, 0) }
        #endif
    }

    /// Reads until `done` holds for what was received (by default: `until` appears in it), the
    /// peer closes, or `timeout` passes.
    func receive(until marker: String? = nil, timeout: Double,
                 done: ((String) -> Bool)? = nil) -> (text: String, closed: Bool) {
        var received: [UInt8] = []
        let deadline = Date().addingTimeInterval(timeout)
        var chunk = [UInt8](repeating: 0, count: 65536)
        while Date() < deadline {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, Int32(max(1, deadline.timeIntervalSinceNow * 1000)))
            if ready <= 0 { break }
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return (String(decoding: received, as: UTF8.self), true) }
            received += chunk[0..<n]
            let text = String(decoding: received, as: UTF8.self)
            if let marker, text.contains(marker) { break }
            if let done, done(text) { break }
        }
        return (String(decoding: received, as: UTF8.self), false)
    }
}

/// Runs blocking socket work on its own thread.
func onThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        Thread { continuation.resume(returning: body()) }.start()
    }
}

/// `GET /ping` on a fresh connection: the raw response.
func rawPing(port: Int) async -> String {
    await onThread {
        guard let connection = RawConnection(port: port) else { return "no connection" }
        connection.send("GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        return connection.receive(until: "\r\n\r\n\n", timeout: 2).text
    }
}
