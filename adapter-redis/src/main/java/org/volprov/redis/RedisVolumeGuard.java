package org.volprov.redis;

import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import org.volprov.volume.VolumeGuard;

/**
 * One job per volume across the processes of a host: a lock in this process first (so its own jobs
 * never reach Redis to find each other), then a leased, fenced lock in Redis per volume name (see
 * {@link RedisLocks}): once its lease may have run out without a renewal, or another process holds
 * it, {@link Lock#lost()} says so and the engine stops the job before its next write. While Redis
 * is unreachable only the in-process lock is taken, and it is taken in Redis when Redis answers.
 * Thread-safe.
 */
final class RedisVolumeGuard implements VolumeGuard {
    private final RedisLocks locks;
    private final Keys keys;
    private final Set<String> inProcess = ConcurrentHashMap.newKeySet();

    RedisVolumeGuard(RedisLocks locks, Keys keys) {
        this.locks = locks;
        this.keys = keys;
    }

    @Override
    public Optional<Lock> tryLock(String volumeName) {
        Objects.requireNonNull(volumeName, "volumeName");
        if (!inProcess.add(volumeName)) {
            return Optional.empty();
        }
        Optional<RedisLocks.Held> held;
        try {
            held = locks.tryLock(keys.volume(volumeName), true);
        } catch (RuntimeException e) {
            inProcess.remove(volumeName);
            throw e;
        }
        if (held.isEmpty()) {
            inProcess.remove(volumeName);
            return Optional.empty();
        }
        RedisLocks.Held h = held.get();
        AtomicBoolean released = new AtomicBoolean();
        return Optional.of(new Lock() {
            @Override
            public Optional<String> lost() {
                return h.lost();
            }

            @Override
            public void close() {
                if (released.compareAndSet(false, true)) {
                    try {
                        h.close();
                    } finally {
                        inProcess.remove(volumeName);
                    }
                }
            }
        });
    }

    @Override
    public String toString() {
        return "RedisVolumeGuard[host=" + keys.hostId + "]";
    }
}
