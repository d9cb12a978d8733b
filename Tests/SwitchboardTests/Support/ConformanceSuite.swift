// Test support: runs the shared RFC 6455 conformance suite (shared/conformance/ws_conformance.py)
// against a running server and parses its result.
//
//     let result = try await ConformanceSuite.run(url: "ws://127.0.0.1:\(port)/ws", arguments: ["--max-size", "65536"])
//     #expect(result.failed == 0, "\(result.failures.joined(separator: "\n"))")
//
// The script lives beside the repository: <repo root>/../shared/conformance/ws_conformance.py,
// where the repo root is three directories above this file. A clone of the repository alone has
// no shared/: the tests that need the script are then skipped with a note (`ConformanceSuite.
// availability`), unless SWITCHBOARD_REQUIRE_CONFORMANCE=1 (as `.ci/run` sets it), which turns a
// missing script into a failure.

import Foundation
import Testing

/// The parsed outcome of one run of the suite.
struct ConformanceResult: Sendable, CustomStringConvertible {
    /// From the summary line "N passed, N failed".
    var passed: Int
    var failed: Int
    /// The "FAIL <id>: <reason>" lines, in order.
    var failures: [String]
    /// The "SKIP <id>: <reason>" lines (cases that need an option, such as --idle-timeout).
    var skipped: [String]
    /// Everything the script printed (stdout and stderr, interleaved).
    var output: String
    /// The script's exit status (0: all passed, 1: some failed).
    var exitCode: Int32

    var description: String {
        "\(passed) passed, \(failed) failed" + (failures.isEmpty ? "" : "\n" + failures.joined(separator: "\n"))
    }
}

enum ConformanceSuiteError: Error, CustomStringConvertible {
    case scriptNotFound(path: String, repoRoot: String)
    case usageError(output: String)
    case noSummary(exitCode: Int32, output: String)

    var description: String {
        switch self {
        case .scriptNotFound(let path, let repoRoot):
            return "conformance suite not found at \(path) (expected <repo root>/../shared/conformance/ws_conformance.py "
                + "with the repo root \(repoRoot) derived from this file's #filePath); check out shared/ beside the repository"
        case .usageError(let output):
            return "the conformance suite rejected its arguments (exit 2):\n\(output)"
        case .noSummary(let exitCode, let output):
            return "the conformance suite exited with \(exitCode) without a 'N passed, N failed' line:\n\(output)"
        }
    }
}

enum ConformanceSuite {
    /// This file's path at compile time (a literal here, not a default argument, so that it is
    /// this file's and not the caller's).
    private static let supportFilePath: String = #filePath

    /// The repository root: three directories above this Support file
    /// (<root>/Tests/SwitchboardTests/Support/ConformanceSuite.swift).
    static var repoRoot: URL {
        URL(fileURLWithPath: supportFilePath)
            .deletingLastPathComponent()  // Support
            .deletingLastPathComponent()  // SwitchboardTests
            .deletingLastPathComponent()  // Tests
            .deletingLastPathComponent()  // repo root
    }

    /// Where the script is expected.
    static var scriptURL: URL {
        repoRoot.deletingLastPathComponent()
            .appendingPathComponent("shared")
            .appendingPathComponent("conformance")
            .appendingPathComponent("ws_conformance.py")
            .standardizedFileURL
    }

    /// Whether a missing script must fail the tests instead of skipping them.
    static var isRequired: Bool {
        ProcessInfo.processInfo.environment["SWITCHBOARD_REQUIRE_CONFORMANCE"] == "1"
    }

    /// The trait of every test that runs the suite: enabled when the script is present, or when it
    /// is required (then `locateScript()` fails the test, saying where it looked).
    static var availability: ConditionTrait {
        .enabled(
            if: isRequired || FileManager.default.isReadableFile(atPath: scriptURL.path),
            "\(scriptURL.path) is absent (a clone without shared/ beside it); set SWITCHBOARD_REQUIRE_CONFORMANCE=1 to fail instead"
        )
    }

    /// Returns the script's URL, or throws `.scriptNotFound` saying where it looked.
    static func locateScript() throws -> URL {
        try locateScript(at: scriptURL)
    }

    static func locateScript(at url: URL) throws -> URL {
        guard FileManager.default.isReadableFile(atPath: url.path) else {
            throw ConformanceSuiteError.scriptNotFound(path: url.path, repoRoot: repoRoot.standardizedFileURL.path)
        }
        return url
    }

    /// Runs `python3 ws_conformance.py <url> <arguments...>` (python3 from PATH) and parses its
    /// output. The process is killed (SIGKILL) if it runs longer than `timeout`, which then throws
    /// `ExternalToolError.timedOut` with the output so far. A run that prints no summary line, or exits with 2
    /// (usage error), throws; failed cases do not throw, they are in the result.
    static func run(url: String, arguments: [String] = [], timeout: Duration = .seconds(120)) async throws -> ConformanceResult {
        let script = try locateScript()
        return try await run(script: script, url: url, arguments: arguments, timeout: timeout)
    }

    static func run(script: URL, url: String, arguments: [String], timeout: Duration) async throws -> ConformanceResult {
        let script = try locateScript(at: script)
        guard let python = ExternalTool.which("python3") else { throw ExternalToolError.missing("python3") }
        let run = try await ExternalTool.run(python, ["-u", script.path, url] + arguments, timeout: timeout)
        if run.exitCode == 2 {
            throw ConformanceSuiteError.usageError(output: run.output)
        }
        let lines = run.output.split(omittingEmptySubsequences: true, whereSeparator: \.isNewline).map(String.init)
        guard let (passed, failed) = lines.reversed().lazy.compactMap(parseSummary).first else {
            throw ConformanceSuiteError.noSummary(exitCode: run.exitCode, output: run.output)
        }
        let failures = lines.filter { $0.hasPrefix("FAIL ") }
        let skipped = lines.filter { $0.hasPrefix("SKIP ") }
        return ConformanceResult(
            passed: passed, failed: failed, failures: failures, skipped: skipped, output: run.output, exitCode: run.exitCode)
    }

    /// Parses "N passed, N failed" (optionally followed by ", N skipped").
    static func parseSummary(_ line: String) -> (passed: Int, failed: Int)? {
        let words = line.trimmingCharacters(in: .whitespaces).split(separator: " ")
        guard words.count >= 4,
            let passed = Int(words[0]), words[1] == "passed,",
            let failed = Int(words[2]), words[3] == "failed" || words[3] == "failed,"
        else { return nil }
        return (passed, failed)
    }
}
