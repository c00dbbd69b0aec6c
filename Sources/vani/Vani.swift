// The command-line door onto the Recognizer: transcribe | stream | features | serve | bench | devices.

import ArgumentParser

@main
struct Vani: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vani",
        abstract: "Speech recognition for 22 Indian languages (IndicConformer), no Python, no ONNX Runtime.",
        subcommands: [TranscribeCommand.self, StreamCommand.self, FeaturesCommand.self, ServeCommand.self, BenchCommand.self,
                      DevicesCommand.self],
        defaultSubcommand: nil)
}
