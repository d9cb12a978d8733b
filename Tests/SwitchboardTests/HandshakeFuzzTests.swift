import Foundation
import NIOHTTP1
import PropertyBased
import Testing

@testable import Switchboard

/// The handshake's credential parsing and RFC 6455 request checks on random requests, against
/// reference models: the token a request authenticates with is the one the model reads, and it
/// never survives redaction (what is logged).
@Suite("Handshake: property tests against reference models")
struct HandshakeFuzzTests {
    /// A secret that appears nowhere else in a generated request.
    static let secret = "S3cr3tT0k3nValue"

    /// Query item names: the real one spelled in every way a URL parser decodes to `token`, and others.
    static let names = ["token", "token", "access_token", "%74oken", "t%6Fken", "tok%65n", "%74%6F%6B%65%6E", "TOKEN", "tokens", "x", "", "to%6ben"]

    /// Query values: the secret, spelled plainly or percent-encoded, and others.
    static let values = [secret, secret, "S3cr%33tT0k3nValue", "%53%33cr3tT0k3nValue", "", "a", "a%20b", "%2F", "a=b", "x+y"]

    static func randomURI<G: RandomNumberGenerator>(using generator: inout G) -> String {
        let path = ["/ws", "/", "/ws/", "/a%20b", ""].randomElement(using: &generator) ?? "/ws"
        guard Int.random(in: 0..<10, using: &generator) != 0 else { return path }
        var items: [String] = []
        for _ in 0..<Int.random(in: 0...4, using: &generator) {
            let name = names.randomElement(using: &generator) ?? "x"
            switch Int.random(in: 0..<8, using: &generator) {
            case 0: items.append(name)
            case 1: items.append("")
            default: items.append(name + "=" + (values.randomElement(using: &generator) ?? ""))
            }
        }
        var uri = path + "?" + items.joined(separator: "&")
        if Int.random(in: 0..<8, using: &generator) == 0 { uri += "#" + (values.randomElement(using: &generator) ?? "") }
        return uri
    }

    /// The first query item whose decoded name is `token`, decoded (RFC 3986: the query runs from
    /// the first `?` to `#`; `+` is not a space), when the URI is one a URL parser accepts.
    static func referenceQueryToken(_ uri: String) -> String? {
        guard let queryStart = uri.firstIndex(of: "?") else { return nil }
        var query = uri[uri.index(after: queryStart)...]
        if let hash = query.firstIndex(of: "#") { query = query[..<hash] }
        for item in query.split(separator: "&", omittingEmptySubsequences: false) {
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts[0].removingPercentEncoding == "token" else { continue }
            return parts.count == 2 ? parts[1].removingPercentEncoding : nil
        }
        return nil
    }

    @Test("token: the query's token (however its name and value are percent-encoded) or the bearer header, as the model reads them")
    func tokenFromRequest() async {
        let choices = Gen<UInt64>.value(in: 0...UInt64.max).array(of: 0...40)
        await propertyCheck(count: 3000, input: choices) { tape in
            var source = ChoiceTape(tape)
            let uri = Self.randomURI(using: &source)
            var headers = HTTPHeaders()
            var bearer: String?
            if Bool.random(using: &source) {
                let scheme = ["Bearer", "bearer", "BEARER", "Basic", "Bearer"].randomElement(using: &source) ?? "Bearer"
                let value = ["header-token", " header-token ", "", "a b"].randomElement(using: &source) ?? ""
                headers.add(name: "Authorization", value: scheme + " " + value)
                let trimmed = value.trimmingCharacters(in: .whitespaces)
                if scheme.lowercased() == "bearer", !value.isEmpty { bearer = trimmed }
            }
            let query = Self.referenceQueryToken(uri).flatMap { $0.isEmpty ? nil : $0 }
            let expected = query ?? bearer
            #expect(HandshakeCredentials.token(uri: uri, headers: headers) == expected, "\(uri) \(headers)")
        }
    }

    @Test("redact: the token a request authenticates with never survives redaction, other items do, and redacting twice changes nothing")
    func redaction() async {
        let choices = Gen<UInt64>.value(in: 0...UInt64.max).array(of: 0...40)
        await propertyCheck(count: 3000, input: choices) { tape in
            var source = ChoiceTape(tape)
            let uri = Self.randomURI(using: &source)
            let redacted = HandshakeCredentials.redact(uri)
            // Whatever would authenticate from the logged URI is the placeholder.
            let relogged = HandshakeCredentials.token(uri: redacted, headers: [:])
            #expect(relogged == nil || relogged == "REDACTED", "\(uri) → \(redacted)")
            // Every item whose name decodes to a token's has its value replaced.
            for item in redacted.drop(while: { $0 != "?" }).dropFirst().split(separator: "&") {
                let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                if ["token", "access_token"].contains((parts[0].removingPercentEncoding ?? String(parts[0])).lowercased()) {
                    #expect(parts.count == 2 && parts[1] == "REDACTED", "\(uri) → \(redacted)")
                }
            }
            #expect(HandshakeCredentials.redact(redacted) == redacted, "\(uri)")
            // The path is kept.
            #expect(redacted.prefix { $0 != "?" } == uri.prefix { $0 != "?" })
        }
    }

