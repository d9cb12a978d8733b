import Foundation

/// What a server process holds, read from /proc/PID (Linux): open file descriptors, of which
/// sockets (the listening ones and one per connection, so the connection count shows here
/// without asking the server), threads, and resident memory.
public struct ServerFootprint: Sendable, Codable, Equatable {
    /// Entries of /proc/PID/fd.
    public var fds: Int
    /// Of those, sockets (`socket:[…]` links).
    public var sockets: Int
    /// `Threads` of /proc/PID/status.
    public var threads: Int
    /// `VmRSS` of /proc/PID/status, KiB.
    public var rssKib: Int

    /// Reads the footprint of `pid`; `nil` without /proc or once the process is gone.
    public static func read(pid: Int32) -> ServerFootprint? {
        let directory = "/proc/\(pid)/fd"
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: directory),
            let status = ProcessStats.readSmallFile("/proc/\(pid)/status")
        else { return nil }
        var sockets = 0
        for entry in entries {
            // A descriptor closed between the listing and this read is simply not counted.
            if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: directory + "/" + entry), target.hasPrefix("socket:") {
                sockets += 1
            }
        }
        // "Threads:\t5", "VmRSS:\t  1234 kB": the first number after the colon.
        func number(_ name: String) -> Int {
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }) else { return 0 }
            return line.dropFirst(name.count + 1).split(whereSeparator: { $0 == " " || $0 == "\t" }).first.flatMap { Int($0) } ?? 0
        }
        let threads = number("Threads")
        let rss = number("VmRSS")
        return ServerFootprint(fds: entries.count, sockets: sockets, threads: threads, rssKib: rss)
    }

    /// Descriptors other than sockets a server may still open after its warm-up (another reader
    /// connection of its database, with its files, under more concurrency than the warm-up had).
    public static let otherDescriptorAllowance = 8

    /// Whether this footprint is back to `idle`'s: no more sockets (every connection closed),
    /// and at most ``otherDescriptorAllowance`` more other descriptors.
    public func isBack(to idle: ServerFootprint) -> Bool {
        sockets <= idle.sockets && fds - sockets <= idle.fds - idle.sockets + Self.otherDescriptorAllowance
    }

    /// The larger of each field.
    func peak(with other: ServerFootprint) -> ServerFootprint {
        ServerFootprint(fds: max(fds, other.fds), sockets: max(sockets, other.sockets), threads: max(threads, other.threads), rssKib: max(rssKib, other.rssKib))
    }
}
