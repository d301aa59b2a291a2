package org.volprov.redis;

import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import org.volprov.Cancellation;
import org.volprov.cache.DiskImageCache;

/**
 * The process that {@link FillLockCrashIT} kills: opens a cache on Redis, starts a download, says
 * {@code FILLING} on stdout once it holds the fill lock and half the image is written, then waits
 * to be killed. Stops by itself after a minute should no one kill it.
 *
 * <p>Arguments: key prefix, host id, cache directory, lease in ms, image size, image seed. The
 * Redis URI comes from {@code VOLPROV_TEST_REDIS_URI} so that no password shows on a command line.
 */
public final class FillLockHolder {
    private FillLockHolder() {
    }

    public static void main(String[] args) throws Exception {
        String uri = System.getenv("VOLPROV_TEST_REDIS_URI");
        RedisConfig config = RedisConfig.builder().uri(uri).keyPrefix(args[0]).hostId(args[1])
                .leaseTime(Duration.ofMillis(Long.parseLong(args[3]))).build();
        byte[] img = Peers.image(Integer.parseInt(args[4]), Long.parseLong(args[5]));
        RedisCoordination redis = RedisCoordination.create(config);
        DiskImageCache cache = redis.cache().directory(Path.of(args[2])).maxBytes(100L * img.length).build();
        cache.admit(Peers.key("crash.qcow2", img), sink -> {
            Peers.write(sink, img, 0, img.length / 2);
            System.out.println("FILLING");
            System.out.flush();
            long until = System.nanoTime() + TimeUnit.MINUTES.toNanos(1);
            while (System.nanoTime() < until) {
                LockSupport.parkNanos(TimeUnit.SECONDS.toNanos(1));
            }
            throw new java.io.IOException("no one killed this process");
        }, Cancellation.none());
    }
}
