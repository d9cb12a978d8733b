import Foundation
import NIOCore
import NIOWebSocket

/// Builds the server's outbound envelopes, framed and ready to write:
/// `{"event":…,"id":…,"room":…,"eid":…,"data":…}` (fields other than `event` only when present).
enum OutboundMessage {
    /// The parts of an envelope other than `data`.
    struct Header {
        var event: String
        var id: String? = nil
        var room: String? = nil
        var eventID: EventID? = nil

        /// Bytes the envelope takes without `data`, unless a string needs escapes: enough to
        /// build most frames without growing the buffer.
        var encodedSize: Int {
            var size = 20 + event.utf8.count  // {"event":"…","data":}
            if let id { size += 8 + id.utf8.count }
            if let room { size += 10 + room.utf8.count }
            if let eventID { size += 30 + eventID.epoch.utf8.count }
            return size
        }
    }

    /// Encodes an app value as JSON (the one general-purpose encode of a send).
    static func encodeData<Data: Encodable>(_ data: Data) throws -> Foundation.Data {
        try JSONEncoder().encode(data)
    }

    /// A text frame whose `data` is already-encoded JSON (or absent).
    static func frame(_ header: Header, dataJSON: UnsafeRawBufferPointer?, allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = OutboundFrame.begin(allocator: allocator, payloadCapacity: header.encodedSize + (dataJSON?.count ?? 0))
        writeEnvelope(header, dataJSON: dataJSON, into: &buffer)
        OutboundFrame.finish(&buffer, opcode: .text)
        return buffer
    }

    static func frame(_ header: Header, dataJSON: Foundation.Data?, allocator: ByteBufferAllocator) -> ByteBuffer {
        guard let dataJSON else { return frame(header, dataJSON: nil as UnsafeRawBufferPointer?, allocator: allocator) }
        return dataJSON.withUnsafeBytes { frame(header, dataJSON: $0, allocator: allocator) }
    }

    static func frame(_ header: Header, dataJSON: ByteBuffer?, allocator: ByteBufferAllocator) -> ByteBuffer {
        guard let dataJSON else { return frame(header, dataJSON: nil as UnsafeRawBufferPointer?, allocator: allocator) }
        return dataJSON.withUnsafeReadableBytes { frame(header, dataJSON: $0, allocator: allocator) }
    }

    static func frame<Data: Encodable>(event: String, data: Data, allocator: ByteBufferAllocator) throws -> ByteBuffer {
        frame(Header(event: event), dataJSON: try encodeData(data), allocator: allocator)
    }

    /// A binary frame: 4-byte big-endian header length, the JSON header, then `payload`.
    static func binaryFrame<Data: Encodable>(event: String, data: Data, payload: ByteBuffer, allocator: ByteBufferAllocator) throws -> ByteBuffer {
        let dataJSON = try encodeData(data)
        var payload = payload
        var buffer = OutboundFrame.begin(allocator: allocator, payloadCapacity: 68 + dataJSON.count + payload.readableBytes)
        let lengthIndex = buffer.writerIndex
        buffer.writeInteger(UInt32(0))
        dataJSON.withUnsafeBytes { writeEnvelope(Header(event: event), dataJSON: $0, into: &buffer) }
        buffer.setInteger(UInt32(buffer.writerIndex - lengthIndex - 4), at: lengthIndex)
        buffer.writeBuffer(&payload)
        OutboundFrame.finish(&buffer, opcode: .binary)
        return buffer
    }

    static func writeEnvelope(_ header: Header, dataJSON: UnsafeRawBufferPointer?, into buffer: inout ByteBuffer) {
        writeEnvelopeHead(event: header.event, id: header.id, room: header.room, into: &buffer)
        if let eventID = header.eventID {
            buffer.writeStaticString(",\"eid\":")
            buffer.writeJSONEventID(eventID)
        }
        writeEnvelopeTail(dataJSON: dataJSON, into: &buffer)
    }

    /// `{"event":…,"id":…,"room":…`: what comes before the envelope's `eid`.
    static func writeEnvelopeHead(event: String, id: String?, room: String?, into buffer: inout ByteBuffer) {
        buffer.writeStaticString("{\"event\":")
        buffer.writeJSONString(event)
        if let id {
            buffer.writeStaticString(",\"id\":")
            buffer.writeJSONString(id)
        }
        if let room {
            buffer.writeStaticString(",\"room\":")
            buffer.writeJSONString(room)
        }
    }

    /// `,"data":…}`: what comes after the envelope's `eid`.
    static func writeEnvelopeTail(dataJSON: UnsafeRawBufferPointer?, into buffer: inout ByteBuffer) {
        if let dataJSON {
            buffer.writeStaticString(",\"data\":")
            buffer.writeBytes(dataJSON)
        }
        buffer.writeInteger(UInt8(ascii: "}"))
    }

    /// `{"event":"error","id":…,"data":{"code":…,"message":…}}`, with `"retryAfter":…`
    /// (milliseconds) in `data` when given.
    static func errorFrame(id: String?, code: String, message: String, retryAfter: Int64? = nil, allocator: ByteBufferAllocator) -> ByteBuffer {
        var data = ByteBuffer()
        data.reserveCapacity(56 + code.utf8.count + message.utf8.count)
        data.writeStaticString("{\"code\":")
        data.writeJSONString(code)
        data.writeStaticString(",\"message\":")
        data.writeJSONString(message)
        if let retryAfter {
            data.writeStaticString(",\"retryAfter\":")
            data.writeString(String(retryAfter))
        }
        data.writeInteger(UInt8(ascii: "}"))
        return data.withUnsafeReadableBytes { frame(Header(event: "error", id: id), dataJSON: $0, allocator: allocator) }
    }
}
