import Foundation

/// Writes lines to standard output unbuffered, so that a script reading a server's output through
/// a pipe sees the URL as soon as the server listens.
enum Console {
    static func line(_ text: String) {
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }
}
