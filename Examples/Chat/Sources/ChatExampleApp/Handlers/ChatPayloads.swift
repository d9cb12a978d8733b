import Foundation
import Switchboard

/// `message.send` `{room, content}`.
struct SendMessagePayload: Decodable, Sendable, ValidatablePayload {
    let room: String
    let content: String

    func validate() throws {
        if let problem = RoomName.validate(room) { throw PayloadValidationError("room: \(problem)") }
        try validateContent(content)
    }
}

/// `message.edit` `{id, content}`.
struct EditMessagePayload: Decodable, Sendable, ValidatablePayload {
    let id: Int64
    let content: String

    func validate() throws {
        try validateContent(content)
    }
}

/// `typing.start` `{room}`.
struct TypingPayload: Decodable, Sendable, ValidatablePayload {
    let room: String

    func validate() throws {
        if let problem = RoomName.validate(room) { throw PayloadValidationError("room: \(problem)") }
    }
}

/// Longest message accepted, in characters.
let maxMessageLength = 2000

private func validateContent(_ content: String) throws {
    guard !content.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { throw PayloadValidationError("content: must not be empty") }
    guard content.count <= maxMessageLength else { throw PayloadValidationError("content: at most \(maxMessageLength) characters") }
}

/// The ack of `message.send` and `message.edit`: the message as stored and the room event's `eid`.
struct MessageAck: Encodable, Sendable {
    let message: StoredMessage
    let eid: String
}

/// `typing.start` as the other members get it: `{room, from}`.
struct TypingNotice: Encodable, Sendable {
    let room: String
    let from: String
}
