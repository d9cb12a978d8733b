// SwitchboardRedis: the project's own Redis client, a small RESP2/RESP3 client on SwiftNIO.
//
// - `RESPValue`, `RESPDecoder`, `RESPCommandArgument`: the wire format.
// - `RedisConfiguration`: where to connect and how (parsed from `redis://` URLs).
// - `RedisConnection`: one channel with pipelining, automatic batching and command timeouts.
// - `RedisClient`: a pool of command connections with reconnection, and scripts.
// - `RedisSubscriber`: one pub/sub connection that re-subscribes after a reconnect.
//
// See docs/redis.md.
