// Test support: schemathesis (PyPI), which checks a running server against docs/openapi.yaml.
//
// The test is skipped with a note when schemathesis is missing, unless
// SWITCHBOARD_REQUIRE_SCHEMATHESIS=1 (as `.ci/run` sets it, after installing it with pip), which
// turns a missing tool into a failure that names it.

import Foundation
import Testing

enum Schemathesis {
    static var isRequired: Bool {
        ProcessInfo.processInfo.environment["SWITCHBOARD_REQUIRE_SCHEMATHESIS"] == "1"
    }

    /// The `schemathesis` command on PATH.
    static var executable: String? { ExternalTool.which("schemathesis") }

    static var availability: ConditionTrait {
        .enabled(
            if: isRequired || executable != nil,
            "schemathesis is not on PATH (pip install schemathesis); set SWITCHBOARD_REQUIRE_SCHEMATHESIS=1 to fail instead")
    }

    /// `docs/openapi.yaml` of this checkout.
    static var document: URL {
        ConformanceSuite.repoRoot.appendingPathComponent("docs/openapi.yaml").standardizedFileURL
    }
}
