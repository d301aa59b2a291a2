package org.volprov.redis;

import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeSet;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;
import org.volprov.source.PublishedChecksum;

/**
 * Which hosts hold which images: for an operator, or a scheduler that places a VM where its image
 * is cached already. Reads Redis on every call (nothing is cached here). Thread-safe.
 *
 * <p>Unlike the cache and the locks, the view has nothing local to fall back on: while Redis is
 * unreachable its methods throw {@link ProvisioningException} {@code BACKEND_FAILURE}. What a host
 * admitted during an outage appears once it has reconciled.
 */
public final class RedisFleetView {
    private final RedisCoordination redis;
    private final Keys keys;

    RedisFleetView(RedisCoordination redis, Keys keys) {
        this.redis = redis;
        this.keys = keys;
    }

    /**
     * The live hosts (heartbeat fresh) whose cache holds the image with digest {@code sha256}, sorted.
     *
     * @throws IllegalArgumentException when {@code sha256} is not 64 lower-case hex characters
     */
    public Set<String> hostsHolding(String sha256) {
        requireDigest(sha256);
        @SuppressWarnings("unchecked")
        List<String> hosts = (List<String>) read(j -> Scripts.LIVE_HOLDERS.run(j, List.of(keys.root, sha256)));
        return new TreeSet<>(hosts);
    }

    /** The digests cached on {@code hostId}, sorted; empty for an unknown host. */
    public Set<String> digestsOn(String hostId) {
        Objects.requireNonNull(hostId, "hostId");
        Set<String> digests = read(j -> j.hkeys(keys.hostPrefix(hostId) + "entries"));
        return new TreeSet<>(digests);
    }

    /** Every host that ever wrote an entry under this prefix, sorted, alive or not. */
    public Set<String> hosts() {
        Set<String> hosts = read(j -> j.smembers(keys.hosts()));
        return new TreeSet<>(hosts);
    }

    /** The shared counters and current use of {@code hostId}'s cache. */
    public SharedCacheStats stats(String hostId) {
        Objects.requireNonNull(hostId, "hostId");
        String p = keys.hostPrefix(hostId);
        Map<String, String> s = read(j -> j.hgetAll(p + "stats"));
        long entries = read(j -> j.hlen(p + "entries"));
        String bytes = read(j -> j.get(p + "bytes"));
        boolean alive = read(j -> j.exists(keys.alive(hostId)));
        return new SharedCacheStats(hostId, alive, count(s, "hits"), count(s, "misses"), count(s, "admissions"),
                count(s, "evictions"), entries, bytes == null ? 0 : Long.parseLong(bytes));
    }

    private static long count(Map<String, String> s, String name) {
        String v = s.get(name);
        return v == null ? 0 : Long.parseLong(v);
    }

    private <T> T read(java.util.function.Function<redis.clients.jedis.UnifiedJedis, T> op) {
        try {
            return redis.direct(op);
        } catch (RedisUnreachableException e) {
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "the fleet view needs Redis: "
                    + e.getMessage(), e.getCause());
        }
    }

    private static void requireDigest(String sha256) {
        if (!PublishedChecksum.isDigest(sha256)) {
            throw new IllegalArgumentException("sha256 must be 64 lower-case hex characters");
        }
    }
}
