import Foundation
import NIOCore

/// Maps event names to typed handlers.
///
/// ```swift
/// var events = EventRouter()
/// events.on("message.send", as: SendMessage.self) { message, context in
///     try context.broadcast(to: message.room, event: "message.new", data: message)
/// }
/// ```
/// Before a handler runs, the message's `data` is decoded as its payload type and, if that type is
/// a ``ValidatablePayload``, validated; failures get an error reply and the handler does not run.
/// A handler's return value is sent back in the `ack`; a thrown ``EventError`` becomes the error
/// reply. Handlers run in a task of their own, off the event loop, so they may await anything.
public struct EventRouter: Sendable {
    /// Runs the handler of a decoded message; returns the ack's `data` as JSON, if any.
    typealias Run = @Sendable (EventContext) async throws -> Data?

    enum Route: Sendable {
        /// Decodes and validates on the event loop, then runs the handler in a task.
        case task(@Sendable (InboundPayload, JSONDecoder) throws -> Run)
        /// Runs entirely on the event loop: for built-in handlers that never block. The result is
        /// the ack's `data` as JSON bytes, now or once the broker has answered.
        case onLoop(@Sendable (InboundPayload, EventContext, JSONDecoder) throws -> LoopReply)
        /// Runs on the event loop like `onLoop`, but a ``LoopReply/published(_:)`` reply does not
        /// hold back the connection's next message of a pipelined event: the handler has issued its
        /// publish, which the broker applies in call order, by the time it returns.
        case pipelined(@Sendable (InboundPayload, EventContext, JSONDecoder) throws -> LoopReply)

        var isPipelined: Bool {
            if case .pipelined = self { return true }
            return false
        }
    }

    /// Runs a binary message's handler with its header payload and bytes.
    typealias BinaryRun = @Sendable (EventContext) async throws -> Data?
    typealias BinaryRoute = @Sendable (InboundPayload, _ bytes: ByteBuffer, JSONDecoder) throws -> BinaryRun

    var routes: [String: Route] = [:]
    var binaryRoutes: [String: BinaryRoute] = [:]

    public init() {}

    /// The event names with a text handler, sorted.
    public var events: [String] { routes.keys.sorted() }

    /// Handles `event`, replying with an ack that carries the handler's result as `data`.
    public mutating func on<Payload: Decodable & Sendable, Result: Encodable & Sendable>(
        _ event: String,
        as payload: Payload.Type = Payload.self,
        _ handler: @escaping @Sendable (Payload, EventContext) async throws -> Result
    ) {
        routes[event] = .task { data, decoder in
            let payload = try Self.decodePayload(Payload.self, from: data, decoder: decoder)
            return { context in try JSONEncoder().encode(try await handler(payload, context)) }
        }
    }

    /// Handles `event`, replying with an ack without `data`.
    public mutating func on<Payload: Decodable & Sendable>(
        _ event: String,
        as payload: Payload.Type = Payload.self,
        _ handler: @escaping @Sendable (Payload, EventContext) async throws -> Void
    ) {
        routes[event] = .task { data, decoder in
            let payload = try Self.decodePayload(Payload.self, from: data, decoder: decoder)
            return { context in
                try await handler(payload, context)
                return nil
            }
        }
    }

    /// Handles binary messages whose header names `event`: the handler gets the header's `data`
    /// decoded as `Payload` and the raw bytes after the header, without base64.
    public mutating func onBinary<Payload: Decodable & Sendable, Result: Encodable & Sendable>(
        _ event: String,
        as payload: Payload.Type = Payload.self,
        _ handler: @escaping @Sendable (Payload, ByteBuffer, EventContext) async throws -> Result
    ) {
        binaryRoutes[event] = { data, bytes, decoder in
            let payload = try Self.decodePayload(Payload.self, from: data, decoder: decoder)
            return { context in try JSONEncoder().encode(try await handler(payload, bytes, context)) }
        }
    }

    /// Registers a handler that runs on the event loop itself (no task): it must not block.
    mutating func onLoop<Payload: FlatDecodable & Decodable & Sendable>(
        _ event: String,
        as payload: Payload.Type,
        _ handler: @escaping @Sendable (Payload, EventContext) throws -> ByteBuffer?
    ) {
        routes[event] = .onLoop { data, context, decoder in
            .now(try handler(try Self.decodeFlat(Payload.self, from: data, decoder: decoder), context))
        }
    }

    /// The same, for a payload that validates itself: the overload is chosen at compile time, so
    /// the message path has no dynamic cast.
    mutating func onLoop<Payload: FlatDecodable & ValidatablePayload & Decodable & Sendable>(
        _ event: String,
        as payload: Payload.Type,
        _ handler: @escaping @Sendable (Payload, EventContext) throws -> ByteBuffer?
    ) {
        routes[event] = .onLoop { data, context, decoder in
            let payload = try Self.decodeFlat(Payload.self, from: data, decoder: decoder)
            try Self.validate(payload)
            return .now(try handler(payload, context))
        }
    }

