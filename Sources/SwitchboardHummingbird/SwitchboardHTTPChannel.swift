import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import NIOWebSocket
import Switchboard

/// A Hummingbird child channel serving HTTP/1.1 and Switchboard's WebSocket upgrade on one port.
///
/// Modelled on hummingbird-websocket's `HTTP1WebSocketUpgradeChannel`, with two differences: a
/// refused handshake gets the status its check chose (401, 403, 429, …) instead of a generic 400,
/// and an upgraded connection lives on as NIO channel handlers, with no task per connection.
public struct SwitchboardHTTPChannel: ServerChildChannel, HTTPChannelHandler {
    public enum UpgradeResult: Sendable {
        /// The connection is a Switchboard socket now; its handlers do the rest.
        case websocket
        /// A plain HTTP connection for the app's router.
        case notUpgraded(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>)
        /// A handshake that was refused: answer it with the rejection.
        case rejected(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>, HandshakeRejection)
    }

    public struct Value: ServerChildChannelValue {
        let upgradeResult: EventLoopFuture<UpgradeResult>
        /// A handshake accepted but not yet installed: its slot goes back if the upgrade fails.
        let accepted: NIOLoopBoundBox<AcceptedHandshake?>
        public let channel: any Channel
    }

    let switchboard: SwitchboardServer
    let http1: HTTP1Channel.Configuration
    public let responder: HTTPChannelHandler.Responder

    public init(responder: @escaping HTTPChannelHandler.Responder, switchboard: SwitchboardServer, http1: HTTP1Channel.Configuration = .switchboard) {
        self.switchboard = switchboard
        self.http1 = http1
        self.responder = Self.responder(responder, switchboard: switchboard)
    }

