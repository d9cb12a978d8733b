/// The secret that authorises the HTTP publish API: a separate secret from the JWT key, presented
/// as `Authorization: Bearer <key>`.
public struct APIKey: Sendable {
    private let secret: [UInt8]

    /// - Parameter secret: at least 16 bytes (shorter ones are refused by `switchboard serve`).
    public init(_ secret: String) {
        self.secret = Array(secret.utf8)
    }

    /// Whether `presented` is the key, compared in constant time: the time taken depends on the
    /// lengths only, never on where the first difference is.
    public func matches(_ presented: some StringProtocol) -> Bool {
        let presented = Array(presented.utf8)
        var difference = UInt8(truncatingIfNeeded: presented.count ^ secret.count) | (presented.count == secret.count ? 0 : 1)
        for index in 0..<max(presented.count, secret.count) {
            let a = index < presented.count ? presented[index] : 0
            let b = index < secret.count ? secret[index] : 0
            difference |= a ^ b
        }
        return difference == 0
    }

    /// The key of an `Authorization: Bearer <key>` header value; `nil` for another scheme.
    static func bearer(_ authorization: String) -> Substring? {
        let prefix = "bearer "
        guard authorization.count > prefix.count, authorization.prefix(prefix.count).lowercased() == prefix else { return nil }
        return authorization.dropFirst(prefix.count)
    }
}
