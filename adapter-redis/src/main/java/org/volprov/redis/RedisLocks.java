package org.volprov.redis;

import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import redis.clients.jedis.params.SetParams;

/**
 * Leased locks in Redis: {@code SET key token NX PX lease}, renewed by the coordination's timer,
 * released by compare-and-delete so a holder whose lease ran out never deletes its successor's
 * lock. While Redis is unreachable a lock is granted locally (the caller's in-process guard is then
 * all there is) and taken in Redis when it answers again. Thread-safe.
 */
final class RedisLocks {
    private static final Logger LOG = LoggerFactory.getLogger(RedisLocks.class);

    private final RedisCoordination redis;
    private final Map<String, Held> held = new ConcurrentHashMap<>();

    RedisLocks(RedisCoordination redis) {
        this.redis = redis;
    }

    /** A held lock; {@link #close()} releases it once. */
    final class Held implements AutoCloseable {
        final String key;
        final String token;
        private final AtomicBoolean released = new AtomicBoolean();
        private volatile boolean lost;

        Held(String key, String token) {
            this.key = key;
            this.token = token;
        }

        @Override
        public void close() {
            if (!released.compareAndSet(false, true)) {
                return;
            }
            held.remove(token);
            try {
                redis.call(j -> Scripts.RELEASE_LOCK.run(j, List.of(key, token)));
            } catch (RedisUnreachableException e) {
                // It expires by itself after the lease time.
            }
        }
    }

    /**
     * The lock on {@code key}, or empty when another process holds it in Redis. Granted without
     * Redis while Redis is unreachable.
     */
    Optional<Held> tryLock(String key) {
        String token = redis.newToken();
        try {
            String ok = redis.call(j -> j.set(key, token, SetParams.setParams().nx().px(redis.leaseMillis())));
            if (ok == null) {
                return Optional.empty();
            }
        } catch (RedisUnreachableException e) {
            LOG.debug("granting {} locally: Redis is unreachable", key);
        }
        Held h = new Held(key, token);
        held.put(token, h);
        return Optional.of(h);
    }

    /**
     * Renews every held lock, taking again those Redis lost (a restart) or never had (granted during
     * an outage); warns once about each that another process took meanwhile.
     *
     * @throws RedisUnreachableException when Redis stops answering
     */
    void renewAll() {
        for (Held h : held.values()) {
            long r = (Long) redis.call(j -> Scripts.RENEW_LOCK.run(j, List.of(h.key, h.token,
                    Long.toString(redis.leaseMillis()))));
            if (r == 0 && !h.lost) {
                LOG.warn("lock {} is held by another process: it was taken while this one could not renew it"
                        + " (Redis unreachable or the lease ran out)", h.key);
            }
            h.lost = r == 0;
        }
    }

    /** Releases every lock still held, for close. */
    void releaseAll() {
        for (Held h : held.values()) {
            h.close();
        }
    }
}