    @Test("findings kept as regressions: a token under a percent-encoded name authenticates and must be redacted")
    func regressions() {
        for uri in ["/ws?%74oken=a=b", "/ws?t%6Fken=S3cr3tT0k3nValue&x=1", "/ws?x=1&%74%6F%6B%65%6E=S3cr3tT0k3nValue", "/ws?ACCESS_TOKEN=S3cr3tT0k3nValue"] {
            let redacted = HandshakeCredentials.redact(uri)
            if let token = HandshakeCredentials.token(uri: uri, headers: [:]) {
                #expect(!redacted.contains(token), "\(uri) → \(redacted)")
            }
            #expect(!redacted.contains(Self.secret), "\(uri) → \(redacted)")
            #expect(redacted.contains("REDACTED"))
        }
        #expect(HandshakeCredentials.redact("/ws?%74oken=abc&x=1") == "/ws?%74oken=REDACTED&x=1")
        // FuzzHandshake: a combining mark after `=` made one Swift character of the two, so the
        // item was not split at it and was logged whole, while the URL parser read the token.
        for uri in ["?token=\u{0747}to1\0\0L", "/ws?token=\u{0301}S3cr3tT0k3nValue", "/ws?x=1&token=\u{20DD}S3cr3t", "/ws?\u{0301}x=1&token=S3cr3t"] {
            #expect(HandshakeCredentials.token(uri: uri, headers: [:]) != nil, "\(uri.debugDescription)")
            let redacted = HandshakeCredentials.redact(uri)
            #expect(HandshakeCredentials.token(uri: redacted, headers: [:]) == "REDACTED", "\(uri.debugDescription) → \(redacted.debugDescription)")
            #expect(!redacted.contains("S3cr3t") && !redacted.contains("to1"), "\(redacted.debugDescription)")
        }
    }

    @Test("arbitrary URIs and header values: an answer, never a crash")
    func arbitraryInput() async {
        let characters = Array("/?#&=%+ tokenTOKEN0aé😀\u{0}\u{7F}[]:@!$'()*,;")
        let text = Gen<Int>.int(in: 0...(characters.count - 1)).array(of: 0...40).map { String($0.map { characters[$0] }) }
        await propertyCheck(count: 2000, input: text, text) { uri, header in
            var headers = HTTPHeaders()
            headers.add(name: "Authorization", value: header)
            _ = HandshakeCredentials.token(uri: uri, headers: headers)
            let redacted = HandshakeCredentials.redact(uri)
            if let token = HandshakeCredentials.token(uri: uri, headers: [:]), token.count >= 4 {
                #expect(!redacted.contains(token), "\(uri.debugDescription) → \(redacted.debugDescription)")
            }
        }
    }

    // MARK: The RFC 6455 request checks

    /// RFC 6455 4.2.1 and 4.4 as the model: GET; `Upgrade` containing `websocket` and
    /// `Connection` containing `upgrade` (tokens, any case); one `Sec-WebSocket-Version: 13`; one
    /// `Sec-WebSocket-Key` that is base64 of 16 bytes.
    static func referenceRejection(method: HTTPMethod, headers: HTTPHeaders) -> String? {
        guard method == .GET else { return "method_not_allowed" }
        func tokens(_ name: String) -> [String] {
            headers[name].flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        }
        guard tokens("Upgrade").contains("websocket"), tokens("Connection").contains("upgrade") else { return "upgrade_required" }
        guard headers["Sec-WebSocket-Version"] == ["13"] else { return "unsupported_version" }
        let keys = headers["Sec-WebSocket-Key"]
        guard keys.count == 1, keys[0].utf8.count == 24, keys[0].hasSuffix("=="), Data(base64Encoded: keys[0])?.count == 16 else {
            return "bad_key"
        }
        return nil
    }

    @Test("upgrade checks: random requests get the rejection (or acceptance) RFC 6455 gives them")
    func upgradeChecks() async {
        let choices = Gen<UInt64>.value(in: 0...UInt64.max).array(of: 0...40)
        await propertyCheck(count: 3000, input: choices) { tape in
            var source = ChoiceTape(tape)
            let method: HTTPMethod = Int.random(in: 0..<10, using: &source) == 0 ? [.POST, .HEAD, .PUT].randomElement(using: &source) ?? .POST : .GET
            var headers = HTTPHeaders()
            func maybeAdd(_ name: String, _ choices: [String]) {
                for _ in 0..<([1, 1, 1, 1, 0, 2].randomElement(using: &source) ?? 1) {
                    headers.add(name: [name, name.lowercased(), name.uppercased()].randomElement(using: &source) ?? name, value: choices.randomElement(using: &source) ?? "")
                }
            }
            maybeAdd("Upgrade", ["websocket", "WebSocket", "h2c, websocket", "websockets", ""])
            maybeAdd("Connection", ["Upgrade", "keep-alive, Upgrade", "upgrade", "close", "Upgrade2"])
            maybeAdd("Sec-WebSocket-Version", ["13", "8", " 13", "13, 8", ""])
            let key = Data((0..<16).map { _ in UInt8.random(in: 0...255, using: &source) }).base64EncodedString()
            let short = Data((0..<15).map { _ in UInt8.random(in: 0...255, using: &source) }).base64EncodedString()
            let long = Data((0..<17).map { _ in UInt8.random(in: 0...255, using: &source) }).base64EncodedString()
            maybeAdd("Sec-WebSocket-Key", [key, key, short, long, String(key.dropLast(2)), key + "=", "!" + key.dropFirst(), String(key.dropLast(2)) + "A=", "", "dGhlIHNhbXBsZSBub25jZQ=="])
            let actual = UpgradeRequestCheck.rejection(method: method, headers: headers)?.code
            #expect(actual == Self.referenceRejection(method: method, headers: headers), "\(method) \(headers)")
        }
    }
}
