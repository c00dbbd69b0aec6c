// Subtitles from a transcript: words grouped into cues, written as SRT or WebVTT. The CLI and
// the service print the same subtitles from here.

import Foundation

/// Groups a transcript's timed words into cues and writes them as SRT or WebVTT.
///
/// A cue closes before a word that would make it longer than `maxCharacters`, span more than
/// `maxDuration` seconds, or follow a pause longer than `maxGap` seconds. A transcript with
/// text but no token times becomes one cue over the whole audio.
public struct SubtitleFormatter: Sendable {
    /// One subtitle: a time span and its text.
    public struct Cue: Sendable, Equatable {
        /// Seconds from the start of the audio.
        public var start: Double
        /// Seconds from the start of the audio.
        public var end: Double
        /// The cue's words joined by spaces.
        public var text: String
        /// Indices into `Transcript.tokens` of the cue's tokens (empty for an untimed cue).
        public var tokens: Range<Int>
        /// A cue; `tokens` indexes `Transcript.tokens`.
        public init(start: Double, end: Double, text: String, tokens: Range<Int> = 0..<0) {
            self.start = start; self.end = end; self.text = text; self.tokens = tokens
        }
    }

    /// A word with the indices of its tokens.
    public struct TimedWord: Sendable, Equatable {
        /// The word and its time span.
        public var word: WordTiming
        /// Indices into `Transcript.tokens` of the word's tokens.
        public var tokens: Range<Int>
    }

    /// Longest cue text, in characters.
    public var maxCharacters: Int
    /// Longest cue, in seconds.
    public var maxDuration: Double
    /// A pause longer than this (seconds) starts a new cue.
    public var maxGap: Double

    /// A formatter with the given cue limits (the defaults suit two subtitle lines).
    public init(maxCharacters: Int = 42, maxDuration: Double = 6, maxGap: Double = 1) {
        self.maxCharacters = max(1, maxCharacters)
        self.maxDuration = maxDuration
        self.maxGap = maxGap
    }

    // MARK: - Words

    /// Words from tokens: a token whose text starts with a space opens a word, and so does the
    /// token after a bare word-boundary piece (`▁` alone). Safe on any token sequence.
    public static func words(from tokens: [TokenTiming]) -> [TimedWord] {
        var words: [TimedWord] = []
        var boundaryPending = true
        for (index, token) in tokens.enumerated() {
            let piece = token.text.trimmingCharacters(in: .whitespaces)
            if piece.isEmpty { boundaryPending = true; continue }
            if token.text.hasPrefix(" ") || boundaryPending || words.isEmpty {
                words.append(TimedWord(word: WordTiming(word: piece, start: token.start, end: token.end),
                                       tokens: index..<(index + 1)))
            } else {
                words[words.count - 1].word.word += piece
                words[words.count - 1].word.end = max(words[words.count - 1].word.end, token.end)
                words[words.count - 1].tokens = words[words.count - 1].tokens.lowerBound..<(index + 1)
            }
            boundaryPending = false
        }
        return words
    }

    // MARK: - Cues

    /// The transcript's cues, in time order, within [0, `transcript.duration`].
    public func cues(for transcript: Transcript) -> [Cue] {
        let words = Self.words(from: transcript.tokens.map { Transcript.clamped($0, to: transcript.duration) })
        guard !words.isEmpty else {
            let text = transcript.text.trimmingCharacters(in: .whitespacesAndNewlines)
            return text.isEmpty ? [] : [Cue(start: 0, end: transcript.duration, text: text)]
        }
        var cues: [Cue] = []
        var current: Cue?
        for timed in words {
            let word = timed.word
            if var cue = current {
                let tooLong = cue.text.count + 1 + word.word.count > maxCharacters
                let tooSlow = word.end - cue.start > maxDuration
                let paused = word.start - cue.end > maxGap
                if tooLong || tooSlow || paused {
                    cues.append(cue)
                    current = Cue(start: word.start, end: word.end, text: word.word, tokens: timed.tokens)
                } else {
                    cue.text += " " + word.word
                    cue.end = max(cue.end, word.end)
                    cue.tokens = cue.tokens.lowerBound..<timed.tokens.upperBound
                    current = cue
                }
            } else {
                current = Cue(start: word.start, end: word.end, text: word.word, tokens: timed.tokens)
            }
        }
        if let current { cues.append(current) }
        return cues
    }

    // MARK: - Writers

    /// SubRip text: numbered cues, `HH:MM:SS,mmm --> HH:MM:SS,mmm`.
    public func srt(_ transcript: Transcript) -> String { Self.srt(cues(for: transcript)) }

    /// WebVTT text: a `WEBVTT` header, then cues with `HH:MM:SS.mmm --> HH:MM:SS.mmm`.
    public func vtt(_ transcript: Transcript) -> String { Self.vtt(cues(for: transcript)) }

    /// SubRip text for `cues`.
    public static func srt(_ cues: [Cue]) -> String {
        var out = ""
        for (n, cue) in cues.enumerated() {
            out += "\(n + 1)\n\(timestamp(cue.start, separator: ",")) --> \(timestamp(cue.end, separator: ","))\n\(cue.text)\n\n"
        }
        return out
    }

    /// WebVTT text for `cues`.
    public static func vtt(_ cues: [Cue]) -> String {
        var out = "WEBVTT\n\n"
        for cue in cues {
            out += "\(timestamp(cue.start, separator: ".")) --> \(timestamp(cue.end, separator: "."))\n\(cue.text)\n\n"
        }
        return out
    }

    /// `HH:MM:SS<separator>mmm`, rounded to the millisecond; negative times clamp to zero.
    public static func timestamp(_ seconds: Double, separator: Character) -> String {
        let totalMs = seconds.isFinite ? max(0, Int((seconds * 1000).rounded())) : 0
        let ms = totalMs % 1000, s = totalMs / 1000 % 60, m = totalMs / 60_000 % 60, h = totalMs / 3_600_000
        func pad(_ v: Int, _ width: Int) -> String {
            let digits = String(v)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(pad(h, 2)):\(pad(m, 2)):\(pad(s, 2))\(separator)\(pad(ms, 3))"
    }
}