    /// An on-loop handler whose reply may wait for the broker (``LoopReply/later(_:)``). With
    /// `pipelined`, the connection's next messages of pipelined events are handled while the
    /// reply waits (see ``Route/pipelined(_:)``); only for handlers whose waiting is a publish.
    mutating func onLoopReply<Payload: FlatDecodable & ValidatablePayload & Decodable & Sendable>(
        _ event: String,
        as payload: Payload.Type,
        pipelined: Bool = false,
        _ handler: @escaping @Sendable (Payload, EventContext) throws -> LoopReply
    ) {
        let run: @Sendable (InboundPayload, EventContext, JSONDecoder) throws -> LoopReply = { data, context, decoder in
            let payload = try Self.decodeFlat(Payload.self, from: data, decoder: decoder)
            try Self.validate(payload)
            return try handler(payload, context)
        }
        routes[event] = pipelined ? .pipelined(run) : .onLoop(run)
    }

    /// Decodes a built-in payload: flat objects without `JSONDecoder`, anything else with it.
    static func decodeFlat<Payload: FlatDecodable & Decodable>(
        _ type: Payload.Type,
        from data: InboundPayload,
        decoder: JSONDecoder
    ) throws(EventError) -> Payload {
        if let object = data.flatObject, !object.hasNested {
            return try Payload(flat: object)
        }
        return try decode(Payload.self, from: data, decoder: decoder)
    }

    /// `value` as JSON, for the ack of an ``onLoop(_:as:_:)`` handler.
    static func encodeAck<Value: Encodable>(_ value: Value) throws -> ByteBuffer {
        ByteBuffer(bytes: try JSONEncoder().encode(value))
    }

    /// Decodes an envelope's `data` (`{}` when absent) and validates it. Payloads that are
    /// ``FlatDecodable`` and arrive as flat objects skip `JSONDecoder`.
    static func decodePayload<Payload: Decodable>(
        _ type: Payload.Type,
        from data: InboundPayload,
        decoder: JSONDecoder
    ) throws(EventError) -> Payload {
        let payload: Payload
        if let flatType = Payload.self as? any FlatDecodable.Type, let object = data.flatObject, !object.hasNested {
            guard let decoded = try flatType.init(flat: object) as? Payload else {
                throw EventError(code: EventError.Code.invalidPayload, message: "data does not decode")
            }
            payload = decoded
        } else {
            payload = try decode(Payload.self, from: data, decoder: decoder)
        }
        if let validatable = payload as? any ValidatablePayload {
            try validate(validatable)
        }
        return payload
    }

    private static func decode<Payload: Decodable>(_ type: Payload.Type, from data: InboundPayload, decoder: JSONDecoder) throws(EventError) -> Payload {
        do {
            return try decoder.decode(Payload.self, from: data.json)
        } catch let error as DecodingError {
            throw EventError(code: EventError.Code.invalidPayload, message: Self.describe(error))
        } catch {
            throw EventError(code: EventError.Code.invalidPayload, message: "data does not decode")
        }
    }

    /// Runs a payload's own checks; their failures become `validation_failed`.
    static func validate(_ payload: some ValidatablePayload) throws(EventError) {
        do {
            try payload.validate()
        } catch let error as PayloadValidationError {
            throw EventError(code: EventError.Code.validationFailed, message: error.message)
        } catch let error as EventError {
            throw error
        } catch {
            throw EventError(code: EventError.Code.validationFailed, message: "invalid data")
        }
    }

    /// A short description of a decoding failure, naming the field by its path under `data`.
    static func describe(_ error: DecodingError) -> String {
        func path(_ codingPath: [any CodingKey]) -> String {
            let keys = ["data"] + codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
            return keys.joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
        }
        switch error {
        case .keyNotFound(let key, let context):
            return "\(path(context.codingPath + [key])) is required"
        case .typeMismatch(let type, let context):
            return "\(path(context.codingPath)) must be \(Self.name(of: type))"
        case .valueNotFound(let type, let context):
            return "\(path(context.codingPath)) must be \(Self.name(of: type)), not null"
        case .dataCorrupted(let context):
            return "\(path(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return "data does not decode"
        }
    }

    private static func name(of type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Bool.Type: return "a boolean"
        case is Int.Type, is Int64.Type, is Int32.Type, is UInt.Type, is UInt64.Type: return "an integer"
        case is Double.Type, is Float.Type: return "a number"
        default:
            let text = "\(type)"
            if text.hasPrefix("Array") { return "an array" }
            if text.hasPrefix("Dictionary") { return "an object" }
            return "an object"
        }
    }
}
