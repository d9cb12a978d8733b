import ArgumentParser

@main
struct SwitchboardCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "switchboard",
        abstract: "Real-time WebSockets for Swift servers.",
        subcommands: [ServeCommand.self, EchoCommand.self, TokenCommand.self, RoomsCommand.self, BenchCommand.self, RedisBenchCommand.self, ConnectCommand.self],
        defaultSubcommand: ServeCommand.self
    )
}
