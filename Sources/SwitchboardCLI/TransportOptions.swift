import ArgumentParser
import Logging
import Switchboard

/// Options shared by `serve` and `echo`: where to listen, limits and timers.
struct TransportOptions: ParsableArguments {
    @Option(help: "Address to listen on (env SWITCHBOARD_HOST).")
    var host: String = EnvironmentDefault.string("SWITCHBOARD_HOST", "127.0.0.1")

    @Option(help: "Port to listen on; 0 picks a free one (env SWITCHBOARD_PORT).")
    var port: Int = EnvironmentDefault.int("SWITCHBOARD_PORT", 8080)

    @Option(help: "WebSocket path (env SWITCHBOARD_PATH).")
    var path: String = EnvironmentDefault.string("SWITCHBOARD_PATH", "/ws")

    @Option(help: "Largest message in bytes, after reassembly; larger closes with 1009 (env SWITCHBOARD_MAX_MESSAGE_SIZE).")
    var maxMessageSize: Int = EnvironmentDefault.int("SWITCHBOARD_MAX_MESSAGE_SIZE", 64 * 1024)

    @Option(help: "Server ping interval, e.g. 30s (env SWITCHBOARD_PING_INTERVAL).")
    var pingInterval: DurationArgument = EnvironmentDefault.duration("SWITCHBOARD_PING_INTERVAL", "30s")

    @Option(help: "Close a connection that sent nothing for this long (env SWITCHBOARD_PONG_TIMEOUT).")
    var pongTimeout: DurationArgument = EnvironmentDefault.duration("SWITCHBOARD_PONG_TIMEOUT", "90s")

    @Option(help: "Close a connection that sent no message for this long; off by default (env SWITCHBOARD_IDLE_TIMEOUT).")
    var idleTimeout: DurationArgument?

    @Option(help: "Drop a connection whose upgrade request is not complete after this long (env SWITCHBOARD_HANDSHAKE_TIMEOUT).")
    var handshakeTimeout: DurationArgument = EnvironmentDefault.duration("SWITCHBOARD_HANDSHAKE_TIMEOUT", "10s")

    @Option(help: "Bytes that may wait unread for one client; past it the client is closed as a slow consumer with 4008 (env SWITCHBOARD_OUTBOUND_HIGH_WATER_MARK).")
    var outboundHighWaterMark: Int = EnvironmentDefault.int("SWITCHBOARD_OUTBOUND_HIGH_WATER_MARK", 1 << 20)

    @Option(help: "permessage-deflate: true compresses messages for clients that offer it, as browsers do (env SWITCHBOARD_COMPRESSION).")
    var compression: Bool = EnvironmentDefault.bool("SWITCHBOARD_COMPRESSION", false)

    @Option(help: "With --compression: messages shorter than this many bytes go uncompressed (env SWITCHBOARD_COMPRESSION_THRESHOLD).")
    var compressionThreshold: Int = EnvironmentDefault.int("SWITCHBOARD_COMPRESSION_THRESHOLD", 256)

    @Option(help: "With --compression: zlib level, 1 (fastest) to 9 (smallest) (env SWITCHBOARD_COMPRESSION_LEVEL).")
    var compressionLevel: Int = EnvironmentDefault.int("SWITCHBOARD_COMPRESSION_LEVEL", 1)

    @Option(help: "Event loop threads (env SWITCHBOARD_THREADS); default: the CPUs this process may run on.")
    var threads: Int = EnvironmentDefault.int("SWITCHBOARD_THREADS", AvailableCPUs.count)

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical (env SWITCHBOARD_LOG_LEVEL).")
    var logLevel: String = EnvironmentDefault.string("SWITCHBOARD_LOG_LEVEL", "info")

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0...65535") }
        guard maxMessageSize >= 125 else { throw ValidationError("--max-message-size must be at least 125") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level \(logLevel)") }
        guard path.hasPrefix("/") else { throw ValidationError("--path must start with /") }
        guard outboundHighWaterMark >= 4096 else { throw ValidationError("--outbound-high-water-mark must be at least 4096") }
        guard (1...256).contains(threads) else { throw ValidationError("--threads must be 1...256") }
        guard compressionThreshold >= 1 else { throw ValidationError("--compression-threshold must be at least 1") }
        guard (1...9).contains(compressionLevel) else { throw ValidationError("--compression-level must be 1...9") }
    }

    func apply(to configuration: inout SwitchboardConfiguration) {
        configuration.path = path
        configuration.maxMessageSize = maxMessageSize
        configuration.pingInterval = pingInterval.duration
        configuration.pongTimeout = pongTimeout.duration
        configuration.idleTimeout = (idleTimeout ?? EnvironmentDefault.string("SWITCHBOARD_IDLE_TIMEOUT").flatMap(DurationArgument.init(argument:)))?.duration
        configuration.handshakeTimeout = handshakeTimeout.duration
        configuration.outboundHighWaterMark = outboundHighWaterMark
        configuration.compression = compression ? CompressionConfiguration(threshold: compressionThreshold, level: compressionLevel) : nil
    }

    func makeLogger() -> Logger {
        var logger = Logger(label: "switchboard")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        return logger
    }
}
