import NIOConcurrencyHelpers

/// Identifies one connection. Unique within a process; the node prefix keeps ids of different
/// server processes apart.
public struct SocketID: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String

    public init(rawValue: String) {
        self.rawValue = rawValue
    }

    public var description: String { rawValue }
}

/// Hands out socket ids `<node>-<counter>`, both in base 36, short enough to stay inline in a `String`.
final class SocketIDGenerator: Sendable {
    private let node: String
    private let counter = NIOLockedValueBox<UInt64>(0)

    init() {
        self.node = String(UInt32.random(in: 0..<UInt32(36 * 36 * 36 * 36)), radix: 36)
    }

    func next() -> SocketID {
        let value = counter.withLockedValue { counter -> UInt64 in
            counter += 1
            return counter
        }
        return SocketID(rawValue: "\(node)-\(String(value, radix: 36))")
    }
}
