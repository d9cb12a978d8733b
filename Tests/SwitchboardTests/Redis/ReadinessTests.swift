import Foundation
import Testing

@testable import Switchboard

/// `/readyz` of `switchboard serve --redis` follows Redis: 503 with the reason while the broker
/// cannot reach it, 200 again once it is back; `/healthz` stays 200 throughout (the process is up).
@Suite("switchboard serve --redis: /readyz follows Redis", RedisServer.availability)
struct ReadinessTests {
    @Test("/readyz is 503 {ready:false, reason} while redis-server is stopped, and 200 once it is back; /healthz stays 200")
    func readyzFollowsRedis() async throws {
        try await ServeCluster.with(nodes: 1) { cluster in
            #expect(try await cluster.get("/readyz", node: 0).hasPrefix("HTTP/1.1 200"))
            try await cluster.stopRedis(save: false)
            try await cluster.waitUntilNotReady()
            let notReady = try await cluster.get("/readyz", node: 0)
            #expect(notReady.hasPrefix("HTTP/1.1 503"), "\(notReady)")
            #expect(notReady.contains(#""ready":false"#) && notReady.contains(#""reason":"redis"#), "\(notReady)")
            #expect(try await cluster.get("/healthz", node: 0).hasPrefix("HTTP/1.1 200"))
            // The metrics page still answers while Redis is down.
            #expect(try await cluster.get("/metrics", node: 0).hasPrefix("HTTP/1.1 200"))
            try await cluster.startRedis()
            try await cluster.waitUntilReady()
        }
    }
}
