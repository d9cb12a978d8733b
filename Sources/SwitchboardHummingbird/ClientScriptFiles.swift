import Foundation
import HTTPTypes
import NIOCore
import SwitchboardJavaScript

/// The JavaScript client (`switchboard.js`) and its declarations (`switchboard.d.ts`), served on
/// the app's port at ``SwitchboardConfiguration/clientScriptPath`` with an `ETag` and
/// `Cache-Control`; a request whose `If-None-Match` matches gets 304.
struct ClientScriptFiles: Sendable {
    /// One served file.
    struct File: Sendable {
        let body: ByteBuffer
        let contentType: String
        let etag: String
    }

    /// Browsers may reuse the file for 5 minutes, then revalidate it with its ETag (a server
    /// upgrade reaches every page within that time).
    static let cacheControl = "public, max-age=300"

    private let files: [String: File]

    /// The files at `scriptPath` and, beside it, the declarations (`.js` replaced by `.d.ts`, or
    /// `.d.ts` appended). Empty when `scriptPath` is `nil` or the bundle cannot be read.
    init(scriptPath: String?) {
        var files: [String: File] = [:]
        if let scriptPath, scriptPath.hasPrefix("/") {
            if let script = SwitchboardJavaScript.script {
                files[scriptPath] = File(bytes: script, contentType: "text/javascript; charset=utf-8")
            }
            if let declarations = SwitchboardJavaScript.declarations {
                files[Self.declarationsPath(for: scriptPath)] = File(bytes: declarations, contentType: "application/typescript; charset=utf-8")
            }
        }
        self.files = files
    }

    /// Where the declarations of a script at `scriptPath` are served.
    static func declarationsPath(for scriptPath: String) -> String {
        scriptPath.hasSuffix(".js") ? String(scriptPath.dropLast(3)) + ".d.ts" : scriptPath + ".d.ts"
    }

    var isEmpty: Bool { files.isEmpty }

    /// The file served at `path`, if any.
    func file(at path: String) -> File? {
        files[path]
    }

    /// The response to a `GET` or `HEAD` of `file`: 304 when `ifNoneMatch` names its ETag.
    static func response(for file: File, ifNoneMatch: String?) -> (HTTPResponse, ByteBuffer) {
        var fields = HTTPFields()
        fields[.eTag] = file.etag
        fields[.cacheControl] = cacheControl
        if let ifNoneMatch, matches(ifNoneMatch, etag: file.etag) {
            return (HTTPResponse(status: .notModified, headerFields: fields), ByteBuffer())
        }
        fields[.contentType] = file.contentType
        fields[.contentLength] = String(file.body.readableBytes)
        if let noSniff = HTTPField.Name("X-Content-Type-Options") { fields[noSniff] = "nosniff" }
        return (HTTPResponse(status: .ok, headerFields: fields), file.body)
    }

    /// RFC 9110 §13.1.2: a list of entity tags (weak comparison) or `*`.
    static func matches(_ ifNoneMatch: String, etag: String) -> Bool {
        for candidate in ifNoneMatch.split(separator: ",") {
            var tag = candidate.trimmingCharacters(in: .whitespaces)
            if tag == "*" { return true }
            if tag.hasPrefix("W/") { tag.removeFirst(2) }
            if tag == etag { return true }
        }
        return false
    }
}

extension ClientScriptFiles.File {
    init(bytes: Data, contentType: String) {
        self.body = ByteBuffer(bytes: bytes)
        self.contentType = contentType
        // FNV-1a over the bytes: stable across restarts and servers with the same file.
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        self.etag = "\"\(String(hash, radix: 16))-\(bytes.count)\""
    }
}
