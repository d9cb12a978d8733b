import Hummingbird
import NIOCore
import Switchboard

/// The routes of the development playground, served by `serve` only while it runs with the
/// development secret (which is public, so its tokens protect nothing):
/// - `GET /`: ``PlaygroundPage``;
/// - `GET /dev/token?sub=NAME`: a development token for user NAME (1 to 64 characters, no
///   control characters), valid one hour; 400 with a JSON error otherwise.
enum PlaygroundRoutes {
    static func add(to router: Router<BasicRequestContext>) {
        router.get("/") { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
                body: .init(byteBuffer: ByteBuffer(string: PlaygroundPage.html))
            )
        }
        router.get("/dev/token") { request, _ in
            let subject = request.uri.queryParameters.get("sub") ?? "dev"
            guard (1...64).contains(subject.count), !subject.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                return Response(
                    status: .badRequest,
                    headers: [.contentType: "application/json"],
                    body: .init(byteBuffer: ByteBuffer(string: #"{"error":{"code":"invalid_user","message":"sub must be 1 to 64 characters, without control characters"}}"#))
                )
            }
            let token = try await TokenMinter(hs256Secret: TokenMinter.developmentSecret).mint(subject: subject, ttl: .seconds(3600))
            return Response(status: .ok, headers: [.contentType: "text/plain", .cacheControl: "no-store"], body: .init(byteBuffer: ByteBuffer(string: token)))
        }
    }
}
