import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// Finds out why a WebSocket upgrade was declined: `WSClient` reports only that it was, so the
/// client sends the same upgrade request once more over a plain HTTP connection and reads the
/// status and the JSON body of the refusal (protocol 1.2). Only after a failed attempt; a `101`
/// (the server would accept now) is closed at once.
enum HandshakeProbe {
    struct Outcome: Sendable, Equatable {
        let status: Int
        let code: String
        let message: String
    }

    static func probe(url: ParsedURL, token: String, timeout: Duration, group: any EventLoopGroup) async -> Outcome? {
        guard !url.secure else { return nil }  // TLS probing is not done; the refusal stays unexplained
        let promise = group.next().makePromise(of: (Int, String).self)
        let collector = ResponseCollector(promise: promise)
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(.init(timeout))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(collector)
                    }
                }
                .connect(host: url.host, port: url.port).get()
        } catch {
            promise.fail(error)  // nothing else completes it
            return nil
        }
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: url.hostHeader)
        headers.add(name: "Upgrade", value: "websocket")
        headers.add(name: "Connection", value: "Upgrade")
        headers.add(name: "Sec-WebSocket-Version", value: "13")
        headers.add(name: "Sec-WebSocket-Key", value: Data((0..<16).map { _ in UInt8.random(in: 0...255) }).base64EncodedString())
        headers.add(name: "Authorization", value: "Bearer \(token)")
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: url.pathAndQuery, headers: headers)
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        // Bounded: the channel closes after `timeout`, which completes the promise.
        let timer = channel.eventLoop.scheduleTask(in: .init(timeout)) { channel.close(promise: nil) }
        defer {
            timer.cancel()
            channel.close(promise: nil)
        }
        guard let response = try? await promise.futureResult.get(), response.0 != 101 else { return nil }
        let (status, body) = response
        let reply = try? JSONDecoder().decode(RefusalBody.self, from: Data(body.utf8))
        return Outcome(status: status, code: reply?.error.code ?? "http_\(status)", message: reply?.error.message ?? body)
    }

    private struct RefusalBody: Decodable {
        struct Detail: Decodable {
            let code: String
            let message: String?
        }
        let error: Detail
    }

    /// Collects one response's status and body (at most 64 KiB of it).
    private final class ResponseCollector: ChannelInboundHandler, @unchecked Sendable {
        // @unchecked Sendable: `status`, `body` and `done` are touched only on the channel's
        // event loop (in the pipeline's callbacks); the promise is thread-safe.
        typealias InboundIn = HTTPClientResponsePart
        private let promise: EventLoopPromise<(Int, String)>
        private var status = 0
        private var body = ""
        private var done = false

        init(promise: EventLoopPromise<(Int, String)>) {
            self.promise = promise
        }

        private func finish(_ result: Result<(Int, String), any Error>) {
            guard !done else { return }
            done = true
            promise.completeWith(result)
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                status = Int(head.status.code)
                if status == 101 { finish(.success((status, ""))) }
            case .body(let buffer):
                if body.utf8.count < 65536 { body += String(buffer: buffer) }
            case .end:
                finish(.success((status, body)))
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            finish(status != 0 ? .success((status, body)) : .failure(ChannelError.eof))
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            finish(.failure(error))
            context.close(promise: nil)
        }
    }
}
