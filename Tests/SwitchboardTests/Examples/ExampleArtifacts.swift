import Foundation
import Switchboard

/// Where the examples' browser tests write their screenshots: `$SWITCHBOARD_ARTIFACTS` when set
/// (CI can keep that folder), else `switchboard-artifacts` in the temporary folder.
enum ExampleArtifacts {
    static func file(_ name: String) throws -> URL {
        ExternalTool.artifactsDirectory.appendingPathComponent(name)
    }

    /// A fresh folder for one test's files (a database), removed by the caller.
    static func temporaryFolder() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("switchboard-example-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }

    /// The examples' own test scripts (`Examples/<name>/test/<file>`).
    static func script(_ example: String, _ file: String) -> String {
        ConformanceSuite.repoRoot.appendingPathComponent("Examples/\(example)/test/\(file)").path
    }

    /// The last line a driver script printed, as JSON.
    static func lastJSONLine(of output: String) -> [String: JSONValue]? {
        guard let line = output.split(separator: "\n").last,
            let value = try? JSONDecoder().decode(JSONValue.self, from: Data(line.utf8))
        else { return nil }
        return value.objectValue
    }
}
