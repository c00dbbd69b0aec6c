import ArgumentParser

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve", abstract: "Run the HTTP service (in progress).")
    func run() async throws { throw ValidationError("serve is not implemented yet") }
}
