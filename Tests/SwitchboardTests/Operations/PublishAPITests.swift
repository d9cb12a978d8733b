import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@testable import Switchboard
import SwitchboardHummingbird

/// The HTTP publish API: every status code, and events published by it reaching WebSocket clients
/// with an eid, resumable like any other.
@Suite("Publish API: /api over HTTP")
struct PublishAPITests {
    static let key = "publish-api-test-key-0123456789"

    static func routes(key: String?) -> @Sendable (Router<BasicRequestContext>, SwitchboardServer) -> Void {
        { router, switchboard in router.addSwitchboardPublishAPI(switchboard, apiKey: key.map(APIKey.init)) }
    }

    /// A request with the API key (or `authorization` as given) and a JSON body.
    static func call(
        _ server: TestServer, _ method: HTTPRequest.Method, _ uri: String, _ body: String? = nil, authorization: String? = "Bearer \(key)"
    ) async throws -> (status: HTTPResponse.Status, json: [String: JSONValue], headers: HTTPFields) {
        var headers: HTTPFields = [:]
        if let authorization { headers[.authorization] = authorization }
        if body != nil { headers[.contentType] = "application/json" }
        let response = try await server.http.execute(uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) })
        #expect(response.headers[.contentType] == "application/json", "\(uri): \(response.headers)")
        let json = (try? JSONDecoder().decode([String: JSONValue].self, from: Data(buffer: response.body))) ?? [:]
        return (response.status, json, response.headers)
    }

    static func errorCode(_ json: [String: JSONValue]) -> String? { json["error"]?["code"]?.stringValue }

    @Test("a missing or wrong key gets 401 with WWW-Authenticate, on every route")
    func unauthorized() async throws {
        try await TestServers.with(routes: Self.routes(key: Self.key)) { server in
            let routes: [(HTTPRequest.Method, String, String?)] = [
                (.post, "/api/publish", #"{"room":"a","event":"e"}"#), (.post, "/api/broadcast", #"{"rooms":["a"],"event":"e"}"#),
                (.post, "/api/notify", #"{"user":"a","event":"e"}"#), (.get, "/api/rooms/a/presence", nil), (.get, "/api/rooms/a/history", nil),
            ]
            for (method, uri, body) in routes {
                for authorization in [nil, "Bearer wrong-key", "Bearer \(Self.key)x", "Basic \(Self.key)", "Bearer ", Self.key] {
                    let response = try await Self.call(server, method, uri, body, authorization: authorization)
                    #expect(response.status == .unauthorized, "\(uri) with \(authorization ?? "nothing")")
                    #expect(Self.errorCode(response.json) == "unauthorized")
                    #expect(response.headers[.wwwAuthenticate] == "Bearer")
                }
            }
        }
    }

    @Test("without a key the API is off: 404 api_disabled, whatever the key presented")
    func disabledWithoutKey() async throws {
        try await TestServers.with(routes: Self.routes(key: nil)) { server in
            let response = try await Self.call(server, .post, "/api/publish", #"{"room":"a","event":"e"}"#)
            #expect(response.status == .notFound)
            #expect(Self.errorCode(response.json) == "api_disabled")
        }
    }

    @Test("bad input gets 400 with a code that names the problem; nothing is published")
    func badInput() async throws {
        try await TestServers.with(routes: Self.routes(key: Self.key)) { server in
            let cases: [(String, String, String)] = [
                ("/api/publish", "not json", "invalid_body"),
                ("/api/publish", "[1,2]", "invalid_body"),
                ("/api/publish", #"{"event":"e"}"#, "invalid_body"),
                ("/api/publish", #"{"room":5,"event":"e"}"#, "invalid_body"),
                ("/api/publish", #"{"room":"","event":"e"}"#, "invalid_room"),
                ("/api/publish", #"{"room":"a\nb","event":"e"}"#, "invalid_room"),
                ("/api/publish", #"{"room":"\#(String(repeating: "r", count: 129))","event":"e"}"#, "invalid_room"),
                ("/api/publish", #"{"room":"a","event":""}"#, "invalid_event"),
                ("/api/publish", #"{"room":"a","event":"ack"}"#, "invalid_event"),
                ("/api/publish", #"{"room":"a","event":"presence.join"}"#, "invalid_event"),
                ("/api/broadcast", #"{"rooms":[],"event":"e"}"#, "invalid_rooms"),
                ("/api/broadcast", #"{"rooms":"a","event":"e"}"#, "invalid_body"),
                ("/api/broadcast", #"{"rooms":["a",""],"event":"e"}"#, "invalid_room"),
                ("/api/notify", #"{"user":"","event":"e"}"#, "invalid_user"),
                ("/api/notify", #"{"event":"e"}"#, "invalid_body"),
            ]
            for (uri, body, code) in cases {
                let response = try await Self.call(server, .post, uri, body)
                #expect(response.status == .badRequest, "\(uri) \(body)")
                #expect(Self.errorCode(response.json) == code, "\(uri) \(body): \(response.json)")
                #expect(response.json["error"]?["message"]?.stringValue?.isEmpty == false)
            }
            // The room exists now (a member), so its history is looked at: bad parameters are 400.
            let alice = try await server.open("alice")
            _ = try await RoomTests.join(alice, "a")
            for (query, code) in [("since=nope", "invalid_since"), ("since=e:x", "invalid_since"), ("limit=0", "invalid_limit"), ("limit=abc", "invalid_limit")] {
                let response = try await Self.call(server, .get, "/api/rooms/a/history?\(query)")
                #expect(response.status == .badRequest, "\(query)")
                #expect(Self.errorCode(response.json) == code, "\(query): \(response.json)")
            }
            // None of the bad publishes took a position: the room's history is empty.
            let history = try await Self.call(server, .get, "/api/rooms/a/history")
            #expect(history.status == .ok)
            #expect(history.json["events"]?.arrayValue?.isEmpty == true, "\(history.json)")
            await alice.close()
        }
    }

    @Test("a body over the server's message size gets 413 body_too_large")
    func bodyTooLarge() async throws {
        var configuration = SwitchboardConfiguration()
        configuration.maxMessageSize = 1024
        try await TestServers.with(configuration: configuration, routes: Self.routes(key: Self.key)) { server in
            let body = #"{"room":"a","event":"e","data":"\#(String(repeating: "x", count: 2000))"}"#
            let response = try await Self.call(server, .post, "/api/publish", body)
            #expect(response.status == .contentTooLarge)
            #expect(Self.errorCode(response.json) == "body_too_large")
        }
    }

    @Test("while the broker cannot be reached: 503 unavailable, and the API works again once it is back")
    func brokerUnreachable() async throws {
        let broker = FaultyBroker()
        try await TestServers.with(broker: broker, routes: Self.routes(key: Self.key)) { server in
            broker.failing.withLock { $0 = true }
            for (method, uri, body) in [
                (HTTPRequest.Method.post, "/api/publish", #"{"room":"a","event":"e"}"#), (.post, "/api/broadcast", #"{"rooms":["a"],"event":"e"}"#),
                (.get, "/api/rooms/a/history", nil), (.get, "/api/rooms/a/presence", nil),
            ] as [(HTTPRequest.Method, String, String?)] {
                let response = try await Self.call(server, method, uri, body)
                #expect(response.status == .serviceUnavailable, "\(uri)")
                #expect(Self.errorCode(response.json) == "unavailable", "\(uri): \(response.json)")
            }
            broker.failing.withLock { $0 = false }
            let response = try await Self.call(server, .post, "/api/publish", #"{"room":"a","event":"e"}"#)
            #expect(response.status == .ok, "\(response.json)")
        }
    }

    @Test("an unknown room's presence and history get 404 room_not_found; an unknown route under /api gets 404 not_found")
    func unknownRoom() async throws {
        try await TestServers.with(routes: Self.routes(key: Self.key)) { server in
            for uri in ["/api/rooms/nobody-here/presence", "/api/rooms/nobody-here/history", "/api/rooms/nobody-here/history?since=abc:1"] {
                let response = try await Self.call(server, .get, uri)
                #expect(response.status == .notFound, "\(uri)")
                #expect(Self.errorCode(response.json) == "room_not_found", "\(uri): \(response.json)")
            }
            let unknown = try await Self.call(server, .get, "/api/nothing/here")
            #expect(unknown.status == .notFound)
            #expect(Self.errorCode(unknown.json) == "not_found")
        }
    }

    @Test("POST /api/publish: a member gets the event with the eid the API returned, history has it, and a client that resumes from before gets it replayed")
    func publishReachesClientsAndIsResumable() async throws {
        try await TestServers.with(routes: Self.routes(key: Self.key)) { server in
            let alice = try await server.open("alice")
            let before = try await ResumeTests.joinPosition(alice, "news room")
            let response = try await Self.call(server, .post, "/api/publish", #"{"room":"news room","event":"news.published","data":{"title":"hello","n":[1,2.5,null,true]}}"#)
            #expect(response.status == .ok, "\(response.json)")
            let eid = try #require(response.json["eid"]?.stringValue.flatMap(EventID.init))
            #expect(eid.epoch == before.epoch && eid.offset == before.offset + 1)
            let event = try await alice.next(event: "news.published")
            #expect(event["room"]?.stringValue == "news room")
            #expect(event["eid"]?.stringValue == eid.description)
            #expect(event["data"]?["title"]?.stringValue == "hello")
            #expect(event["data"]?["n"] == .array([.number(1), .number(2.5), .null, .bool(true)]))

            // A client that last saw `before` resumes and gets it, replayed in order.
            let bob = try await server.openQuiet("bob")
            let ack = try await Resume.hello(bob, ["news room": before.description])
            #expect(Resume.outcome(ack, "news room")?["recovered"]?.boolValue == true, "\(ack)")
            let replayed = try await Resume.events(bob, room: "news room", through: eid)
            #expect(replayed.map { $0["event"]?.stringValue } == ["news.published"])

            // History and presence over the API.
            let history = try await Self.call(server, .get, "/api/rooms/news%20room/history?since=\(before)")
            #expect(history.status == .ok)
            #expect(history.json["recovered"]?.boolValue == true)
            #expect(history.json["current"]?.stringValue == eid.description)
            #expect(history.json["events"]?.arrayValue?.map { $0["eid"]?.stringValue } == [eid.description], "\(history.json)")
            let latest = try await Self.call(server, .get, "/api/rooms/news%20room/history?limit=1")
            #expect(latest.json["events"]?.arrayValue?.first?["data"]?["title"]?.stringValue == "hello")
            let stale = try await Self.call(server, .get, "/api/rooms/news%20room/history?since=otherepoch:3")
            #expect(stale.status == .ok)
            #expect(stale.json["recovered"]?.boolValue == false)
            #expect(stale.json["events"]?.arrayValue?.isEmpty == true)
            let presence = try await Self.call(server, .get, "/api/rooms/news%20room/presence")
            #expect(presence.status == .ok)
            #expect(presence.json["members"] == .array([.string("alice"), .string("bob")]), "\(presence.json)")
            await alice.close()
            await bob.close()
        }
    }

    @Test("POST /api/broadcast publishes to each room once, with each room's eid")
    func broadcast() async throws {
        try await TestServers.with(routes: Self.routes(key: Self.key)) { server in
            let alice = try await server.open("alice")
            let bob = try await server.open("bob")
            _ = try await RoomTests.join(alice, "one")
            _ = try await RoomTests.join(bob, "two")
            let response = try await Self.call(server, .post, "/api/broadcast", #"{"rooms":["one","two","one"],"event":"alert","data":"fire"}"#)
            #expect(response.status == .ok, "\(response.json)")
            let eids = try #require(response.json["eids"]?.objectValue)
            #expect(Set(eids.keys) == ["one", "two"])
            let a = try await alice.next(event: "alert")
            let b = try await bob.next(event: "alert")
            #expect(a["room"]?.stringValue == "one" && a["eid"] == eids["one"] && a["data"]?.stringValue == "fire")
            #expect(b["room"]?.stringValue == "two" && b["eid"] == eids["two"])
            await alice.close()
            await bob.close()
        }
    }

    @Test("POST /api/notify reaches every connection of the user, and no one else, without room or eid")
    func notifyUser() async throws {
        try await TestServers.with(routes: Self.routes(key: Self.key)) { server in
            let tab1 = try await server.open("alice")
            let tab2 = try await server.open("alice")
            let bob = try await server.open("bob")
            let response = try await Self.call(server, .post, "/api/notify", #"{"user":"alice","event":"invoice.paid","data":{"amount":42}}"#)
            #expect(response.status == .ok)
            #expect(response.json["connections"] == .number(2))
            for tab in [tab1, tab2] {
                let event = try await tab.next(event: "invoice.paid")
                #expect(event["data"]?["amount"] == .number(42))
                #expect(event["room"] == nil && event["eid"] == nil, "\(event)")
            }
            // Bob got nothing: his next message is the reply to this request.
            try await bob.sendText(#"{"event":"room.join","data":{"room":"x"},"id":"probe"}"#)
            let next = try await bob.nextJSON()
            #expect(next["id"]?.stringValue == "probe", "\(next)")
            let nobody = try await Self.call(server, .post, "/api/notify", #"{"user":"carol","event":"e"}"#)
            #expect(nobody.json["connections"] == .number(0))
            for client in [tab1, tab2, bob] { await client.close() }
        }
    }
}
