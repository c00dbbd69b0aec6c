// `vani devices`: what this machine offers to `--device` (Backend's DeviceReport).

import ArgumentParser
import Backend
import Foundation

struct DevicesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devices",
        abstract: "List the CPU's features and the CUDA devices and libraries found, or why CUDA is unusable.")

    @Flag(name: .long, help: "Print one JSON object instead of text.")
    var json = false

    func run() throws {
        print(try DeviceReport().rendered(json: json))
    }
}
