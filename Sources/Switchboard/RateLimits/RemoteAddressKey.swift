import Foundation
import NIOCore

/// What a handshake limit counts by: an IPv4 address, or the /64 prefix of an IPv6 address (one
/// host or subscriber usually has a whole /64, so a per-address limit would not hold). An
/// IPv4-mapped IPv6 address (a dual-stack listener) counts as its IPv4 address.
enum RemoteAddressKey: Hashable, Sendable {
    case v4(UInt32)
    case v6Prefix(UInt64)

    /// The key of `address` and whether it is a loopback address; `nil` for a Unix domain socket.
    static func of(_ address: SocketAddress) -> (key: RemoteAddressKey, isLoopback: Bool)? {
        switch address {
        case .v4(let v4):
            let ip = UInt32(bigEndian: v4.address.sin_addr.s_addr)
            return (.v4(ip), ip >> 24 == 127)
        case .v6(let v6):
            let (high, low) = withUnsafeBytes(of: v6.address.sin6_addr) { raw -> (UInt64, UInt64) in
                (UInt64(bigEndian: raw.loadUnaligned(as: UInt64.self)), UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
            }
            if high == 0, low >> 32 == 0xFFFF {
                let ip = UInt32(truncatingIfNeeded: low)
                return (.v4(ip), ip >> 24 == 127)
            }
            return (.v6Prefix(high), high == 0 && low == 1)
        case .unixDomainSocket:
            return nil
        }
    }
}
