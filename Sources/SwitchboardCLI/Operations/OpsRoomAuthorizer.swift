import Switchboard

/// The server's permissions with the operations room added: only tokens with the claim
/// `"ops": true` (minted by `/ops/token`) may join it or see who is in it, and no client may
/// publish to it; every other room is left to `rules` (or open, without rules).
struct OpsRoomAuthorizer: RoomAuthorizer {
    let room: String
    let rules: (any RoomAuthorizer)?

    func authorize(_ action: RoomAction, room: String, socket: Socket) async throws -> Bool {
        if let answer = authorizeNow(action, room: room, socket: socket) { return answer }
        return try await rules?.authorize(action, room: room, socket: socket) ?? true
    }

    func authorizeNow(_ action: RoomAction, room: String, socket: Socket) -> Bool? {
        guard room == self.room else { return rules.map { $0.authorizeNow(action, room: room, socket: socket) } ?? true }
        switch action {
        case .join, .presence: return socket.user.claims["ops"]?.boolValue == true
        case .publish: return false
        }
    }
}
