package org.volprov.redis;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.volprov.cache.ImageCache;
import org.volprov.contract.ImageCacheContract;
import org.volprov.redis.testkit.RedisTestServer;

/** Core's {@link ImageCacheContract} on a disk cache indexed in Redis. */
class RedisImageCacheContractIT extends ImageCacheContract {
    private static RedisTestServer server;

    private final String prefix = RedisTestServer.uniquePrefix("contract");
    private final List<ImageCache> caches = new ArrayList<>();
    private final List<RedisCoordination> coordinations = new ArrayList<>();

    @BeforeAll
    static void server() {
        server = RedisTestServer.shared();
    }

    @Override
    protected ImageCache newCache(Path dir, long maxBytes, int maxEntries) {
        RedisCoordination redis = RedisCoordination.create(server.config(prefix).hostId("contract-host").build());
        coordinations.add(redis);
        ImageCache cache = redis.cache().directory(dir).maxBytes(maxBytes).maxEntries(maxEntries).build();
        caches.add(cache);
        return cache;
    }

    @AfterEach
    void removeKeys() {
        // Runs before the contract's own close: close in order (caches, then Redis), then drop the keys.
        caches.forEach(ImageCache::close);
        coordinations.forEach(RedisCoordination::close);
        server.deleteKeys(prefix);
    }
}
