import ArgumentParser
import Foundation
import NIOPosix
import Switchboard

struct EchoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "echo",
        abstract: "Run the WebSocket transport as an echo server (no authentication), for RFC 6455 test suites."
    )

    @OptionGroup var transport: TransportOptions

    func run() async throws {
        var configuration = SwitchboardConfiguration()
        transport.apply(to: &configuration)
        let logger = transport.makeLogger()
        let switchboard = SwitchboardServer.echo(configuration: configuration, logger: logger)
        let host = transport.host
        let path = configuration.path
        let eventLoopGroup = MultiThreadedEventLoopGroup(numberOfThreads: transport.threads)
        try await StandaloneApplication.run(switchboard, host: host, port: transport.port, eventLoopGroup: eventLoopGroup, logger: logger) { port in
            Console.line("switchboard echo listening on ws://\(host):\(port)\(path)")
        }
        try await eventLoopGroup.shutdownGracefully()
    }
}
