package org.volprov.redis;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.volprov.contract.VolumeGuardContract;
import org.volprov.redis.testkit.RedisTestServer;
import org.volprov.volume.VolumeGuard;

/**
 * Core's {@link VolumeGuardContract} on the Redis volume guard. The guard's coordination renews on
 * a timer thread of this test's, so that a stall is real: the thread is blocked, and no renewal
 * runs until the test ends. Another process is another coordination with its own pool and timer.
 */
class RedisVolumeGuardContractIT extends VolumeGuardContract {
    /** Long enough that a renewal late by a loaded machine's hiccup does not lose a lock (renewed every second). */
    private static final Duration LEASE = Duration.ofSeconds(3);
    private static RedisTestServer server;

    private final String prefix = RedisTestServer.uniquePrefix("guard");
    private final List<RedisCoordination> opened = new ArrayList<>();
    private final CountDownLatch unstall = new CountDownLatch(1);
    private ScheduledExecutorService timer;
    private VolumeGuard other;

    @BeforeAll
    static void server() {
        server = RedisTestServer.shared();
    }

    private RedisCoordination open(ScheduledExecutorService scheduler) {
        RedisCoordination.Builder b = RedisCoordination.builder()
                .config(server.config(prefix).hostId("guard-host").leaseTime(LEASE).build());
        if (scheduler != null) {
            b.scheduler(scheduler);
        }
        RedisCoordination c = b.build();
        opened.add(c);
        return c;
    }

    @Override
    protected VolumeGuard newGuard() {
        timer = Executors.newSingleThreadScheduledExecutor();
        return open(timer).volumeGuard();
    }

    @Override
    protected Duration leaseTime() {
        return LEASE;
    }

    @Override
    protected void stallRenewals() {
        timer.execute(() -> {
            try {
                unstall.await(5, TimeUnit.MINUTES);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
    }

    @Override
    protected VolumeGuard anotherProcess() {
        if (other == null) {
            other = open(null).volumeGuard();
        }
        return other;
    }

    @AfterEach
    void closeRedis() {
        // Runs before the contract releases its locks: closing the coordinations releases them in
        // Redis, and the contract's later close() calls find them released already.
        unstall.countDown();
        for (int i = opened.size() - 1; i >= 0; i--) {
            opened.get(i).close();
        }
        if (timer != null) {
            timer.shutdownNow();
        }
        server.deleteKeys(prefix);
    }
}
