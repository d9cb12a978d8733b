/// The Lua scripts of ``RedisPresenceStore``.
///
/// A room's presence is two keys with the room's hash tag: `entries`, a sorted set of
/// `<node>|<user>` scored by the time (Unix ms) the entry expires unless its node refreshes it, and
/// `users`, a hash of user → how many nodes have the user in the room. A user is announced when
/// its count goes from 0 to 1 and from 1 to 0, so a user on several nodes is announced once.
///
/// Every script first drops the expired entries (`prune`) and returns the users whose count that
/// took to 0: the calling node announces their leave. A node that dies without cleaning up is
/// thereby forgotten within the entry TTL, by whichever node touches the room next.
enum RedisPresenceScripts {
    /// KEYS: entries, users. ARGV: now ms. Drops expired entries; leaves `gone` (a Lua table) set.
    private static let prune = """
        local gone = {}
        local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
        if #expired > 0 then
            redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
            for _, member in ipairs(expired) do
                local user = string.sub(member, string.find(member, '|', 1, true) + 1)
                if redis.call('HINCRBY', KEYS[2], user, -1) <= 0 then
                    redis.call('HDEL', KEYS[2], user)
                    gone[#gone + 1] = user
                end
            end
        end

        """

    /// KEYS: entries, users. ARGV: now ms, expiry ms, key TTL ms, `<node>|<user>`, user.
    /// Returns `{first (0/1), gone}`.
    static let add = RedisScript(
        prune + """
            local first = 0
            if redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4]) == 1 then
                if redis.call('HINCRBY', KEYS[2], ARGV[5], 1) == 1 then first = 1 end
            end
            redis.call('PEXPIRE', KEYS[1], ARGV[3])
            redis.call('PEXPIRE', KEYS[2], ARGV[3])
            return {first, gone}
            """)

    /// KEYS: entries, users. ARGV: now ms, `<node>|<user>`, user. Returns `{last (0/1), gone}`.
    static let remove = RedisScript(
        prune + """
            local last = 0
            if redis.call('ZREM', KEYS[1], ARGV[2]) == 1 then
                if redis.call('HINCRBY', KEYS[2], ARGV[3], -1) <= 0 then
                    redis.call('HDEL', KEYS[2], ARGV[3])
                    last = 1
                end
            end
            return {last, gone}
            """)

    /// KEYS: entries, users. ARGV: now ms. Returns `{users, gone}`.
    static let members = RedisScript(
        prune + """
            return {redis.call('HKEYS', KEYS[2]), gone}
            """)

    /// KEYS: entries, users. ARGV: now ms, expiry ms, key TTL ms, node, then this node's users in
    /// the room. Moves their entries' expiry on, puts back those that had expired (they are
    /// returned as `restored`, to be announced again), then prunes. Returns `{restored, gone}`.
    static let refresh = RedisScript(
        """
        local restored = {}
        for i = 5, #ARGV do
            if redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4] .. '|' .. ARGV[i]) == 1 then
                if redis.call('HINCRBY', KEYS[2], ARGV[i], 1) == 1 then restored[#restored + 1] = ARGV[i] end
            end
        end
        redis.call('PEXPIRE', KEYS[1], ARGV[3])
        redis.call('PEXPIRE', KEYS[2], ARGV[3])

        """ + prune + """
            return {restored, gone}
            """)
}
