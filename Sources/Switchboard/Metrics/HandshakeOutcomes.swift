import NIOConcurrencyHelpers

/// Handshakes by outcome (`accepted`, or the rejection's code such as `token_invalid`): counted
/// once per handshake (not per message), under a lock of their own.
final class HandshakeOutcomes: Sendable {
    private let counts = NIOLockedValueBox<[String: Int]>([:])

    func count(_ outcome: String) {
        counts.withLockedValue { $0[outcome, default: 0] += 1 }
    }

    var all: [String: Int] { counts.withLockedValue { $0 } }
}
