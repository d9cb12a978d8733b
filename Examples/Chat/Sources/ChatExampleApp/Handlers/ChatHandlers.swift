import Foundation
import Switchboard

extension EventRouter {
    /// The chat's events:
    /// - `message.send` `{room, content}`: stored, then broadcast to the room's other connections as
    ///   `message.new` (a room event with an `eid`); the ack is `{message, eid}`.
    /// - `message.edit` `{id, content}`: only by the message's author (`forbidden` otherwise;
    ///   `not_found` for an unknown id); stored, then broadcast as `message.edited`.
    /// - `typing.start` `{room}`: broadcast as `typing.start` `{room, from}`, ephemeral (no `eid`,
    ///   not stored, not replayed).
    mutating func addChatHandlers(database: ChatDatabase) {
        on("message.send", as: SendMessagePayload.self) { payload, context -> MessageAck in
            // Joined means allowed: the authorizer let this connection into the room.
            guard context.rooms.contains(context.socket, room: payload.room) else {
                throw EventError.forbidden("not in channel \(payload.room)")
            }
            // Stored first, so that what was broadcast is never missing from the database (the
            // snapshot of a later join). The envelope id makes a retry store nothing twice.
            let message = try await database.insertMessage(
                channel: payload.room, author: context.user.id, content: payload.content, at: Date(), clientID: context.id)
            let eid = try await context.broadcast(to: payload.room, event: "message.new", data: message)
            return MessageAck(message: message, eid: eid.description)
        }
        on("message.edit", as: EditMessagePayload.self) { payload, context -> MessageAck in
            guard let original = try await database.message(payload.id) else {
                throw EventError(code: "not_found", message: "no message \(payload.id)")
            }
            guard original.from == context.user.id else {
                throw EventError.forbidden("only the author may edit a message")
            }
            guard context.rooms.contains(context.socket, room: original.room) else {
                throw EventError.forbidden("not in channel \(original.room)")
            }
            guard let edited = try await database.editMessage(payload.id, content: payload.content, at: Date()) else {
                throw EventError(code: "not_found", message: "no message \(payload.id)")
            }
            let eid = try await context.broadcast(to: original.room, event: "message.edited", data: edited)
            return MessageAck(message: edited, eid: eid.description)
        }
        on("typing.start", as: TypingPayload.self) { payload, context in
            guard context.rooms.contains(context.socket, room: payload.room) else {
                throw EventError.forbidden("not in channel \(payload.room)")
            }
            try await context.rooms.broadcastEphemeral(
                room: payload.room, event: "typing.start", data: TypingNotice(room: payload.room, from: context.user.id), except: context.socket)
        }
    }
}
