import Foundation
import NIOCore

/// `message.send` `{room, content}`.
public struct ChatMessage: Codable, Sendable, ValidatablePayload, FlatDecodable {
    public let room: String
    public let content: String

    public init(room: String, content: String) {
        self.room = room
        self.content = content
    }

    init(flat: FlatObject) throws(EventError) {
        room = try flat.requiredString("room")
        content = try flat.requiredString("content")
    }

    /// Longest `content` accepted, in characters.
    public static let maxContentLength = 4000

    public func validate() throws {
        if let problem = RoomName.validate(room) {
            throw PayloadValidationError("room: \(problem)")
        }
        if content.isEmpty {
            throw PayloadValidationError("content: must not be empty")
        }
        // Counting characters walks grapheme clusters; a text with no more bytes than the limit
        // cannot have more characters.
        if content.utf8.count > Self.maxContentLength, content.count > Self.maxContentLength {
            throw PayloadValidationError("content: at most \(Self.maxContentLength) characters")
        }
    }
}

/// `typing.start` `{room}`.
public struct TypingNotice: Codable, Sendable, ValidatablePayload, FlatDecodable {
    public let room: String

    init(flat: FlatObject) throws(EventError) {
        room = try flat.requiredString("room")
    }

    public func validate() throws {
        if let problem = RoomName.validate(room) {
            throw PayloadValidationError("room: \(problem)")
        }
    }
}

extension EventRouter {
    /// Adds the chat events of the standalone server:
    /// - `message.send` `{room, content}`: the sender must be in the room and allowed to publish
    ///   to it (``RoomAction/publish``); the other members get `message.new`
    ///   `{room, from, content, ts}` (with the room's event id); the ack carries `{eid, ts}`. `ts`
    ///   is the server time in milliseconds since 1970.
    /// - `typing.start` `{room}`: the same conditions; the other members get `typing.start`
    ///   `{room, from}`, without an event id (it is not part of the room's history).
    public mutating func addChatEvents() {
        onLoopReply("message.send", as: ChatMessage.self, pipelined: true) { message, context in
            guard context.rooms.contains(context.socket, room: message.room) else {
                throw EventError.forbidden("not in room \(message.room)")
            }
            switch context.switchboard.permissionNow(.publish, room: message.room, socket: context.socket) {
            case true?:
                return Self.publishChatMessage(message, context: context)
            case false?:
                throw SwitchboardServer.forbidden(.publish, room: message.room)
            case nil:
                let published = context.switchboard.checkPermission(.publish, room: message.room, socket: context.socket).flatMap {
                    _ -> EventLoopFuture<DeferredReply> in
                    switch Self.publishChatMessage(message, context: context) {
                    case .now(let data): return context.socket.eventLoop.makeSucceededFuture(DeferredReply(data: data))
                    case .later(let reply), .published(let reply): return reply
                    }
                }
                return .later(published)
            }
        }
        onLoopReply("typing.start", as: TypingNotice.self) { notice, context in
            guard context.rooms.contains(context.socket, room: notice.room) else {
                throw EventError.forbidden("not in room \(notice.room)")
            }
            switch context.switchboard.permissionNow(.publish, room: notice.room, socket: context.socket) {
            case true?:
                Self.publishTyping(notice, context: context)
                return .now(nil)
            case false?:
                throw SwitchboardServer.forbidden(.publish, room: notice.room)
            case nil:
                let published = context.switchboard.checkPermission(.publish, room: notice.room, socket: context.socket).map {
                    Self.publishTyping(notice, context: context)
                    return DeferredReply(data: nil)
                }
                return .later(published)
            }
        }
    }

    private static func publishChatMessage(_ message: ChatMessage, context: EventContext) -> LoopReply {
        let timestamp = Int64(Date().timeIntervalSince1970 * 1000)
        var data = ByteBufferAllocator().buffer(capacity: 64 + message.room.utf8.count + message.content.utf8.count + context.user.id.utf8.count)
        data.writeStaticString("{\"room\":")
        data.writeJSONString(message.room)
        data.writeStaticString(",\"from\":")
        data.writeJSONString(context.user.id)
        data.writeStaticString(",\"content\":")
        data.writeJSONString(message.content)
        data.writeStaticString(",\"ts\":")
        data.writeJSONInteger(timestamp)
        data.writeInteger(UInt8(ascii: "}"))
        let publication = Publication(room: message.room, event: "message.new", dataJSON: data, origin: context.socket)
        switch context.rooms.publishNowOrLater(publication, on: context.socket.eventLoop) {
        case .now(let eventID):
            return .now(ChatAck.data(eventID: eventID, timestamp: timestamp))
        case .later(let published):
            return .published(published.map { DeferredReply(data: ChatAck.data(eventID: $0, timestamp: timestamp)) })
        }
    }

    private static func publishTyping(_ notice: TypingNotice, context: EventContext) {
        var data = ByteBuffer()
        data.writeStaticString("{\"room\":")
        data.writeJSONString(notice.room)
        data.writeStaticString(",\"from\":")
        data.writeJSONString(context.user.id)
        data.writeInteger(UInt8(ascii: "}"))
        let publication = Publication(room: notice.room, event: "typing.start", dataJSON: data, persistent: false, origin: context.socket)
        _ = context.rooms.publishNowOrLater(publication, on: context.socket.eventLoop)
    }
}

/// The ack of `message.send`: `{"eid", "ts"}`.
enum ChatAck {
    static func data(eventID: EventID?, timestamp: Int64) -> ByteBuffer {
        var ack = ByteBufferAllocator().buffer(capacity: 64 + (eventID?.epoch.utf8.count ?? 0))
        ack.writeStaticString("{\"eid\":")
        if let eventID {
            ack.writeJSONEventID(eventID)
        } else {
            ack.writeStaticString("null")
        }
        ack.writeStaticString(",\"ts\":")
        ack.writeJSONInteger(timestamp)
        ack.writeInteger(UInt8(ascii: "}"))
        return ack
    }
}
