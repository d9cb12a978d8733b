import Foundation
import Testing

/// `switchboard echo --compression true` against the shared RFC 6455 suite and against
/// `Tests/deflate-check/deflate_check.py`, an Autobahn-style (sections 12 and 13) check of
/// permessage-deflate: negotiation, compressed messages both ways, fragments, context takeover,
/// and hostile compressed input.
@Suite("Compression: the echo server with --compression true", .serialized)
struct CompressionCLITests {
    static var deflateCheck: URL {
        ConformanceSuite.repoRoot.appendingPathComponent("Tests/deflate-check/deflate_check.py")
    }

    static func echo() async throws -> (CLIProcess, Int) {
        let server = try CLIProcess(["echo", "--port", "0", "--compression", "true", "--log-level", "error"])
        let port = try await server.waitForOutput(matching: #"listening on ws://127\.0\.0\.1:(\d+)/ws"#)
        return (server, Int(port) ?? 0)
    }

    @Test func passesTheDeflateCheck() async throws {
        guard let python = ExternalTool.which("python3") else { throw ExternalToolError.missing("python3") }
        let (server, port) = try await Self.echo()
        defer { server.terminate() }
        let run = try await ExternalTool.run(
            python, ["-u", Self.deflateCheck.path, "ws://127.0.0.1:\(port)/ws", "--max-size", "65536", "--threshold", "256"], timeout: .seconds(240))
        let lines = run.output.split(whereSeparator: \.isNewline).map(String.init)
        let failures = lines.filter { $0.hasPrefix("FAIL ") }
        #expect(run.exitCode == 0 && failures.isEmpty, "\(failures.joined(separator: "\n"))\n\(run.output.suffix(3000))")
        let summary = lines.last ?? ""
        let passed = Int(summary.split(separator: " ").first ?? "") ?? 0
        #expect(passed >= 50, "\(summary)")
    }

    @Test(ConformanceSuite.availability) func passesTheConformanceSuiteWithCompressionOn() async throws {
        let (server, port) = try await Self.echo()
        defer { server.terminate() }
        let result = try await ConformanceSuite.run(
            url: "ws://127.0.0.1:\(port)/ws",
            arguments: ["--echo", "raw", "--max-size", "65536", "--timeout", "5", "--strict"],
            timeout: .seconds(240)
        )
        #expect(result.failed == 0, "\(result.failures)\n\(result.output)")
        #expect(result.passed >= 58, "\(result.skipped)")
    }
}
