// Long recordings cut at pauses (docs/VAD.md): the long-form set of Tools/longform (held-out
// sentences of the demo model rendered with pauses into one multi-minute file per language,
// ground truth kept) transcribed with `vad` must score within 0.5 CER points of the same
// sentences transcribed one by one, and lose or repeat no sentence. `make test` renders the set
// first (`make longform`); without it these tests fail, naming the command.

import ASR
import Foundation
import Testing
import VaniTestSupport

@Suite("Long-form audio", .serialized)
struct LongFormTests {
    struct Span: Decodable { let text: String; let start: Int; let end: Int }

    static let recognizer: Recognizer? = try? Recognizer(
        modelURL: Fixtures.root.appendingPathComponent("Weights/default.safetensors"),
        options: RecognizerOptions(threads: 2))

    /// Characters edited to turn `hyp` into `ref` (spaces between words count), after NFC and
    /// whitespace normalisation, as Tools/training/common.py counts them.
    static func edits(_ ref: String, _ hyp: String) -> (edits: Int, chars: Int) {
        func norm(_ s: String) -> [Character] {
            Array(s.precomposedStringWithCanonicalMapping.split(whereSeparator: \.isWhitespace).joined(separator: " "))
        }
        let r = norm(ref), h = norm(hyp)
        var previous = Array(0...h.count)
        for (i, x) in r.enumerated() {
            var current = [i + 1] + Array(repeating: 0, count: h.count)
            for (j, y) in h.enumerated() {
                current[j + 1] = min(previous[j + 1] + 1, current[j] + 1, previous[j] + (x == y ? 0 : 1))
            }
            previous = current
        }
        return (previous[h.count], r.count)
    }

    @Test("vad on the long file: CER within 0.5 points of one by one, no sentence lost or repeated",
          arguments: ["hi", "ta", "bn"])
    func longFileMatchesSentences(language: String) throws {
        let wav = Fixtures.url("longform/\(language).wav")
        guard FileManager.default.fileExists(atPath: wav.path) else {
            Issue.record("\(wav.path) is missing: run `make longform` (Tools/longform/make_longform.py render)")
            return
        }
        let recognizer = try #require(Self.recognizer)
        let spans = try JSONDecoder().decode([Span].self, from: Data(contentsOf: Fixtures.url("longform/\(language).spans.json")))
        let samples = try AudioDecoderShim.samples(wav)
        let lang = try recognizer.language(language)
        let whole = try recognizer.transcribe(samples: samples, language: lang, segmentation: .vad)

        var singleEdits = 0, longEdits = 0, chars = 0
        var lost: [String] = [], repeated: [String] = []
        for span in spans {
            let one = try recognizer.transcribe(samples: Array(samples[span.start..<span.end]), language: lang,
                                                segmentation: .off)
            let (e1, n) = Self.edits(span.text, one.text)
            singleEdits += e1; chars += n
            // The long file's tokens that start inside this sentence's samples.
            let from = Double(span.start) / 16000, to = Double(span.end) / 16000
            let ids = whole.tokens.filter { $0.start >= from - 0.08 && $0.start < to }.map(\.id)
            let text = lang.vocabulary.detokenize(ids)
            let (e2, _) = Self.edits(span.text, text)
            longEdits += e2
            if text.isEmpty || Double(e2) > 0.5 * Double(n) { lost.append(span.text) }
            if text.split(separator: " ").count > span.text.split(separator: " ").count + 2 { repeated.append(span.text) }
        }
        let cerLong = 100 * Double(longEdits) / Double(chars), cerSingle = 100 * Double(singleEdits) / Double(chars)
        // The whole file's text scored against all sentences joined: nothing outside the spans.
        let (allEdits, allChars) = Self.edits(spans.map(\.text).joined(separator: " "), whole.text)
        print(String(format: "long-form %@: %d sentences, %.1f s; CER one by one %.2f %%, long file (vad) %.2f %% (by sentence), %.2f %% (whole text)",
                     language, spans.count, Double(samples.count) / 16000, cerSingle, cerLong,
                     100 * Double(allEdits) / Double(allChars)))
        #expect(cerLong <= cerSingle + 0.5, "CER long \(cerLong) vs one by one \(cerSingle)")
        #expect(100 * Double(allEdits) / Double(allChars) <= cerSingle + 0.5)
        #expect(lost.isEmpty, "lost: \(lost)")
        #expect(repeated.isEmpty, "repeated: \(repeated)")
    }
}
