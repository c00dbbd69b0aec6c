// SubtitleFormatter and ServerConfiguration without a server.

import ASR
@testable import ASRServer
import Foundation
import Testing

@Suite struct SubtitleFormatterTests {
    func token(_ text: String, _ start: Double, _ end: Double) -> TokenTiming {
        TokenTiming(text: text, id: 0, start: start, end: end, logProb: -0.5)
    }

    @Test func timestamps() {
        #expect(SubtitleFormatter.timestamp(0, separator: ",") == "00:00:00,000")
        #expect(SubtitleFormatter.timestamp(3661.2345, separator: ",") == "01:01:01,235")
        #expect(SubtitleFormatter.timestamp(59.9996, separator: ".") == "00:01:00.000")
        #expect(SubtitleFormatter.timestamp(-1, separator: ".") == "00:00:00.000")
        #expect(SubtitleFormatter.timestamp(.nan, separator: ".") == "00:00:00.000")
    }

    @Test func wordsSurviveBareBoundaryPieces() {
        // "▁" alone (a space after the ▁→space swap) first, then a continuation piece.
        let tokens = [token(" ", 0, 0.1), token("क", 0.1, 0.2), token("ल", 0.2, 0.3), token(" ", 0.3, 0.4), token("आज", 0.4, 0.5)]
        let words = SubtitleFormatter.words(from: tokens)
        #expect(words.map(\.word.word) == ["कल", "आज"])
        #expect(words.map(\.tokens) == [1..<3, 4..<5])
        #expect(SubtitleFormatter.words(from: []).isEmpty)
        #expect(SubtitleFormatter.words(from: [token("", 0, 0.1)]).isEmpty)
    }

    @Test func cuesSplitOnLengthDurationAndPauses() {
        let formatter = SubtitleFormatter(maxCharacters: 12, maxDuration: 3, maxGap: 0.8)
        let tokens = [
            token(" एक", 0.0, 0.3), token(" दो", 0.4, 0.7),         // one cue
            token(" तीन", 2.0, 2.3),                                  // pause > 0.8 s
            token(" चार", 2.4, 2.7), token(" पाँच", 2.8, 3.1),         // "तीन चार पाँच" = 12 chars fits
            token(" छह", 3.2, 5.5),                                   // over 3 s from 2.0
        ]
        let transcript = Transcript(text: "", language: "hi", decoder: .ctc, duration: 6, confidence: 0, tokens: tokens)
        let cues = formatter.cues(for: transcript)
        #expect(cues.map(\.text) == ["एक दो", "तीन चार पाँच", "छह"])
        #expect(cues[1].start == 2.0 && cues[1].end == 3.1)
        #expect(cues.map(\.tokens) == [0..<2, 2..<5, 5..<6])
        #expect(formatter.srt(transcript).hasPrefix("1\n00:00:00,000 --> 00:00:00,700\nएक दो\n\n2\n00:00:02,000 --> "))
        #expect(formatter.vtt(transcript).hasPrefix("WEBVTT\n\n00:00:00.000 --> 00:00:00.700\nएक दो\n\n"))
    }

    @Test func untimedTextIsOneCue() {
        let transcript = Transcript(text: " नमस्ते ", language: "hi", decoder: .ctc, duration: 2.5, confidence: 0, tokens: [])
        #expect(SubtitleFormatter().cues(for: transcript) == [SubtitleFormatter.Cue(start: 0, end: 2.5, text: "नमस्ते")])
        let silent = Transcript(text: "", language: "hi", decoder: .ctc, duration: 2.5, confidence: 0, tokens: [])
        #expect(SubtitleFormatter().srt(silent) == "")
        #expect(SubtitleFormatter().vtt(silent) == "WEBVTT\n\n")
    }
}

@Suite struct ServerConfigurationTests {
    @Test func threadsNeverOversubscribeByDefault() {
        for cores in 1...16 {
            let configuration = ServerConfiguration(cores: cores)
            #expect(configuration.concurrency * configuration.threads <= cores)
            #expect(!configuration.oversubscribes(cores: cores))
            #expect(configuration.queueCapacity == 16 * configuration.concurrency, "an upper bound; admission also checks the estimated wait")
        }
        #expect(ServerConfiguration.split(concurrency: nil, threads: 2, cores: 8) == (4, 2))
        #expect(ServerConfiguration.split(concurrency: 3, threads: nil, cores: 8) == (3, 2))
        #expect(ServerConfiguration.split(concurrency: 4, threads: 4, cores: 2) == (4, 4))
        #expect(ServerConfiguration(concurrency: 4, threads: 4, cores: 2).oversubscribes(cores: 2))
    }

    @Test func emptyAPIKeyMeansNone() {
        #expect(ServerConfiguration(apiKey: "").apiKey == nil)
        #expect(ServerConfiguration(apiKey: "x").apiKey == "x")
    }
}
