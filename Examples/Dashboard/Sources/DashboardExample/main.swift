// The live dashboard example: `swift run DashboardExample`, then open http://127.0.0.1:8081.
// Environment: DASHBOARD_PORT (8081), DASHBOARD_HOST (127.0.0.1), DASHBOARD_INTERVAL_MS (1000:
// how often the simulated producer publishes), DASHBOARD_JWT_SECRET (Switchboard's development
// secret).
import DashboardExampleApp
import Foundation
import Switchboard

let environment = ProcessInfo.processInfo.environment
func number(_ name: String, in range: ClosedRange<Int>) -> Int? {
    guard let text = environment[name] else { return nil }
    guard let value = Int(text), range.contains(value) else {
        FileHandle.standardError.write(Data("\(name) must be a whole number in \(range), not \(text)\n".utf8))
        exit(64)
    }
    return value
}

var configuration = DashboardConfiguration()
if let host = environment["DASHBOARD_HOST"] { configuration.host = host }
if let port = number("DASHBOARD_PORT", in: 0...65535) { configuration.port = port }
if let interval = number("DASHBOARD_INTERVAL_MS", in: 10...3_600_000) { configuration.publishInterval = .milliseconds(interval) }
if let secret = environment["DASHBOARD_JWT_SECRET"] { configuration.jwtSecret = secret }

let app = try await DashboardApp(configuration: configuration)
let (host, configuredPort) = (configuration.host, configuration.port)
try await app.application(onServerRunning: { channel in
    let port = channel.localAddress?.port ?? configuredPort
    // Written at once (not buffered): scripts and tests wait for this line.
    FileHandle.standardOutput.write(Data("dashboard example on http://\(host):\(port) (viewers join \(DashboardApp.room))\n".utf8))
}).runService()
