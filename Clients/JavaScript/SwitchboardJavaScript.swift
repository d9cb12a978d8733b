import Foundation

/// The JavaScript client's files, as they are in `Clients/JavaScript` (this target's resources):
/// one source of truth for what front-ends vendor and what every server serves.
///
/// The files are looked up in this target's resource bundle beside the executable (where
/// `swift build`, `swift run` and `swift test` put it), then in the source folder this file was
/// compiled from. They are not read through `Bundle.module`, whose accessor stops the process
/// when the bundle is missing (a binary copied elsewhere): here a missing file is `nil`, and the
/// server then serves no client and logs why.
public enum SwitchboardJavaScript {
    /// The bytes of `switchboard.js`, or `nil` if it cannot be found.
    public static let script: Data? = load("switchboard.js")

    /// The bytes of `switchboard.d.ts`, or `nil` if it cannot be found.
    public static let declarations: Data? = load("switchboard.d.ts")

    /// Where the files are looked for, in order.
    public static var searchPaths: [URL] {
        let beside = Bundle.main.bundleURL
        let bundle = "Switchboard_SwitchboardJavaScript"
        return [
            beside.appendingPathComponent("\(bundle).resources"),
            beside.appendingPathComponent("\(bundle).bundle/Contents/Resources"),
            beside.appendingPathComponent("\(bundle).bundle"),
            URL(fileURLWithPath: sourceFile).deletingLastPathComponent(),
        ]
    }

    private static let sourceFile: String = #filePath

    private static func load(_ file: String) -> Data? {
        for directory in searchPaths {
            if let data = try? Data(contentsOf: directory.appendingPathComponent(file)) { return data }
        }
        return nil
    }
}
