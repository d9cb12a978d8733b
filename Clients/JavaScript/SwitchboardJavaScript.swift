import Foundation

/// The JavaScript client's files, as they are in `Clients/JavaScript` (this target's resources):
/// one source of truth for what front-ends vendor and what every server serves.
public enum SwitchboardJavaScript {
    /// The bytes of `switchboard.js`, or `nil` if the resource bundle cannot be read.
    public static let script: Data? = load("switchboard.js")

    /// The bytes of `switchboard.d.ts`, or `nil` if the resource bundle cannot be read.
    public static let declarations: Data? = load("switchboard.d.ts")

    private static func load(_ file: String) -> Data? {
        guard let url = Bundle.module.url(forResource: file, withExtension: nil) else { return nil }
        return try? Data(contentsOf: url)
    }
}
