import NIOHTTP1

/// RFC 6455 §4.2.1 checks of an upgrade request, for requests to the WebSocket path that an
/// integration did not upgrade: they get the status the RFC asks for instead of the app's 404.
public enum UpgradeRequestCheck {
    /// The rejection for a request to the WebSocket path that was not upgraded, or `nil` if the
    /// request is a valid upgrade request (which then arrived too late on a keep-alive connection).
    public static func rejection(method: HTTPMethod, headers: HTTPHeaders) -> HandshakeRejection? {
        guard method == .GET else {
            return HandshakeRejection(status: .methodNotAllowed, code: "method_not_allowed", message: "WebSocket handshakes use GET", headers: [("Allow", "GET")])
        }
        let upgrade = headers[canonicalForm: "upgrade"].map { $0.lowercased() }
        let connection = headers[canonicalForm: "connection"].map { $0.lowercased() }
        guard upgrade.contains("websocket"), connection.contains("upgrade") else {
            return HandshakeRejection(
                status: .upgradeRequired,
                code: "upgrade_required",
                message: "this endpoint only speaks WebSocket",
                headers: [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Version", "13")]
            )
        }
        let versions = headers["Sec-WebSocket-Version"]
        guard versions.count == 1, versions[0] == "13" else {
            return HandshakeRejection(
                status: .upgradeRequired,
                code: "unsupported_version",
                message: "only WebSocket version 13 is supported",
                headers: [("Sec-WebSocket-Version", "13")]
            )
        }
        let keys = headers["Sec-WebSocket-Key"]
        guard keys.count == 1, let decoded = decodeBase64(keys[0]), decoded == 16 else {
            return HandshakeRejection(status: .badRequest, code: "bad_key", message: "Sec-WebSocket-Key must be 16 bytes in base64")
        }
        return nil
    }

    /// The length of a base64 string's decoded bytes, or `nil` if it is not base64.
    private static func decodeBase64(_ text: String) -> Int? {
        let bytes = Array(text.utf8)
        guard bytes.count % 4 == 0, !bytes.isEmpty else { return nil }
        var padding = 0
        for (index, byte) in bytes.enumerated() {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "+"), UInt8(ascii: "/"):
                guard padding == 0 else { return nil }
            case UInt8(ascii: "="):
                guard index >= bytes.count - 2 else { return nil }
                padding += 1
            default:
                return nil
            }
        }
        return bytes.count / 4 * 3 - padding
    }
}
