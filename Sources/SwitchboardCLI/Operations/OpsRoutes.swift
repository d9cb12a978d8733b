import Foundation
import Hummingbird
import NIOCore
import Switchboard
import SwitchboardHummingbird

/// The operations page of `serve`:
/// - `GET /ops?key=KEY`: ``OpsPage``, which connects to the WebSocket endpoint and joins the
///   operations room;
/// - `GET /ops/token?key=KEY`: a token for user `ops` with the claim `"ops": true` (one hour),
///   the only kind that may join the operations room (``OpsRoomAuthorizer``).
///
/// Both answer 401 with a JSON error without the operations key (`serve --ops-key`); with the
/// development secret no key is asked. Tokens are signed with the server's HS256 secret, so the
/// page needs one (a server that only verifies RS256/EdDSA/JWKS tokens has no operations page).
struct OpsRoutes {
    /// `nil`: open (development only).
    let key: APIKey?
    let minter: TokenMinter
    let issuer: String?
    let audience: String?
    let room: String

    func add(to router: Router<BasicRequestContext>) {
        let routes = self
        router.get("/ops") { request, _ in
            guard routes.allowed(request) else { return Self.unauthorized }
            let html = OpsPage.html.replacingOccurrences(of: "__OPS_ROOM__", with: routes.room)
            return Response(
                status: .ok, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"], body: .init(byteBuffer: ByteBuffer(string: html)))
        }
        router.get("/ops/token") { request, _ in
            guard routes.allowed(request) else { return Self.unauthorized }
            let token = try await routes.minter.mint(subject: "ops", ttl: .seconds(3600), claims: ["ops": .bool(true)], issuer: routes.issuer, audience: routes.audience)
            return Response(status: .ok, headers: [.contentType: "text/plain", .cacheControl: "no-store"], body: .init(byteBuffer: ByteBuffer(string: token)))
        }
    }

    private func allowed(_ request: Request) -> Bool {
        guard let key else { return true }
        return key.matches(request.uri.queryParameters.get("key") ?? "")
    }

    private static var unauthorized: Response {
        Response(
            status: .unauthorized, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(string: #"{"error":{"code":"unauthorized","message":"the operations page needs ?key= with the server's operations key"}}"#)))
    }
}
