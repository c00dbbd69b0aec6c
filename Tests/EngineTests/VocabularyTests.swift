// Detokenisation exactly as the release's wrapper (Python) does it.

import Decoding
import Testing

@Suite("Vocabulary")
struct VocabularyTests {
    @Test func wordStartMarkerBeforeACombiningSignBecomesASpace() {
        // `▁` + U+0941 (a vowel sign) is one grapheme cluster: Python replaces per code point.
        let v = Vocabulary(pieces: ["<unk>", "▁कितना", "▁न", "▁\u{0941}कसान", "<blank>"])
        #expect(v.detokenize([1, 2, 3]) == "कितना न \u{0941}कसान")
        #expect(v.text(of: 3) == " \u{0941}कसान")
        #expect(!v.detokenize([1, 2, 3]).unicodeScalars.contains("\u{2581}"))
    }

    @Test func unknownIsKeptAndEdgesAreStripped() {
        let v = Vocabulary(pieces: ["<unk>", "▁a", "b", "▁", "<blank>"])
        #expect(v.detokenize([3, 1, 0, 2, 3]) == "a<unk>b")
        #expect(v.detokenize([]) == "")
    }
}
