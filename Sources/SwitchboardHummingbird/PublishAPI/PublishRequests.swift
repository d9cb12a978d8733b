import Foundation
import NIOCore
import Switchboard

/// The bodies the publish API accepts, decoded and checked: every problem is an ``APIError`` 400
/// that names the field.
enum PublishRequests {
    /// Most rooms one `POST /api/broadcast` may name.
    static let maxBroadcastRooms = 100

    /// `POST /api/publish`.
    struct Publish: Decodable {
        var room: String
        var event: String
        var data: JSONValue?
    }

    /// `POST /api/broadcast`.
    struct Broadcast: Decodable {
        var rooms: [String]
        var event: String
        var data: JSONValue?
    }

    /// `POST /api/notify`.
    struct Notify: Decodable {
        var user: String
        var event: String
        var data: JSONValue?
    }

    /// Event names that would be read as something else by clients: replies, and the built-in
    /// events' namespaces.
    static let reservedEvents: Set<String> = ["ack", "error"]
    static let reservedPrefixes = ["session.", "room.", "presence.", "state."]

    static func decode<Body: Decodable>(_ type: Body.Type, from body: ByteBuffer) throws(APIError) -> Body {
        do {
            return try JSONDecoder().decode(type, from: Data(body.readableBytesView))
        } catch let error as DecodingError {
            throw .badRequest("invalid_body", describe(error))
        } catch {
            throw .badRequest("invalid_body", "the body is not valid JSON")
        }
    }

    static func checkRoom(_ room: String, field: String = "room") throws(APIError) {
        if let problem = RoomName.validate(room) { throw .badRequest("invalid_room", "\(field) \(problem)") }
    }

    static func checkUser(_ user: String) throws(APIError) {
        if let problem = RoomName.validate(user) { throw .badRequest("invalid_user", "user \(problem)") }
    }

    static func checkEvent(_ event: String) throws(APIError) {
        if let problem = RoomName.validate(event) { throw .badRequest("invalid_event", "event \(problem)") }
        if reservedEvents.contains(event) || reservedPrefixes.contains(where: { event.hasPrefix($0) }) {
            throw .badRequest("invalid_event", "event names ack, error and session.*, room.*, presence.*, state.* are reserved")
        }
    }

    /// `data` as JSON text, encoded once for every recipient (`null` when absent).
    static func dataJSON(_ data: JSONValue?) throws(APIError) -> ByteBuffer {
        guard let data else { return ByteBuffer(string: "null") }
        do {
            return ByteBuffer(bytes: try JSONEncoder().encode(data))
        } catch {
            throw .badRequest("invalid_data", "data cannot be encoded as JSON (a number out of range?)")
        }
    }

    private static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let path = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
            return path.isEmpty ? "the body" : path
        }
        switch error {
        case .keyNotFound(let key, _): return "\(key.stringValue) is required"
        case .typeMismatch(_, let context): return "\(path(context)) has the wrong type"
        case .valueNotFound(_, let context): return "\(path(context)) must not be null"
        case .dataCorrupted(let context): return context.codingPath.isEmpty ? "the body is not valid JSON" : "\(path(context)) is invalid"
        @unknown default: return "the body is invalid"
        }
    }
}
