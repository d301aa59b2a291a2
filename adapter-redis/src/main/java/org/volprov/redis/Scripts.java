package org.volprov.redis;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import redis.clients.jedis.UnifiedJedis;
import redis.clients.jedis.exceptions.JedisNoScriptException;

/**
 * The Lua scripts that keep the index consistent: each runs atomically on the server, so two
 * processes never see an entry half added or half evicted. They build key names from the prefix
 * they are given (see {@link Keys}), which is why the adapter targets a standalone Redis (or a
 * primary behind a proxy), not Redis Cluster.
 *
 * <p>Index scripts share ARGV[1] = the host's key prefix, ARGV[2] = the root prefix, ARGV[3] = the
 * host id, ARGV[4] = now in epoch milliseconds (the caller's clock: every lease of a host is
 * written and read by processes of that host).
 */
final class Scripts {
    private Scripts() {
    }

    /** A script run by digest, sent whole only when the server does not know it (after a restart). */
    static final class Script {
        private final String text;
        private final String sha1;

        Script(String text) {
            this.text = text;
            try {
                this.sha1 = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-1")
                        .digest(text.getBytes(StandardCharsets.UTF_8)));
            } catch (NoSuchAlgorithmException e) {
                throw new IllegalStateException("the JVM has no SHA-1", e);
            }
        }

