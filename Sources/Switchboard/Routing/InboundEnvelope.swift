import Foundation

/// The routing part of a client envelope `{"event": …, "id": …, "data": …}`.
struct InboundEnvelope: Decodable {
    let event: String
    let id: String?
    let hasData: Bool

    private enum CodingKeys: String, CodingKey { case event, id, data }

    /// Decodes nothing: only notes that `data` is present.
    private struct Presence: Decodable {
        init(from decoder: any Decoder) throws {}
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.event = try container.decode(String.self, forKey: .event)
        self.id = try container.decodeIfPresent(String.self, forKey: .id)
        self.hasData = try container.decodeIfPresent(Presence.self, forKey: .data) != nil
    }

    enum ParseError: Error {
        case notJSON
        case notEnvelope(String)
    }

    /// Parses the envelope of a text message; the error says which code to reply with.
    static func parse(_ bytes: Data, decoder: JSONDecoder) throws(ParseError) -> InboundEnvelope {
        do {
            return try decoder.decode(InboundEnvelope.self, from: bytes)
        } catch let DecodingError.dataCorrupted(context) where context.codingPath.isEmpty {
            throw .notJSON
        } catch DecodingError.keyNotFound(let key, _) {
            throw .notEnvelope("missing \"\(key.stringValue)\"")
        } catch let DecodingError.typeMismatch(_, context) {
            let field = context.codingPath.first?.stringValue
            throw .notEnvelope(field.map { "\"\($0)\" must be a string" } ?? "the message must be a JSON object")
        } catch let DecodingError.valueNotFound(_, context) {
            let field = context.codingPath.first?.stringValue ?? "event"
            throw .notEnvelope("\"\(field)\" must be a string")
        } catch {
            throw .notJSON
        }
    }
}

/// The `data` member of an envelope, decoded as the handler's payload type.
struct InboundData<Payload: Decodable>: Decodable {
    let data: Payload
}
