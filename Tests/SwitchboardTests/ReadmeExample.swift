// The README's quick start, compiled and run by ReadmeExampleTests. Keep the two identical:
// the test fails when the README's block no longer appears here verbatim.
// readme-example:begin
import Hummingbird
import Switchboard
import SwitchboardHummingbird

struct SendMessage: Decodable, Sendable, ValidatablePayload {
    let room: String
    let text: String
    func validate() throws {
        guard (1...2000).contains(text.count) else { throw PayloadValidationError("text: 1 to 2000 characters") }
    }
}

func buildApplication(jwtSecret: String, port: Int = 8080) async throws -> some ApplicationProtocol {
    var events = EventRouter()
    events.on("chat.send", as: SendMessage.self) { message, context in
        guard context.rooms.contains(context.socket, room: message.room) else { throw EventError.forbidden("join first") }
        return try await context.broadcast(to: message.room, event: "chat.message", data: ["from": context.user.id, "text": message.text]).description
    }
    let switchboard = SwitchboardServer(authentication: .jwt(try await TokenVerifier(keys: [.hmacSecret(jwtSecret)])), router: events)
    let router = Router()
    router.get("/hello") { _, _ in "Hello" }  // the app's own routes keep working on the same port
    return Application(router: router, server: .switchboard(switchboard), configuration: .init(address: .hostname("127.0.0.1", port: port)))
}
// readme-example:end