        Object run(UnifiedJedis jedis, List<String> args) {
            try {
                return jedis.evalsha(sha1, List.of(), args);
            } catch (JedisNoScriptException e) {
                return jedis.eval(text, List.of(), args);
            }
        }
    }

    private static final String PRELUDE = """
            local K = ARGV[1]
            local P = ARGV[2]
            local host = ARGV[3]
            local now = tonumber(ARGV[4])

            -- Whether an entry has a lease that has not expired; drops the expired ones.
            local function held(sha)
              local hk = K .. 'hold:' .. sha
              redis.call('ZREMRANGEBYSCORE', hk, '-inf', now)
              return redis.call('ZCARD', hk) > 0
            end

            local function tick()
              return redis.call('INCR', K .. 'tick')
            end

            -- Removes an entry from the index (not its files) and returns the identities that pointed at it.
            local function forget(sha)
              local size = redis.call('HGET', K .. 'entries', sha) or '0'
              redis.call('HDEL', K .. 'entries', sha)
              redis.call('ZREM', K .. 'lru', sha)
              redis.call('DECRBY', K .. 'bytes', size)
              local ids = redis.call('SMEMBERS', K .. 'ids:' .. sha)
              for _, id in ipairs(ids) do
                if redis.call('HGET', K .. 'alias', id) == sha then
                  redis.call('HDEL', K .. 'alias', id)
                end
              end
              redis.call('HDEL', K .. 'used', sha)
              redis.call('DEL', K .. 'ids:' .. sha, K .. 'hold:' .. sha)
              redis.call('SREM', P .. 'fleet:' .. sha, host)
              return ids
            end

            -- size is the decimal string as given: a Lua number would reach Redis as %.14g.
            -- used: when it was last used, in epoch milliseconds.
            local function adopt(sha, size, used)
              if redis.call('HSETNX', K .. 'entries', sha, size) == 1 then
                redis.call('INCRBY', K .. 'bytes', size)
                redis.call('ZADD', K .. 'lru', tick(), sha)
                redis.call('HSET', K .. 'used', sha, used)
                redis.call('SADD', P .. 'fleet:' .. sha, host)
                return true
              end
              return false
            end

            -- Bytes and count of live reservations; drops the expired ones.
            local function reserved()
              local expired = redis.call('ZRANGEBYSCORE', K .. 'rsv', '-inf', now)
              for _, id in ipairs(expired) do
                redis.call('HDEL', K .. 'rsvbytes', id)
              end
              redis.call('ZREMRANGEBYSCORE', K .. 'rsv', '-inf', now)
              local total, n = 0, 0
              for _, b in ipairs(redis.call('HVALS', K .. 'rsvbytes')) do
                total = total + tonumber(b)
                n = n + 1
              end
              return total, n
            end

            -- Evicts unleased entries, least recently used first, until the given bytes and entries
            -- are freed. When that is impossible, evicts nothing and returns nil, unless partial is
            -- set (then it frees what it can). Returns {sha, #ids, ids..., sha, ...} of the evicted.
            local function makeRoom(bytesToFree, entriesToFree, partial)
              local out = {}
              if bytesToFree <= 0 and entriesToFree <= 0 then
                return out
              end
              local victims = {}
              local b, c = bytesToFree, entriesToFree
              for _, sha in ipairs(redis.call('ZRANGE', K .. 'lru', 0, -1)) do
                if b <= 0 and c <= 0 then
                  break
                end
                if not held(sha) then
                  table.insert(victims, sha)
                  b = b - tonumber(redis.call('HGET', K .. 'entries', sha) or '0')
                  c = c - 1
                end
              end
              if (b > 0 or c > 0) and not partial then
                return nil
              end
              for _, sha in ipairs(victims) do
                local ids = forget(sha)
                redis.call('HINCRBY', K .. 'stats', 'evictions', 1)
                table.insert(out, sha)
                table.insert(out, #ids)
                for _, id in ipairs(ids) do
                  table.insert(out, id)
                end
              end
              return out
            end

            local function usage()
              return tonumber(redis.call('GET', K .. 'bytes') or '0'), redis.call('HLEN', K .. 'entries')
            end
            """;

    /**
     * ARGV[5] sha, [6] lease id, [7] expiry, [8] '1' to count it as a use (use order, last use, hits)
     * or '0' for a pin that leaves them alone: 1 and a lease when the entry exists, else 0.
     */
    static final Script ACQUIRE = new Script(PRELUDE + """
            local sha = ARGV[5]
            if redis.call('HEXISTS', K .. 'entries', sha) == 0 then
              return 0
            end
            redis.call('ZADD', K .. 'hold:' .. sha, ARGV[7], ARGV[6])
            if ARGV[8] == '1' then
              redis.call('ZADD', K .. 'lru', tick(), sha)
              redis.call('HSET', K .. 'used', sha, ARGV[4])
              redis.call('HINCRBY', K .. 'stats', 'hits', 1)
            end
            return 1
            """);

    /**
     * The host's entries, least recently used first: {sha, size, last use (ms), live leases, #ids,
     * ids..., sha, ...}.
     */
    static final Script LIST = new Script(PRELUDE + """
            local out = {}
            for _, sha in ipairs(redis.call('ZRANGE', K .. 'lru', 0, -1)) do
              local size = redis.call('HGET', K .. 'entries', sha)
              if size then
                held(sha)
                table.insert(out, sha)
                table.insert(out, size)
                table.insert(out, redis.call('HGET', K .. 'used', sha) or '0')
                table.insert(out, redis.call('ZCARD', K .. 'hold:' .. sha))
                local ids = redis.call('SMEMBERS', K .. 'ids:' .. sha)
                table.insert(out, #ids)
                for _, id in ipairs(ids) do
                  table.insert(out, id)
                end
              end
            end
            return out
            """);

    /**
     * ARGV[5] sha: forgets an unleased entry (not counted as an eviction). Returns {0} when there is
     * no such entry, {1} when it is leased, {2, ids...} when it was forgotten.
     */
    static final Script REMOVE = new Script(PRELUDE + """
            local sha = ARGV[5]
            if redis.call('HEXISTS', K .. 'entries', sha) == 0 then
              return {0}
            end
            if held(sha) then
              return {1}
            end
            local out = {2}
            for _, id in ipairs(forget(sha)) do
              table.insert(out, id)
            end
            return out
            """);

    /**
     * ARGV[5] bytes, [6] maxBytes, [7] maxEntries, [8] reservation id, [9] expiry. Returns
     * {1, evicted...} with the room set aside, or {0, bytesInUse, entries} when it cannot be made.
     */
    static final Script RESERVE = new Script(PRELUDE + """
            local bytes = tonumber(ARGV[5])
            local rb, rn = reserved()
            local inUse, count = usage()
            local out = makeRoom(inUse + rb + bytes - tonumber(ARGV[6]), count + rn + 1 - tonumber(ARGV[7]), false)
            if out == nil then
              return {0, inUse, count}
            end
            redis.call('ZADD', K .. 'rsv', ARGV[9], ARGV[8])
            redis.call('HSET', K .. 'rsvbytes', ARGV[8], ARGV[5])
            redis.call('HINCRBY', K .. 'stats', 'misses', 1)
            table.insert(out, 1, 1)
            return out
            """);

    /** ARGV[5] reservation id. */
    static final Script RELEASE_ROOM = new Script(PRELUDE + """
            redis.call('ZREM', K .. 'rsv', ARGV[5])
            redis.call('HDEL', K .. 'rsvbytes', ARGV[5])
            return 1
            """);

    /**
     * ARGV[5] reservation id or '', [6] sha, [7] size, [8] lease id, [9] expiry. Makes the entry
     * (unless it exists) and leases it; returns 1 when it was new.
     */
    static final Script ADD = new Script(PRELUDE + """
            if ARGV[5] ~= '' then
              redis.call('ZREM', K .. 'rsv', ARGV[5])
              redis.call('HDEL', K .. 'rsvbytes', ARGV[5])
            end
            local sha = ARGV[6]
            local new = adopt(sha, ARGV[7], ARGV[4])
            if new then
              redis.call('HINCRBY', K .. 'stats', 'admissions', 1)
              redis.call('SADD', P .. 'hosts', host)
            else
              redis.call('ZADD', K .. 'lru', tick(), sha)
              redis.call('HSET', K .. 'used', sha, ARGV[4])
            end
            redis.call('ZADD', K .. 'hold:' .. sha, ARGV[9], ARGV[8])
            return new and 1 or 0
            """);

    /** ARGV[5] sha: forgets the entry, whoever holds it (its file is gone); 1 when it was there. */
    static final Script DROP = new Script(PRELUDE + """
            if redis.call('HEXISTS', K .. 'entries', ARGV[5]) == 0 then
              return 0
            end
            forget(ARGV[5])
            return 1
            """);

    /** ARGV[5] identity, [6] sha: recorded only while the entry exists. */
    static final Script PUT_ALIAS = new Script(PRELUDE + """
            if redis.call('HEXISTS', K .. 'entries', ARGV[6]) == 1 then
              redis.call('HSET', K .. 'alias', ARGV[5], ARGV[6])
              redis.call('SADD', K .. 'ids:' .. ARGV[6], ARGV[5])
            end
            return 1
            """);

    /**
     * Renews this process's leases and reservations (only those Redis still has). ARGV[5] expiry,
     * [6] number of leases n, then n pairs (sha, lease id), then reservation ids.
     */
    static final Script RENEW = new Script(PRELUDE + """
            local expiry = ARGV[5]
            local n = tonumber(ARGV[6])
            local i = 7
            for _ = 1, n do
              redis.call('ZADD', K .. 'hold:' .. ARGV[i], 'XX', expiry, ARGV[i + 1])
              i = i + 2
            end
            while i <= #ARGV do
              redis.call('ZADD', K .. 'rsv', 'XX', expiry, ARGV[i])
              i = i + 1
            end
            return 1
            """);

    /**
     * Makes Redis agree with the directory. ARGV[5] maxBytes, [6] maxEntries, [7] expiry of this
     * process's leases, then counted lists: entries on disk oldest first (sha, size, last use in ms), aliases on disk
     * (identity, sha), entries gone from disk (sha; forgotten unless leased), this process's live
     * leases (sha, lease id), its live reservations (id, bytes). Sheds least recently used unleased
     * entries beyond the budget; returns them as makeRoom does.
     */
    static final Script RECONCILE = new Script(PRELUDE + """
            local expiry = ARGV[7]
            local i = 8
            local function count()
              local n = tonumber(ARGV[i])
              i = i + 1
              return n
            end
            for _ = 1, count() do
              adopt(ARGV[i], ARGV[i + 1], ARGV[i + 2])
              redis.call('SADD', P .. 'fleet:' .. ARGV[i], host)
              i = i + 3
            end
            for _ = 1, count() do
              if redis.call('HEXISTS', K .. 'entries', ARGV[i + 1]) == 1 then
                redis.call('HSET', K .. 'alias', ARGV[i], ARGV[i + 1])
                redis.call('SADD', K .. 'ids:' .. ARGV[i + 1], ARGV[i])
              end
              i = i + 2
            end
            for _ = 1, count() do
              if redis.call('HEXISTS', K .. 'entries', ARGV[i]) == 1 and not held(ARGV[i]) then
                forget(ARGV[i])
              end
              i = i + 1
            end
            for _ = 1, count() do
              if redis.call('HEXISTS', K .. 'entries', ARGV[i]) == 1 then
                redis.call('ZADD', K .. 'hold:' .. ARGV[i], expiry, ARGV[i + 1])
              end
              i = i + 2
            end
            for _ = 1, count() do
              redis.call('ZADD', K .. 'rsv', expiry, ARGV[i])
              redis.call('HSET', K .. 'rsvbytes', ARGV[i], ARGV[i + 1])
              i = i + 2
            end
            redis.call('SADD', P .. 'hosts', host)
            redis.call('SET', K .. 'loaded', '1')
            local inUse, n = usage()
            return makeRoom(inUse - tonumber(ARGV[5]), n - tonumber(ARGV[6]), true)
            """);

    /** ARGV[1] heartbeat key, [2] its lifetime (ms), [3] the host's loaded marker: 1 while the index is there. */
    static final Script HEARTBEAT = new Script("""
            redis.call('SET', ARGV[1], '1', 'PX', ARGV[2])
            return redis.call('EXISTS', ARGV[3])
            """);

    /** ARGV[1] key, [2] token, [3] lease (ms): 1 renewed, 2 taken again after Redis lost it, 0 held by another. */
    static final Script RENEW_LOCK = new Script("""
            local v = redis.call('GET', ARGV[1])
            if v == ARGV[2] then
              redis.call('PEXPIRE', ARGV[1], ARGV[3])
              return 1
            elseif not v then
              redis.call('SET', ARGV[1], ARGV[2], 'PX', ARGV[3])
              return 2
            end
            return 0
            """);

    /** ARGV[1] key, [2] token: deletes the lock only when it is still this holder's. */
    static final Script RELEASE_LOCK = new Script("""
            if redis.call('GET', ARGV[1]) == ARGV[2] then
              return redis.call('DEL', ARGV[1])
            end
            return 0
            """);

    /** ARGV[1] root prefix, ARGV[2] sha: the hosts holding the entry whose heartbeat is alive. */
    static final Script LIVE_HOLDERS = new Script("""
            local out = {}
            for _, h in ipairs(redis.call('SMEMBERS', ARGV[1] .. 'fleet:' .. ARGV[2])) do
              if redis.call('EXISTS', ARGV[1] .. 'alive:' .. h) == 1 then
                table.insert(out, h)
              end
            end
            return out
            """);
}
