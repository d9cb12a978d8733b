import Foundation
import Hummingbird
import NIOCore
import Switchboard

extension RouterMethods {
    /// The HTTP publish API, for any backend (a Rails app, a cron job) to publish to rooms and
    /// users and read rooms, under `prefix` (default `/api`); `docs/http-api.md` and
    /// `docs/openapi.yaml` describe it:
    ///
    /// - `POST /api/publish` `{room, event, data}` → `{eid}`
    /// - `POST /api/broadcast` `{rooms: [...], event, data}` → `{eids: {room: eid}}`
    /// - `POST /api/notify` `{user, event, data}` → `{connections}` (every node's connections of the
    ///   user get it; the number counts this node's)
    /// - `GET /api/rooms/{room}/presence` → `{room, members}`
    /// - `GET /api/rooms/{room}/history?since=<eid>&limit=<n>` → `{room, current, recovered, events}`
    ///
    /// Room events go through the broker as a client's `message.send` does (a position, history,
    /// every node), so clients resume them like any other. Every request needs
    /// `Authorization: Bearer <apiKey>` (401 otherwise); bad input gets 400, an unknown room 404,
    /// each with `{"error":{"code","message"}}`. With `apiKey` `nil` every route answers 404
    /// `api_disabled`. Any other path under `prefix` answers a JSON 404 `not_found`: give the API a
    /// prefix of its own, not one the app's routes share.
    public func addSwitchboardPublishAPI(_ switchboard: SwitchboardServer, apiKey: APIKey?, prefix: String = "/api") {
        let api = PublishAPI(switchboard: switchboard, key: apiKey)
        post(RouterPath("\(prefix)/publish")) { request, _ in await api.respond(request) { try await api.publish(&$0) } }
        post(RouterPath("\(prefix)/broadcast")) { request, _ in await api.respond(request) { try await api.broadcast(&$0) } }
        post(RouterPath("\(prefix)/notify")) { request, _ in await api.respond(request) { try await api.notify(&$0) } }
        get(RouterPath("\(prefix)/rooms/:room/presence")) { request, context in
            let room = context.parameters.get("room")
            return await api.respond(request) { _ in try await api.presence(room) }
        }
        get(RouterPath("\(prefix)/rooms/:room/history")) { request, context in
            let room = context.parameters.get("room")
            return await api.respond(request) { request in try await api.history(room, query: request.uri.queryParameters) }
        }
        // Anything else under the prefix: a JSON 404 rather than an empty one.
        for method in [HTTPRequest.Method.get, .post, .put, .delete, .patch] {
            on(RouterPath("\(prefix)/**"), method: method) { request, _ in
                await api.respond(request) { _ in throw APIError(status: .notFound, code: "not_found", message: "no such route") }
            }
        }
    }
}

/// The handlers of ``RouterMethods/addSwitchboardPublishAPI(_:apiKey:prefix:)``.
struct PublishAPI: Sendable {
    let switchboard: SwitchboardServer
    let key: APIKey?

