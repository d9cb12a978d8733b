// The chat example: `swift run ChatExample`, then open http://127.0.0.1:8080.
// Environment: CHAT_PORT (8080), CHAT_HOST (127.0.0.1), CHAT_DATABASE (chat.sqlite),
// CHAT_JWT_SECRET (Switchboard's development secret).
import ChatExampleApp
import Foundation
import Logging
import Switchboard

let environment = ProcessInfo.processInfo.environment
var configuration = ChatConfiguration()
if let host = environment["CHAT_HOST"] { configuration.host = host }
if let port = environment["CHAT_PORT"] {
    guard let number = Int(port), (0...65535).contains(number) else {
        FileHandle.standardError.write(Data("CHAT_PORT must be a port number, not \(port)\n".utf8))
        exit(64)
    }
    configuration.port = number
}
if let path = environment["CHAT_DATABASE"] { configuration.databasePath = path }
if let secret = environment["CHAT_JWT_SECRET"] { configuration.jwtSecret = secret }

let app = try await ChatApp(configuration: configuration)
let database = configuration.databasePath ?? "in memory"
let (host, configuredPort) = (configuration.host, configuration.port)
try await app.application(onServerRunning: { channel in
    let port = channel.localAddress?.port ?? configuredPort
    // Written at once (not buffered): scripts and tests wait for this line.
    FileHandle.standardOutput.write(Data("chat example on http://\(host):\(port) (database \(database)); log in as alice, bob or carol\n".utf8))
}).runService()
