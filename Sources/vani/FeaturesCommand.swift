// `vani features AUDIO --output FILE.npy`: the log-mel features the model sees, for debugging
// and for comparing frontends.

import ArgumentParser
import Audio
import Foundation
import Frontend

struct FeaturesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "features",
        abstract: "Write the NeMo log-mel features of an audio file as a float32 [80, T] .npy.")

    @Argument(help: "Audio file.")
    var file: String

    @Option(name: .shortAndLong, help: "Output .npy path.")
    var output: String

    @Flag(name: .long, help: "Write [T, 80] (time-major) instead of NeMo's [80, T].")
    var timeMajor = false

    func run() throws {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw CLIError("cannot read \(file): check the path")
        }
        let samples: [Float]
        do { samples = try AudioDecoder.load16kMono(data) } catch { throw CLIError("\(file): \(error)") }
        let features = LogMelFrontend().features(samples)
        try features.writeNPY(to: URL(fileURLWithPath: output), bandMajor: !timeMajor)
        let shape = timeMajor ? "[\(features.frames), \(features.bands)]" : "[\(features.bands), \(features.frames)]"
        FileHandle.standardError.write(Data("wrote \(output): \(shape) float32\n".utf8))
    }
}
