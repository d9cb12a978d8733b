/// The Lua scripts of ``RedisBroker``: each runs atomically on Redis, which is what makes a
/// room's positions gap-free and its history and delivery agree, whichever node publishes.
///
/// Keys of a room share the hash tag `{<room>}`, so that a Redis Cluster keeps them on one shard.
/// `stream` is a hash (`epoch`, `offset`), `history` a sorted set scored by offset whose members
/// are `<published ms>:<envelope>`. Time is the publishing node's (`now`, in Unix milliseconds),
/// so that tests move a clock instead of waiting.
enum RedisBrokerScripts {
    /// KEYS: stream, history. ARGV: envelope prefix, envelope suffix, now ms, retention ms, max
    /// events kept, a new epoch (used when the stream is gone), channel, message tag.
    /// Returns the position `<epoch>:<offset>`.
    static let publish = RedisScript(#"""
        local epoch = redis.call('HGET', KEYS[1], 'epoch')
        if not epoch then
            -- The stream is gone (never existed, expired, flushed, evicted): a new epoch, so that
            -- a client's older position is never taken for one of this stream.
            epoch = ARGV[6]
            redis.call('DEL', KEYS[2])
            redis.call('HSET', KEYS[1], 'epoch', epoch, 'offset', 0)
        end
        local offset = redis.call('HINCRBY', KEYS[1], 'offset', 1)
        local eid = epoch .. ':' .. offset
        local envelope = ARGV[1] .. eid .. ARGV[2]
        local now = tonumber(ARGV[3])
        local retention = tonumber(ARGV[4])
        local maxEvents = tonumber(ARGV[5])
        if maxEvents > 0 then
            redis.call('ZADD', KEYS[2], offset, ARGV[3] .. ':' .. envelope)
            redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -maxEvents - 1)
            -- By each event's own age, oldest first; bounded per publish, the rest goes next time.
            local cutoff = now - retention
            for _ = 1, 64 do
                local oldest = redis.call('ZRANGE', KEYS[2], 0, 0)
                if #oldest == 0 then break end
                local published = tonumber(string.match(oldest[1], '^(%d+):'))
                if published == nil or published > cutoff then break end
                redis.call('ZREMRANGEBYRANK', KEYS[2], 0, 0)
            end
            redis.call('PEXPIRE', KEYS[2], retention)
        end
        redis.call('PEXPIRE', KEYS[1], retention)
        redis.call('PUBLISH', ARGV[7], ARGV[8] .. ' ' .. eid .. ' ' .. envelope)
        return eid
        """#)

    /// KEYS: stream, history. ARGV: epoch of the position (empty: none), its offset, most events
    /// to return, a new epoch (used when the stream is gone), now ms, retention ms.
    /// Returns `{epoch, current offset, recovered (1/0), member…}`.
    static let recover = RedisScript(#"""
        local epoch = redis.call('HGET', KEYS[1], 'epoch')
        if not epoch then
            epoch = ARGV[4]
            redis.call('DEL', KEYS[2])
            redis.call('HSET', KEYS[1], 'epoch', epoch, 'offset', 0)
        end
        redis.call('PEXPIRE', KEYS[1], ARGV[6])
        local current = tonumber(redis.call('HGET', KEYS[1], 'offset'))
        if ARGV[1] == '' then return {epoch, current, 1} end
        local after = tonumber(ARGV[2])
        if ARGV[1] ~= epoch or after > current then return {epoch, current, 0} end
        local missing = current - after
        if missing == 0 then return {epoch, current, 1} end
        if missing > tonumber(ARGV[3]) then return {epoch, current, 0} end
        local members = redis.call('ZRANGEBYSCORE', KEYS[2], after + 1, current)
        if #members ~= missing then return {epoch, current, 0} end
        local cutoff = tonumber(ARGV[5]) - tonumber(ARGV[6])
        local published = tonumber(string.match(members[1], '^(%d+):'))
        if published == nil or published <= cutoff then return {epoch, current, 0} end
        local reply = {epoch, current, 1}
        for i = 1, #members do reply[i + 3] = members[i] end
        return reply
        """#)

    /// KEYS: stream, history. ARGV: most events, now ms, retention ms.
    /// Returns `{epoch or false, offset, member, offset, member…}`, oldest first.
    static let latest = RedisScript(#"""
        local epoch = redis.call('HGET', KEYS[1], 'epoch')
        if not epoch then return {false} end
        local limit = tonumber(ARGV[1])
        if limit <= 0 then return {epoch} end
        local members = redis.call('ZRANGE', KEYS[2], -limit, -1, 'WITHSCORES')
        local cutoff = tonumber(ARGV[2]) - tonumber(ARGV[3])
        local reply = {epoch}
        for i = 1, #members, 2 do
            local published = tonumber(string.match(members[i], '^(%d+):'))
            if published ~= nil and published > cutoff then
                reply[#reply + 1] = tonumber(members[i + 1])
                reply[#reply + 1] = members[i]
            end
        end
        return reply
        """#)
}
