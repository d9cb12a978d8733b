import Switchboard

/// How the chat's channels map onto Switchboard rooms: one room per channel, of the same name.
enum ChannelRooms {
    /// Who may do what in a room: the channel's members may join it, publish to it and see who is
    /// online in it; nobody else may do anything there. Asked on every join and `room.members`.
    static func authorizer(database: ChatDatabase) -> ClosureRoomAuthorizer {
        ClosureRoomAuthorizer { _, room, socket in
            try await database.isMember(socket.user.id, of: room)
        }
    }

    /// The `state.refresh` snapshot of a channel: its latest 50 messages, oldest first, as
    /// `{"messages":[…]}`. Sent on every first join (`sentOnJoin`) and whenever a resume cannot
    /// replay what was missed (a server restart, a client away too long).
    static func snapshot(database: ChatDatabase) -> RoomSnapshot {
        RoomSnapshot.custom { room, _ in
            ChannelSnapshot(messages: try await database.latestMessages(in: room, limit: 50))
        }.sentOnJoin()
    }
}

/// The `data` of a channel's `state.refresh`.
struct ChannelSnapshot: Codable, Sendable {
    let messages: [StoredMessage]
}
