import Foundation
import Hummingbird
import Switchboard

/// The demo's login: `POST /api/login` `{"user": "alice"}` answers `{token, user, channels}` with a
/// JWT for that demo user, and `GET /api/users` lists the demo users. There is no password: this
/// stands in for the app's real sign-in, which would mint the same token after checking one.
struct DemoLogin: Sendable {
    let database: ChatDatabase
    let minter: TokenMinter
    /// How long a token is valid; the page asks for a new one before every connection.
    let tokenLifetime: Duration

    struct LoginRequest: Decodable {
        let user: String
    }

    struct LoginResponse: ResponseEncodable {
        let token: String
        let user: ChatUser
        let channels: [ChatChannel]
    }

    struct UsersResponse: ResponseEncodable {
        let users: [ChatUser]
    }

    func addRoutes(to router: Router<BasicRequestContext>) {
        router.get("/api/users") { _, _ in
            UsersResponse(users: try await database.users())
        }
        router.post("/api/login") { request, context -> LoginResponse in
            let login: LoginRequest
            do {
                login = try await request.decode(as: LoginRequest.self, context: context)
            } catch {
                throw HTTPError(.badRequest, message: "expected {\"user\": \"<demo user id>\"}")
            }
            guard let user = try await database.user(login.user) else {
                throw HTTPError(.unauthorized, message: "no demo user \(login.user)")
            }
            let token = try await minter.mint(subject: user.id, ttl: tokenLifetime)
            return LoginResponse(token: token, user: user, channels: try await database.channels(of: user.id))
        }
    }
}
