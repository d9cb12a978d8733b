import Foundation
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads CPU time and resident memory from /proc (Linux), and the bench's own CPU time from
/// `getrusage`. Everything returns `nil` where /proc is unavailable, rather than failing the run.
public enum ProcessStats {
    /// Clock ticks per second of the times in /proc/PID/stat.
    static let clockTicksPerSecond: Double = {
        let ticks = sysconf(Int32(_SC_CLK_TCK))
        return ticks > 0 ? Double(ticks) : 100
    }()

    /// Whether /proc/PID exists.
    public static func exists(pid: Int32) -> Bool {
        FileManager.default.fileExists(atPath: "/proc/\(pid)/stat")
    }

    /// The CPU time (user + system, all threads) of this process, in seconds.
    public static func selfCPUSeconds() -> Double {
        var usage = rusage()
        #if os(Linux)
        let who = __rusage_who_t(RUSAGE_SELF.rawValue)
        #else
        let who = RUSAGE_SELF
        #endif
        guard getrusage(who, &usage) == 0 else { return 0 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }

    private static func seconds(_ time: timeval) -> Double {
        Double(time.tv_sec) + Double(time.tv_usec) / 1e6
    }

    /// The CPU time (utime + stime, all threads) of `pid` from /proc/PID/stat, in seconds.
    public static func cpuSeconds(pid: Int32) -> Double? {
        statCPUSeconds(path: "/proc/\(pid)/stat")
    }

    /// The CPU time of one thread of this process, from /proc/self/task/TID/stat, in seconds.
    static func threadCPUSeconds(tid: Int32) -> Double? {
        statCPUSeconds(path: "/proc/self/task/\(tid)/stat")
    }

    /// Fields 14 and 15 (utime, stime) of a stat file; the command name (field 2) may hold spaces
    /// and parentheses, so fields are counted after the last ')'.
    static func statCPUSeconds(path: String) -> Double? {
        guard let text = readSmallFile(path), let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ", omittingEmptySubsequences: true)
        // fields[0] is the state (field 3), so utime (field 14) is fields[11].
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / clockTicksPerSecond
    }

    /// `VmRSS` of `pid` from /proc/PID/status, in KiB.
    public static func residentKiB(pid: Int32) -> Int? {
        guard let text = readSmallFile("/proc/\(pid)/status") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            if parts.count >= 2, let value = Int(parts[1]) { return value }
        }
        return nil
    }

    /// Busy CPU time of the whole machine (all CPUs, excluding idle and iowait) from /proc/stat, in seconds.
    static func machineBusySeconds() -> Double? {
        guard let text = readSmallFile("/proc/stat"), let line = text.split(separator: "\n").first, line.hasPrefix("cpu ") else {
            return nil
        }
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        var busy = 0.0
        // user nice system idle iowait irq softirq steal (guest time is already in user and nice)
        for index in 1..<min(fields.count, 9) where index != 4 && index != 5 {
            busy += Double(fields[index]) ?? 0
        }
        return busy / clockTicksPerSecond
    }

    /// The id of the calling thread (for reading its own CPU time), from the /proc/thread-self link.
    static func currentThreadID() -> Int32? {
        var buffer = [CChar](repeating: 0, count: 128)
        let count = readlink("/proc/thread-self", &buffer, buffer.count - 1)
        guard count > 0 else { return nil }
        let target = String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard let last = target.split(separator: "/").last else { return nil }
        return Int32(last)
    }

    /// How many CPUs this process may run on (its affinity mask, e.g. under `taskset`), from
    /// `Cpus_allowed_list` in /proc/self/status; `nil` if unknown.
    static func allowedCPUCount() -> Int? {
        guard let text = readSmallFile("/proc/self/status") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("Cpus_allowed_list:") {
            guard let list = line.split(separator: ":", maxSplits: 1).last else { return nil }
            var count = 0
            for range in list.split(separator: ",") {
                let bounds = range.trimmingCharacters(in: .whitespaces).split(separator: "-").compactMap { Int($0) }
                if bounds.count == 1 {
                    count += 1
                } else if bounds.count == 2, bounds[1] >= bounds[0] {
                    count += bounds[1] - bounds[0] + 1
                }
            }
            return count > 0 ? count : nil
        }
        return nil
    }