    /// Checks the key, reads the body (bounded by the server's message size) and turns every
    /// failure into its JSON error answer.
    func respond(_ request: Request, _ handle: (inout Request) async throws -> Response) async -> Response {
        guard let key else { return APIError.disabled.response }
        guard let header = request.headers[.authorization], let presented = APIKey.bearer(header), key.matches(presented) else {
            return APIError.unauthorized.response
        }
        var request = request
        do {
            return try await handle(&request)
        } catch let error as APIError {
            return error.response
        } catch is NIOTooManyBytesError {
            return APIError.tooLarge.response
        } catch {
            switchboard.logger.error("publish API failed", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
            return APIError.unavailable.response
        }
    }

    private func body(_ request: inout Request) async throws -> ByteBuffer {
        try await request.collectBody(upTo: switchboard.configuration.maxMessageSize)
    }

    func publish(_ request: inout Request) async throws -> Response {
        let body = try PublishRequests.decode(PublishRequests.Publish.self, from: try await body(&request))
        try PublishRequests.checkRoom(body.room)
        try PublishRequests.checkEvent(body.event)
        let data = try PublishRequests.dataJSON(body.data)
        let eid = try await switchboard.rooms.publish(room: body.room, event: body.event, dataJSON: data)
        return jsonResponse(try Self.encode(["eid": eid.description]))
    }

    func broadcast(_ request: inout Request) async throws -> Response {
        let body = try PublishRequests.decode(PublishRequests.Broadcast.self, from: try await body(&request))
        guard (1...PublishRequests.maxBroadcastRooms).contains(body.rooms.count) else {
            throw APIError.badRequest("invalid_rooms", "rooms: 1 to \(PublishRequests.maxBroadcastRooms) rooms")
        }
        for (index, room) in body.rooms.enumerated() { try PublishRequests.checkRoom(room, field: "rooms[\(index)]") }
        try PublishRequests.checkEvent(body.event)
        // Encoded once: every room's publication shares these bytes.
        let data = try PublishRequests.dataJSON(body.data)
        var eids: [String: String] = [:]
        for room in body.rooms where eids[room] == nil {
            eids[room] = try await switchboard.rooms.publish(room: room, event: body.event, dataJSON: data).description
        }
        return jsonResponse(try Self.encode(["eids": eids]))
    }

    func notify(_ request: inout Request) async throws -> Response {
        let body = try PublishRequests.decode(PublishRequests.Notify.self, from: try await body(&request))
        try PublishRequests.checkUser(body.user)
        try PublishRequests.checkEvent(body.event)
        let data = try PublishRequests.dataJSON(body.data)
        let connections = try await switchboard.send(toUser: body.user, event: body.event, dataJSON: data)
        return jsonResponse(try Self.encode(["connections": connections]))
    }

    func presence(_ rawRoom: String?) async throws -> Response {
        let room = try Self.room(rawRoom)
        let members = try await switchboard.rooms.members(of: room)
        if members.isEmpty, try await !hasHistory(room) { throw APIError.roomNotFound(room) }
        struct Presence: Encodable { var room: String; var members: [String] }
        return jsonResponse(try Self.encode(Presence(room: room, members: members)))
    }

    func history(_ rawRoom: String?, query: Parameters) async throws -> Response {
        let room = try Self.room(rawRoom)
        let maxLimit = max(1, switchboard.configuration.history.maxReplay)
        var limit = min(100, maxLimit)
        if let text = query.get("limit") {
            guard let value = Int(text), (1...maxLimit).contains(value) else {
                throw APIError.badRequest("invalid_limit", "limit: an integer from 1 to \(maxLimit)")
            }
            limit = value
        }
        var since: EventID?
        if let text = query.get("since") {
            guard let eid = EventID(text) else { throw APIError.badRequest("invalid_since", "since: an event id, <epoch>:<offset>") }
            since = eid
        }
        // Before `since` is read: a read with a position gives a room without a stream one.
        if try await !hasHistory(room), try await switchboard.rooms.members(of: room).isEmpty { throw APIError.roomNotFound(room) }
        let history = try await switchboard.rooms.history(of: room, since: since, limit: limit)
        // The events are written as clients received them, not decoded and encoded again.
        var buffer = ByteBuffer()
        buffer.writeString("{\"room\":")
        buffer.writeBytes(try JSONEncoder().encode(room))
        buffer.writeString(",\"current\":")
        buffer.writeString(history.current.map { "\"\($0.description)\"" } ?? "null")
        buffer.writeString(",\"recovered\":\(history.recovered),\"events\":[")
        for (index, var envelope) in history.envelopes.enumerated() {
            if index > 0 { buffer.writeString(",") }
            buffer.writeBuffer(&envelope)
        }
        buffer.writeString("]}")
        return jsonResponse(buffer)
    }

    private func hasHistory(_ room: String) async throws -> Bool {
        try await !switchboard.rooms.history(of: room, since: nil, limit: 1).events.isEmpty
    }

    /// A room name from the path (percent-encoded there), checked.
    private static func room(_ raw: String?) throws(APIError) -> String {
        guard let raw, let room = raw.removingPercentEncoding else { throw .badRequest("invalid_room", "room: not a valid percent-encoded name") }
        try PublishRequests.checkRoom(room)
        return room
    }

    private static func encode(_ value: some Encodable) throws -> ByteBuffer {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return ByteBuffer(bytes: try encoder.encode(value))
    }
}
