// The README's "Swift client" example, compiled and run by ClientReadmeExampleTests. Keep the two
// identical: the test fails when the README's block no longer appears here verbatim.
// readme-client-example:begin
import SwitchboardClient

struct Post: Encodable { let room: String; let content: String }
struct Posted: Decodable { let eid: String; let ts: Int }
struct NewMessage: Decodable { let from: String; let content: String }

/// Posts `text` to the lobby, then collects the next `count` messages of the lobby.
func chatInLobby(url: String, token: String, text: String, count: Int) async throws -> [String] {
    let client = SwitchboardClient(url: url, token: .provider { token })  // called before every connection attempt
    try await client.join("lobby")  // rejoined and resumed after every reconnect
    let posted = try await client.send("message.send", Post(room: "lobby", content: text), as: Posted.self)
    print("posted as", posted.eid)
    var received: [String] = []
    for await event in client.events {
        switch event {
        case .event(let event) where event.event == "message.new":
            let message = try event.decode(NewMessage.self)  // also event.room, event.eid, event.replayed
            received.append("\(message.from): \(message.content)")
        case .refresh(let refresh):
            print("reload", refresh.room)  // the server could not replay what was missed
        case .state(let state):
            print(state)  // connecting, open, reconnecting(…), closed(…)
        default:
            break
        }
        if received.count == count { break }
    }
    await client.close()
    return received
}
// readme-client-example:end
