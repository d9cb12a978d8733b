import Foundation
import Hummingbird
import NIOCore

/// The web UI's files (`Public/`), read once at startup and served from memory.
struct WebAssets: Sendable {
    struct Asset: Sendable {
        let contentType: String
        let bytes: ByteBuffer
    }

    let assets: [String: Asset]

    /// Reads `files` from `folder` (the target's resource bundle).
    init(folder: URL, files: [String]) throws {
        var assets: [String: Asset] = [:]
        for file in files {
            let data = try Data(contentsOf: folder.appendingPathComponent(file))
            assets[file] = Asset(contentType: Self.contentType(of: file), bytes: ByteBuffer(bytes: data))
        }
        self.assets = assets
    }

    static func contentType(of file: String) -> String {
        switch (file as NSString).pathExtension {
        case "html": "text/html; charset=utf-8"
        case "css": "text/css; charset=utf-8"
        case "js": "text/javascript; charset=utf-8"
        case "svg": "image/svg+xml"
        default: "application/octet-stream"
        }
    }

    /// `/` serves `index.html`, `/<file>` each other file.
    func addRoutes<Context: RequestContext>(to router: Router<Context>) {
        for (file, asset) in assets {
            let path = file == "index.html" ? "/" : "/\(file)"
            router.get(RouterPath(path)) { _, _ -> Response in
                Response(
                    status: .ok,
                    headers: [.contentType: asset.contentType, .cacheControl: "no-cache"],
                    body: .init(byteBuffer: asset.bytes)
                )
            }
        }
    }
}
