import Foundation
import NIOCore
import NIOPosix

/// How many CPUs this process may run on.
///
/// NIO's `System.coreCount` counts the machine's cores; under `taskset` or a CPU set that would
/// put several event loops on one core, where they only take turns and switch contexts.
enum AvailableCPUs {
    static var count: Int {
        #if os(Linux)
        if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed_list:") }),
            let list = line.split(separator: ":").last
        {
            let count = list.split(separator: ",").reduce(0) { total, part in
                let bounds = part.trimmingCharacters(in: .whitespaces).split(separator: "-").compactMap { Int($0) }
                return total + (bounds.count == 2 ? bounds[1] - bounds[0] + 1 : bounds.count)
            }
            if count > 0 { return min(count, System.coreCount) }
        }
        #endif
        return System.coreCount
    }
}
