package org.volprov.redis;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import redis.clients.jedis.params.SetParams;

/**
 * Leased locks in Redis: {@code SET key token NX PX lease}, renewed by the coordination's timer,
 * released by compare-and-delete so a holder whose lease ran out never deletes its successor's
 * lock. While Redis is unreachable a lock is granted locally (the caller's in-process guard is then
 * all there is) and taken in Redis when it answers again. Thread-safe.
 *
 * <p>A fenced lock (a volume's) knows when it is lost: when a renewal finds another process's
 * token, and, before that can be known, as soon as its lease may have run out in Redis. Redis lets
 * the key expire a lease time after it took the last {@code SET} or renewal; this process counts
 * {@link #TRUSTED_PERCENT} of that time from before it sent the command, on the monotonic clock, so
 * that it presumes the loss before Redis can give the lock away, whatever stalled it (a pause of
 * the JVM, a frozen process, a connection that stopped answering). The rest of the lease covers a
 * difference in clock rates and the time from a check to the write it guards. A lost lock stays
 * lost: it is neither renewed nor taken back.
 */
final class RedisLocks {
    private static final Logger LOG = LoggerFactory.getLogger(RedisLocks.class);
    /** The share of the lease time a lock is trusted for after Redis confirmed it. */
    static final int TRUSTED_PERCENT = 90;

    private final RedisCoordination redis;
    private final Map<String, Held> held = new ConcurrentHashMap<>();

    RedisLocks(RedisCoordination redis) {
        this.redis = redis;
    }

    /** A held lock; {@link #close()} releases it once. */
    final class Held implements AutoCloseable {
        final String key;
        final String token;
        private final boolean fenced;
        private final AtomicBoolean released = new AtomicBoolean();
        private final AtomicReference<String> lost = new AtomicReference<>();
        /** Until when (System.nanoTime) the lock is trusted; meaningful once confirmed. */
        private volatile long trustedUntil;
        /** Whether Redis holds the lock for this process (false while it was granted during an outage). */
        private volatile boolean confirmed;
        private volatile boolean warned;

        Held(String key, String token, boolean fenced) {
            this.key = key;
            this.token = token;
            this.fenced = fenced;
        }

        /** Redis took or renewed the lock by a command sent at {@code sentAt} (System.nanoTime). */
        void confirmed(long sentAt) {
            trustedUntil = sentAt + trustedNanos();
            confirmed = true;
        }

        /**
         * Why a fenced lock is lost, or empty while it holds; presumes the loss once the trusted part
         * of the lease has passed without a renewal. Cheap: no Redis call.
         */
        Optional<String> lost() {
            String why = lost.get();
            if (why == null && fenced && confirmed && System.nanoTime() - trustedUntil > 0) {
                why = markLost("its lease of " + Duration.ofMillis(redis.leaseMillis()) + " ran out without a renewal:"
                        + " this process stalled, or could not reach Redis, for that long");
            }
            return Optional.ofNullable(why);
        }

        private String markLost(String why) {
            if (lost.compareAndSet(null, why)) {
                LOG.warn("lock {} is lost: {}", key, why);
            }
            return lost.get();
        }

        /** Renews the lock in Redis, or takes it again there when Redis lost it; a lost fenced lock is left alone. */
        private void renew() {
            if (fenced && lost().isPresent()) {
                return;
            }
            long sentAt = System.nanoTime();
            long r = (Long) redis.call(j -> Scripts.RENEW_LOCK.run(j, List.of(key, token,
                    Long.toString(redis.leaseMillis()))));
            if (r != 0) {
                confirmed(sentAt);
                warned = false;
            } else if (fenced) {
                markLost("another process holds it in Redis: it took the lock while this one could not renew it");
            } else if (!warned) {
                warned = true;
                LOG.warn("lock {} is held by another process: it was taken while this one could not renew it"
                        + " (Redis unreachable or the lease ran out)", key);
            }
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

    private long trustedNanos() {
        return redis.leaseMillis() * TRUSTED_PERCENT / 100 * 1_000_000L;
    }

    /**
     * The lock on {@code key}, or empty when another process holds it in Redis. Granted without
     * Redis while Redis is unreachable.
     *
     * @param fenced whether the lock is to know when it is lost (see {@link Held#lost()})
     */
    Optional<Held> tryLock(String key, boolean fenced) {
        Held h = new Held(key, redis.newToken(), fenced);
        try {
            long sentAt = System.nanoTime();
            String ok = redis.call(j -> j.set(key, h.token, SetParams.setParams().nx().px(redis.leaseMillis())));
            if (ok == null) {
                return Optional.empty();
            }
            h.confirmed(sentAt);
        } catch (RedisUnreachableException e) {
            LOG.debug("granting {} locally: Redis is unreachable", key);
        }
        held.put(h.token, h);
        return Optional.of(h);
    }

    /**
     * Renews every held lock, taking again those Redis lost (a restart) or never had (granted during
     * an outage), unless they are lost; marks a fenced lock that another process took meanwhile as
     * lost, and warns once about an unfenced one.
     *
     * @throws RedisUnreachableException when Redis stops answering
     */
    void renewAll() {
        for (Held h : held.values()) {
            h.renew();
        }
    }

    /** Releases every lock still held, for close. */
    void releaseAll() {
        for (Held h : held.values()) {
            h.close();
        }
    }
}
