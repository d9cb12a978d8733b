import Foundation
import Hummingbird
import NIOCore
import Switchboard

/// An error answer of the publish API: `status` with `{"error":{"code","message"}}`, the shape of
/// the handshake's refusals.
struct APIError: Error, Sendable {
    var status: HTTPResponse.Status
    var code: String
    var message: String

    static func badRequest(_ code: String, _ message: String) -> APIError { APIError(status: .badRequest, code: code, message: message) }
    static let unauthorized = APIError(status: .unauthorized, code: "unauthorized", message: "a valid API key is required: Authorization: Bearer <key>")
    static let disabled = APIError(status: .notFound, code: "api_disabled", message: "the publish API is off: start the server with an API key")
    static func roomNotFound(_ room: String) -> APIError {
        APIError(status: .notFound, code: "room_not_found", message: "the room has no members and no events in history")
    }
    static let tooLarge = APIError(status: .contentTooLarge, code: "body_too_large", message: "the request body is too large")
    static let unavailable = APIError(status: .serviceUnavailable, code: "unavailable", message: "the broker or a store could not be reached; try again")

    var response: Response {
        struct Body: Encodable {
            struct Detail: Encodable { var code: String; var message: String }
            var error: Detail
        }
        let json = (try? JSONEncoder().encode(Body(error: .init(code: code, message: message)))) ?? Data(#"{"error":{"code":"internal","message":""}}"#.utf8)
        var headers: HTTPFields = [.contentType: "application/json"]
        if status == .unauthorized { headers[.wwwAuthenticate] = "Bearer" }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: json)))
    }
}

/// A JSON response from bytes already encoded.
func jsonResponse(_ body: ByteBuffer, status: HTTPResponse.Status = .ok) -> Response {
    Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: body))
}
