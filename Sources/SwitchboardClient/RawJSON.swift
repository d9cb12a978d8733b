import Foundation

/// A JSON value exactly as the server sent it (the `data` of an event or an ack): decode it into
/// the app's own type with ``decode(_:using:)``, or read its ``text``.
public struct RawJSON: Sendable, Hashable, CustomStringConvertible {
    /// The JSON text, as received.
    public let text: String

    /// Wraps JSON text; it is not checked here (``decode(_:using:)`` fails on invalid JSON).
    public init(_ text: String) {
        self.text = text
    }

    /// JSON `null`: what an absent `data` reads as.
    public static let null = RawJSON("null")

    /// Whether the value is JSON `null` (or `data` was absent).
    public var isNull: Bool { text == "null" }

    /// Decodes the value as `type`.
    public func decode<T: Decodable>(_ type: T.Type = T.self, using decoder: JSONDecoder = JSONDecoder()) throws -> T {
        try decoder.decode(T.self, from: Data(text.utf8))
    }

    public var description: String { text }
}

extension RawJSON: Codable {
    /// Decodes any JSON value (as a field of the app's own types, say) and keeps it as text.
    public init(from decoder: any Decoder) throws {
        self.init(try JSONNode(from: decoder).text)
    }

    /// Encodes the value it holds; fails when ``text`` is not JSON.
    public func encode(to encoder: any Encoder) throws {
        try decode(JSONNode.self).encode(to: encoder)
    }
}

/// Any JSON value, for ``RawJSON``'s Codable conformance.
enum JSONNode: Codable, Sendable {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([JSONNode])
    case object([(String, JSONNode)])

    private struct Key: CodingKey {
        let stringValue: String
        init(stringValue: String) { self.stringValue = stringValue }
        var intValue: Int? { nil }
        init?(intValue: Int) { nil }
    }

    init(from decoder: any Decoder) throws {
        if let object = try? decoder.container(keyedBy: Key.self) {
            self = .object(try object.allKeys.sorted { $0.stringValue < $1.stringValue }.map { ($0.stringValue, try object.decode(JSONNode.self, forKey: $0)) })
            return
        }
        if var array = try? decoder.unkeyedContainer() {
            var items: [JSONNode] = []
            while !array.isAtEnd { items.append(try array.decode(JSONNode.self)) }
            self = .array(items)
            return
        }
        let value = try decoder.singleValueContainer()
        if value.decodeNil() {
            self = .null
        } else if let bool = try? value.decode(Bool.self) {
            self = .bool(bool)
        } else if let integer = try? value.decode(Int64.self) {
            self = .integer(integer)
        } else if let number = try? value.decode(Double.self) {
            self = .number(number)
        } else {
            self = .string(try value.decode(String.self))
        }
    }

    func encode(to encoder: any Encoder) throws {
        switch self {
        case .null:
            var container = encoder.singleValueContainer()
            try container.encodeNil()
        case .bool(let value):
            var container = encoder.singleValueContainer()
            try container.encode(value)
        case .integer(let value):
            var container = encoder.singleValueContainer()
            try container.encode(value)
        case .number(let value):
            var container = encoder.singleValueContainer()
            try container.encode(value)
        case .string(let value):
            var container = encoder.singleValueContainer()
            try container.encode(value)
        case .array(let items):
            var container = encoder.unkeyedContainer()
            for item in items { try container.encode(item) }
        case .object(let members):
            var container = encoder.container(keyedBy: Key.self)
            for (key, value) in members { try container.encode(value, forKey: Key(stringValue: key)) }
        }
    }

    /// Compact JSON text.
    var text: String {
        switch self {
        case .null: return "null"
        case .bool(let value): return value ? "true" : "false"
        case .integer(let value): return String(value)
        case .number(let value): return value.isFinite ? "\(value)" : "null"
        case .string(let value): return JSONScanner.quote(value)
        case .array(let items): return "[" + items.map(\.text).joined(separator: ",") + "]"
        case .object(let members): return "{" + members.map { JSONScanner.quote($0.0) + ":" + $0.1.text }.joined(separator: ",") + "}"
        }
    }
}