    /// Raises the soft limit on open files to the hard limit, so that thousands of connections fit.
    /// Returns the soft limit in force afterwards.
    @discardableResult
    public static func raiseOpenFileLimit() -> Int {
        var limit = rlimit()
        #if os(Linux)
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        #else
        let resource = RLIMIT_NOFILE
        #endif
        guard getrlimit(resource, &limit) == 0 else { return 0 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(resource, &raised) == 0 { limit = raised }
        }
        return limit.rlim_cur > rlim_t(Int.max) ? Int.max : Int(limit.rlim_cur)
    }

    /// Reads a /proc file (whose size stat reports as 0) into a string; nil on any error.
    static func readSmallFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count > 0 {
                result.append(contentsOf: chunk[0..<count])
            } else if count == 0 {
                return String(decoding: result, as: UTF8.self)
            } else if errno != EINTR {
                return nil
            }
        }
    }
}

/// CPU usage over a measurement window, in percent of one core.
public struct CPUUsage: Sendable, Codable, Equatable {
    /// The bench's own CPU (all its threads).
    public var generatorCPUPct: Double
    /// The busiest of the bench's event-loop threads (a single saturated loop bounds the result
    /// even when other cores are idle).
    public var generatorBusiestLoopPct: Double?
    /// CPUs the bench may run on (its event-loop threads).
    public var generatorCores: Int
    /// The server's CPU (all threads), when `--server-pid` was given.
    public var serverCPUPct: Double?
    /// Everything else on the machine: contention from other processes.
    public var otherCPUPct: Double?
    /// True when the generator used ≥ 90% of the CPU available to it, or one of its event loops
    /// used ≥ 90% of a core: the result then says as much about the generator as about the server.
    public var generatorBound: Bool
}

/// Starts a CPU measurement window; ``stop()`` gives the usage since ``init(serverPID:loopThreads:)``.
struct CPUWindow: Sendable {
    let serverPID: Int32?
    let loopThreads: [Int32]
    let cores: Int
    private let wallStart: NIODeadline
    private let selfStart: Double
    private let serverStart: Double?
    private let machineStart: Double?
    private let threadStarts: [Double?]

    init(serverPID: Int32?, loopThreads: [Int32], cores: Int) {
        self.serverPID = serverPID
        self.loopThreads = loopThreads
        self.cores = cores
        wallStart = .now()
        selfStart = ProcessStats.selfCPUSeconds()
        serverStart = serverPID.flatMap(ProcessStats.cpuSeconds(pid:))
        machineStart = ProcessStats.machineBusySeconds()
        threadStarts = loopThreads.map(ProcessStats.threadCPUSeconds(tid:))
    }

    func stop() -> CPUUsage {
        let wall = max(1e-6, Double((NIODeadline.now() - wallStart).nanoseconds) / 1e9)
        let selfUsed = ProcessStats.selfCPUSeconds() - selfStart
        let generator = selfUsed / wall * 100
        var server: Double?
        var serverUsed = 0.0
        if let serverPID, let start = serverStart, let end = ProcessStats.cpuSeconds(pid: serverPID) {
            serverUsed = end - start
            // A server inside this process (tests) is already counted in the bench's own time.
            server = serverUsed / wall * 100
            if serverPID == getpid() { serverUsed = 0 }
        }
        var other: Double?
        if let start = machineStart, let end = ProcessStats.machineBusySeconds() {
            other = max(0, (end - start - selfUsed - serverUsed) / wall * 100)
        }
        var busiest: Double?
        for (tid, start) in zip(loopThreads, threadStarts) {
            guard let start, let end = ProcessStats.threadCPUSeconds(tid: tid) else { continue }
            busiest = max(busiest ?? 0, (end - start) / wall * 100)
        }
        let bound = generator >= 90 * Double(max(1, cores)) || (busiest ?? 0) >= 90
        return CPUUsage(
            generatorCPUPct: round1(generator), generatorBusiestLoopPct: busiest.map(round1), generatorCores: cores,
            serverCPUPct: server.map(round1), otherCPUPct: other.map(round1), generatorBound: bound)
    }
}

func round1(_ value: Double) -> Double { (value * 10).rounded() / 10 }
func round2(_ value: Double) -> Double { (value * 100).rounded() / 100 }
func round3(_ value: Double) -> Double { (value * 1000).rounded() / 1000 }
func round4(_ value: Double) -> Double { (value * 10000).rounded() / 10000 }
