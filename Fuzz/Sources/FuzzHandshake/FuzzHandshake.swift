import NIOHTTP1

// libFuzzer target (main.swift starts the driver): the input, as UTF-8 (lossily), is split at the first newline into a request
// URI and the rest; the rest's lines are `name: value` headers. The token is read, the URI
// redacted, and the RFC 6455 checks run. Crashes, and a token that still authenticates from the redacted URI, are findings.

func fuzzHandshake(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
    let uri = String(lines.first ?? "")
    var headers = HTTPHeaders()
    for line in lines.dropFirst() {
        guard let colon = line.firstIndex(of: ":") else { continue }
        let name = line[..<colon]
        // NIO's parser hands on only token names (RFC 9110 5.1); `HTTPHeaders.add` traps on
        // non-ASCII ones (the harness's first finding, not the server's).
        guard !name.isEmpty, name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && !Array("()<>@,;:\\\"/[]?={}".utf8).contains($0) }) else { continue }
        headers.add(name: String(name), value: String(line[line.index(after: colon)...]))
    }
    _ = HandshakeCredentials.token(uri: uri, headers: headers)
    let redacted = HandshakeCredentials.redact(uri)
    // Whatever would authenticate from the logged URI is the placeholder. (Not "the token's text
    // appears nowhere": another item may carry the same text without authenticating anyone.)
    let relogged = HandshakeCredentials.token(uri: redacted, headers: [:])
    precondition(relogged == nil || relogged == "REDACTED", "a token survives redaction: \(uri.debugDescription) → \(redacted.debugDescription)")
    precondition(HandshakeCredentials.redact(redacted) == redacted, "redaction is not stable: \(uri.debugDescription)")
    for method in [HTTPMethod.GET, .POST] {
        _ = UpgradeRequestCheck.rejection(method: method, headers: headers)
    }
    return 0
}