    public func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            let switchboard = self.switchboard
            let eventLoop = channel.eventLoop
            // Before the first read: NIO keeps each channel's last receive buffer for reuse, so a
            // handshake read into a default 2 KiB buffer would stay with every idle socket.
            switchboard.configureChannel(channel)
            let accepted = NIOLoopBoundBox<AcceptedHandshake?>(nil, eventLoop: eventLoop)
            let rejection = NIOLoopBoundBox<HandshakeRejection?>(nil, eventLoop: eventLoop)
            // Slow-loris defence: the request head must be complete in time.
            let handshakeTimer = eventLoop.scheduleTask(in: TimeAmount(switchboard.configuration.handshakeTimeout)) {
                channel.close(promise: nil)
            }
            let path = switchboard.configuration.path
            let attempted = NIOLoopBoundBox<HTTPRequestHead?>(nil, eventLoop: eventLoop)
            let filter = UpgradePathFilter(path: path, attempted: attempted)
            let webSocketUpgrader = NIOTypedWebSocketServerUpgrader<UpgradeResult>(
                maxFrameSize: switchboard.configuration.maxFrameSize,
                enableAutomaticErrorHandling: false,
                shouldUpgrade: { channel, head in
                    handshakeTimer.cancel()
                    let decision = eventLoop.makePromise(of: HandshakeDecision.self)
                    let remoteAddress = channel.remoteAddress
                    decision.completeWithTask {
                        await switchboard.evaluateHandshake(uri: head.uri, headers: head.headers, remoteAddress: remoteAddress)
                    }
                    return decision.futureResult.map { decision -> HTTPHeaders? in
                        switch decision {
                        case .accept(let handshake):
                            accepted.value = handshake
                            return HTTPHeaders(handshake.responseHeaders.map { ($0.name, $0.value) })
                        case .reject(let refused):
                            rejection.value = refused
                            return nil
                        }
                    }
                },
                upgradePipelineHandler: { channel, _ in
                    eventLoop.makeCompletedFuture {
                        guard let handshake = accepted.value else {
                            throw ChannelError.inappropriateOperationForState
                        }
                        accepted.value = nil
                        // The request head (headers, token) would otherwise live as long as the socket.
                        attempted.value = nil
                        if let filter = try? channel.pipeline.syncOperations.context(handlerType: UpgradePathFilter.self) {
                            channel.pipeline.syncOperations.removeHandler(context: filter, promise: nil)
                        }
                        try switchboard.install(handshake, on: channel)
                        return UpgradeResult.websocket
                    }
                }
            )
            let upgrader = CheckedWebSocketUpgrader(upgrader: webSocketUpgrader) { refused in
                handshakeTimer.cancel()
                rejection.value = refused
            }
            let http1 = self.http1
            let serverUpgradeConfiguration = NIOTypedHTTPServerUpgradeConfiguration(
                upgraders: [upgrader],
                notUpgradingCompletionHandler: { channel in
                    eventLoop.makeCompletedFuture {
                        handshakeTimer.cancel()
                        try channel.pipeline.syncOperations.addHandler(HTTP1ToHTTPServerCodec(secure: false))
                        try channel.pipeline.syncOperations.addHandlers(http1.additionalChannelHandlers())
                        try channel.pipeline.syncOperations.addHandler(
                            HTTPConnectionStateHandler(idleTimeout: http1.idleTimeout.map { .nanoseconds($0.nanoseconds) }, logger: logger)
                        )
                        let asyncChannel = try NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>(
                            wrappingChannelSynchronously: channel,
                            configuration: .init(isOutboundHalfClosureEnabled: true)
                        )
                        if let refused = rejection.value {
                            return UpgradeResult.rejected(asyncChannel, refused)
                        }
                        if let head = attempted.value {
                            attempted.value = nil
                            // An upgrade to our path that no upgrader took (e.g. another
                            // protocol); NIO has dropped its head, so answer it here.
                            let refused =
                                UpgradeRequestCheck.rejection(method: head.method, headers: head.headers)
                                ?? HandshakeRejection(status: .badRequest, code: "upgrade_failed", message: "the upgrade could not be completed")
                            return UpgradeResult.rejected(asyncChannel, refused)
                        }
                        return UpgradeResult.notUpgraded(asyncChannel)
                    }
                }
            )
            var configuration = NIOUpgradableHTTPServerPipelineConfiguration<UpgradeResult>(upgradeConfiguration: serverUpgradeConfiguration)
            configuration.enablePipelining = false  // HTTP is pipelined by NIOAsyncChannel
            // NIO answers malformed requests with 400 and closes; during the upgrade phase there is
            // no Hummingbird handler yet to do it.
            configuration.enableErrorHandling = true
            configuration.enableResponseHeaderValidation = false  // Swift HTTP Types validates
            configuration.decoderConfiguration.maxHeaderFieldSize = http1.httpDecoder.maxHeaderFieldSize
            configuration.decoderConfiguration.maxHeaderListSize = http1.httpDecoder.maxHeaderListSize
            configuration.decoderConfiguration.maxHeaderFieldCount = http1.httpDecoder.maxHeaderFieldCount
            let result = try channel.pipeline.syncOperations.configureUpgradableHTTPServerPipeline(configuration: configuration)
            let upgradeHandler = try channel.pipeline.syncOperations.handler(type: NIOTypedHTTPServerUpgradeHandler<UpgradeResult>.self)
            try channel.pipeline.syncOperations.addHandler(filter, position: .before(upgradeHandler))
            return Value(upgradeResult: result, accepted: accepted, channel: channel)
        }
    }

    public func handle(value: Value, logger: Logger) async {
        do {
            switch try await value.upgradeResult.get() {
            case .websocket:
                // The socket lives in its channel handlers; nothing to await here.
                return
            case .notUpgraded(let http1):
                await handleHTTP(asyncChannel: http1, logger: logger)
            case .rejected(let http1, let rejection):
                await Self.write(rejection, to: http1, logger: logger)
            }
        } catch {
            // Accepted but never upgraded (the client left in between, say): give the slot back.
            // Done here rather than on close, so that no callback lives as long as the socket.
            let accepted = value.accepted
            let switchboard = self.switchboard
            value.channel.eventLoop.execute {
                if let handshake = accepted.value {
                    accepted.value = nil
                    switchboard.abandon(handshake)
                }
            }
            logger.debug("connection ended before the upgrade was decided", metadata: ["error": "\(error)"])
        }
    }

    /// Answers a refused handshake with its status and JSON body, then closes.
    static func write(_ rejection: HandshakeRejection, to asyncChannel: NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>, logger: Logger) async {
        do {
            try await asyncChannel.executeThenClose { _, outbound in
                let body = ByteBuffer(string: rejection.body)
                var fields = HTTPFields()
                fields[.contentType] = "application/json"
                fields[.contentLength] = String(body.readableBytes)
                fields[.connection] = "close"
                for (name, value) in rejection.headers {
                    if let name = HTTPField.Name(name) { fields.append(HTTPField(name: name, value: value)) }
                }
                let head = HTTPResponse(status: .init(code: Int(rejection.status.code)), headerFields: fields)
                try await outbound.write(contentsOf: [.head(head), .body(body), .end(nil)])
            }
        } catch {
            logger.trace("failed to write handshake rejection", metadata: ["error": "\(error)"])
        }
    }

    /// Wraps the app's responder: serves the JavaScript client at the configured path, and answers
    /// requests to the WebSocket path that were not upgraded: a plain `GET` gets what the handshake
    /// check would say (401, 403, 429 (with `Retry-After` when the address's handshake rate is
    /// exceeded), 503 with the JSON body, or 426 when it would accept,
    /// without taking a connection slot); others the status RFC 6455 asks for (400, 405, 426 with
    /// `Sec-WebSocket-Version: 13`).
    static func responder(_ responder: @escaping HTTPChannelHandler.Responder, switchboard: SwitchboardServer) -> HTTPChannelHandler.Responder {
        let path = switchboard.configuration.path
        let clientFiles = ClientScriptFiles(scriptPath: switchboard.configuration.clientScriptPath)
        if switchboard.configuration.clientScriptPath != nil, clientFiles.isEmpty {
            switchboard.logger.warning("the JavaScript client's resource bundle could not be read; /switchboard.js is not served")
        }
        return { request, responseWriter, channel in
            let requestPath = request.uri.path
            if let file = clientFiles.file(at: requestPath), request.method == .get || request.method == .head {
                let (head, body) = ClientScriptFiles.response(for: file, ifNoneMatch: request.headers[.ifNoneMatch])
                try await responseWriter.write(response: head, body: .init(byteBuffer: request.method == .head ? ByteBuffer() : body))
                return
            }
            guard requestPath == path else {
                try await responder(request, responseWriter, channel)
                return
            }
            var headers = HTTPHeaders()
            for field in request.headers {
                headers.add(name: field.name.rawName, value: field.value)
            }
            let method = HTTPMethod(rawValue: request.method.rawValue)
            var rejection =
                UpgradeRequestCheck.rejection(method: method, headers: headers)
                ?? HandshakeRejection(status: .badRequest, code: "upgrade_not_first", message: "the upgrade must be the first request on its connection")
            if method == .GET, !headers.contains(name: "upgrade"),
                let refused = await switchboard.checkHandshake(uri: request.uri.description, headers: headers, remoteAddress: channel.remoteAddress)
            {
                rejection = refused
            }
            let body = ByteBuffer(string: rejection.body)
            var fields = HTTPFields()
            fields[.contentType] = "application/json"
            fields[.cacheControl] = "no-store"
            for (name, value) in rejection.headers {
                if let name = HTTPField.Name(name) { fields.append(HTTPField(name: name, value: value)) }
            }
            // A page on another origin may read the check's answer: it tells only what the page's
            // own token and origin would get.
            if let origin = request.headers[.origin] {
                let allowed = switchboard.configuration.allowedOrigins
                if allowed.isEmpty {
                    fields[.accessControlAllowOrigin] = "*"
                } else if allowed.contains(origin) {
                    fields[.accessControlAllowOrigin] = origin
                    fields[.vary] = "Origin"
                }
            }
            fields[.contentLength] = String(body.readableBytes)
            let head = HTTPResponse(status: .init(code: Int(rejection.status.code)), headerFields: fields)
            try await responseWriter.write(response: head, body: .init(byteBuffer: body))
        }
    }

    static func path(of uri: String) -> Substring {
        uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
    }
}

extension HTTP1Channel.Configuration {
    /// Hummingbird's defaults, with request headers limited to 16 KiB in all (as in Node.js):
    /// a WebSocket handshake needs far less, and the limit bounds what a client can make the
    /// server buffer before it is authenticated.
    public static var switchboard: HTTP1Channel.Configuration {
        var configuration = HTTP1Channel.Configuration()
        configuration.httpDecoder.maxHeaderListSize = 16 * 1024
        configuration.httpDecoder.maxHeaderFieldSize = 16 * 1024
        return configuration
    }
}
