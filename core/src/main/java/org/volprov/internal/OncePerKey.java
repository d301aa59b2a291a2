package org.volprov.internal;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;

/**
 * Says "first time" once per key, for warnings that would otherwise repeat on every request for the
 * same thing. Remembers at most {@code maxKeys} keys (the least recently seen are forgotten and may
 * be reported again), so its memory is bounded however many keys it sees. Thread-safe.
 */
public final class OncePerKey<K> {
    private final Cache<K, Boolean> seen;

    public OncePerKey(long maxKeys) {
        this.seen = Caffeine.newBuilder().maximumSize(maxKeys).executor(Runnable::run).build();
    }

    /** Whether this is the first time {@code key} is seen (since it was last forgotten). */
    public boolean first(K key) {
        return seen.asMap().putIfAbsent(key, Boolean.TRUE) == null;
    }
}
