import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOWebSocket
import WSClient
import WSCompression

/// The client's one long-running task: connects, runs the connection until it ends, decides
/// whether and when to reconnect, and runs the timer beside it. Every message of a connection is
/// read in that connection's handler, in order; no task is started per message.
struct ConnectionLoop: Sendable {
    let core: ClientCore
    let url: ParsedURL?
    let urlText: String
    let token: TokenSource
    let configuration: SwitchboardClient.Configuration

    /// Runs until the client is closed or stops.
    func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.connectLoop() }
            group.addTask { await self.timerLoop() }
            await group.next()
            group.cancelAll()
        }
    }

    private func timerLoop() async {
        while !Task.isCancelled {
            let next = await core.tick()
            let wait = max(next - .now, .milliseconds(1))
            do { try await Task.sleep(for: wait) } catch { return }
        }
    }

    private func connectLoop() async {
        guard let url else {
            await core.close(.connectionLost("invalid URL \(urlText): expected ws://host[:port]/path or wss://…"))
            return
        }
        var decider = ReconnectDecider(backoff: configuration.backoff, canRefreshToken: token.canRefresh)
        while !Task.isCancelled {
            let (signals, signal) = AsyncStream<AttemptOutcome>.makeStream()
            guard let attempt = await core.beginAttempt(abort: signal) else { return }
            let token: String
            do {
                token = try await self.token.token()
            } catch {
                await core.close(.tokenUnavailable("\(error)"))
                return
            }
            let run = start(url: url, token: token, attempt: attempt, signal: signal)
            // The first of: the connection ended, or the client gave it up (heartbeat, close()).
            var first: AttemptOutcome?
            for await outcome in signals {
                first = outcome
                break
            }
            let outcome = first ?? .aborted(.closedByClient)
            let ended = await core.ended(attempt: attempt)
            if case .aborted = outcome {
                run.cancel()
                // Once the WebSocket is up, cancelling ends it at once (with a Close frame). Before
                // that, WSClient cannot be cancelled (it waits for the upgrade's response), so a
                // handshake that hangs is abandoned: it ends when its TCP connection does.
                if ended.handlerStarted { await run.value }
            }
            if await core.isClosed { return }
            let reason = await reason(for: outcome, url: url, token: token)
            configuration.logger.debug("switchboard client: connection ended", metadata: ["reason": "\(reason)", "open": "\(ended.openFor)"])
            switch decider.next(after: reason, wasOpen: ended.wasOpen, openFor: ended.openFor, random: configuration.random()) {
            case .stop:
                await core.close(reason)
                return
            case .retry(let delay):
                await core.publish(state: .reconnecting(attempt: decider.failures, delay: delay, reason: reason))
                do { try await Task.sleep(for: delay) } catch { return }
            }
        }
    }

    /// Starts one attempt: the WebSocket, its reader and writer; its outcome goes to `signal`.
    private func start(url: ParsedURL, token: String, attempt: Int, signal: AsyncStream<AttemptOutcome>.Continuation) -> Task<Void, Never> {
        var headers = HTTPFields()
        headers[.authorization] = "Bearer \(token)"
        let webSocketConfiguration = WebSocketClientConfiguration(
            maxFrameSize: configuration.maxMessageSize,
            additionalHeaders: headers,
            extensions: configuration.compression
                ? [.perMessageDeflate(clientNoContextTakeover: true, serverNoContextTakeover: true, maxDecompressedFrameSize: configuration.maxMessageSize)]
                : [],
            closeTimeout: .seconds(2)
        )
        let core = self.core
        let maxMessageSize = configuration.maxMessageSize
        let group = configuration.eventLoopGroup
        let logger = configuration.logger
        let urlText = url.text
        return Task {
            let client = WebSocketClient(url: urlText, configuration: webSocketConfiguration, eventLoopGroup: group, logger: logger) { inbound, outbound, _ in
                let (outgoing, writer) = AsyncStream<String>.makeStream()
                guard await core.opened(attempt: attempt, writer: writer) else { return }
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        for await text in outgoing { try await outbound.write(.text(text)) }
                    }
                    for try await message in inbound.messages(maxSize: maxMessageSize) {
                        if case .text(let text) = message { await core.received(text, attempt: attempt) }
                    }
                    group.cancelAll()
                }
            }
            do {
                signal.yield(.finished(try await client.run()))
            } catch {
                signal.yield(.failed(error))
            }
        }
    }

    /// What the outcome means; asks the server why when an upgrade was declined.
    private func reason(for outcome: AttemptOutcome, url: ParsedURL, token: String) async -> DisconnectReason {
        switch outcome {
        case .aborted(let reason):
            return reason
        case .finished(let frame?):
            return .closed(code: UInt16(webSocketErrorCode: frame.closeCode), reason: frame.reason)
        case .finished(nil):
            return .connectionLost("closed without a Close frame")
        case .failed(let error as WebSocketClientError) where error == .webSocketUpgradeFailed:
            if let refusal = await HandshakeProbe.probe(url: url, token: token, timeout: configuration.connectTimeout, group: configuration.eventLoopGroup) {
                return .refused(status: refusal.status, code: refusal.code, message: refusal.message)
            }
            return .connectionLost("the WebSocket upgrade was declined")
        case .failed(let error):
            return .connectionLost("\(error)")
        }
    }
}

/// How one connection attempt ended.
enum AttemptOutcome: Sendable {
    /// The WebSocket ended, with the server's Close frame if there was one.
    case finished(WebSocketCloseFrame?)
    /// It could not be opened (or WSClient reported an error).
    case failed(any Error)
    /// The client gave it up.
    case aborted(DisconnectReason)
}
