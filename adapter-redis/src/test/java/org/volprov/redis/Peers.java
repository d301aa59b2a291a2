package org.volprov.redis;

import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Clock;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.ScheduledExecutorService;
import java.util.function.UnaryOperator;
import org.volprov.ImageRef;
import org.volprov.cache.CacheKey;
import org.volprov.cache.CacheSink;
import org.volprov.cache.DiskImageCache;

/**
 * Stands in for provisioner processes in one JVM: each "process" has its own coordination (its own
 * connection pool, timer, tokens) and its own cache over a directory, as a separate JVM would.
 * Closes everything it opened, caches first.
 */
final class Peers implements AutoCloseable {
    private final String uri;
    private final String prefix;
    private final List<Peer> opened = new ArrayList<>();

    Peers(String uri, String prefix) {
        this.uri = uri;
        this.prefix = prefix;
    }

    record Peer(RedisCoordination redis, DiskImageCache cache) {
    }

    Peer open(String hostId, Path dir, long maxBytes) {
        return open(hostId, dir, maxBytes, c -> c, null, null);
    }

    Peer open(String hostId, Path dir, long maxBytes, UnaryOperator<RedisConfig.Builder> config, Clock clock,
                 ScheduledExecutorService scheduler) {
        RedisCoordination.Builder b = RedisCoordination.builder()
                .config(config.apply(RedisConfig.builder().uri(uri).keyPrefix(prefix).hostId(hostId)).build());
        if (clock != null) {
            b.clock(clock);
        }
        if (scheduler != null) {
            b.scheduler(scheduler);
        }
        RedisCoordination redis = b.build();
        DiskImageCache cache;
        try {
            cache = redis.cache().directory(dir).maxBytes(maxBytes).build();
        } catch (RuntimeException e) {
            redis.close();
            throw e;
        }
        Peer p = new Peer(redis, cache);
        opened.add(p);
        return p;
    }

    @Override
    public void close() {
        for (Peer p : opened) {
            p.cache().close();
        }
        for (Peer p : opened) {
            p.redis().close();
        }
    }

    static byte[] image(int size, long seed) {
        byte[] b = new byte[size];
        new Random(seed).nextBytes(b);
        return b;
    }

    static String sha256(byte[] b) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    static CacheKey key(String name, byte[] content) {
        return new CacheKey(new ImageRef("images", name), "etag-" + name, content.length, Optional.of(sha256(content)));
    }

    static void write(CacheSink sink, byte[] content, int from, int to) throws java.io.IOException {
        for (int off = from; off < to; off += 16 * 1024) {
            sink.write(ByteBuffer.wrap(content, off, Math.min(16 * 1024, to - off)));
        }
    }
}
