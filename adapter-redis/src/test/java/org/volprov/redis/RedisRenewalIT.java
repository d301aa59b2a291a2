package org.volprov.redis;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.volprov.redis.Peers.image;
import static org.volprov.redis.Peers.key;
import static org.volprov.redis.Peers.sha256;
import static org.volprov.redis.Peers.write;

import java.nio.file.Path;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.volprov.Cancellation;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;
import org.volprov.cache.CacheKey;
import org.volprov.cache.CacheLease;
import org.volprov.cache.ImageFiller;
import org.volprov.redis.testkit.RedisTestServer;
import org.volprov.testing.SettableClock;
import org.volprov.volume.VolumeGuard;

/**
 * What the timer does: renew leases and locks, take back a lock Redis lost, and rebuild the index
 * when Redis answers but no longer holds it. The timers of these processes fire once an hour, so
 * never within a test: each test runs a renewal by hand after moving the clock, and nothing waits
 * for time to pass.
 */
class RedisRenewalIT {
    private static final int IMAGE = 64 * 1024;
    private static RedisTestServer server;

    @TempDir
    Path dir;

    private final String prefix = RedisTestServer.uniquePrefix("renew");
    private final SettableClock clock = new SettableClock();
    private final ScheduledExecutorService idle = Executors.newSingleThreadScheduledExecutor();
    private Peers peers;

    @BeforeAll
    static void server() {
        server = RedisTestServer.shared();
    }

    @AfterEach
    void cleanUp() {
        if (peers != null) {
            peers.close();
        }
        idle.shutdownNow();
        server.deleteKeys(prefix);
    }

    private Peers.Peer open(long maxBytes) {
        if (peers == null) {
            peers = new Peers(server.uri(), prefix);
        }
        // Renewals every hour: within a test only renewNow() renews.
        return peers.open("host-1", dir, maxBytes, c -> c.leaseTime(java.time.Duration.ofHours(2))
                .renewInterval(java.time.Duration.ofHours(1)), clock, idle);
    }

    private static ImageFiller filler(byte[] content) {
        return sink -> write(sink, content, 0, content.length);
    }

    @Test
    void renewal_keepsALeaseAliveBeyondItsFirstExpiry() {
        Peers.Peer a = open(IMAGE);
        Peers.Peer b = open(IMAGE);
        byte[] x = image(IMAGE, 1);
        byte[] y = image(IMAGE, 2);
        try (CacheLease held = a.cache().admit(key("x", x), filler(x), Cancellation.none())) {
            clock.advance(a.redis().config().leaseTime().dividedBy(2));
            a.redis().renewNow();
            clock.advance(a.redis().config().leaseTime().dividedBy(2).plusSeconds(1));

            // Past the first expiry, but renewed: x stays leased, so y cannot get room.
            assertThatThrownBy(() -> b.cache().admit(key("y", y), filler(y), Cancellation.none()))
                    .isInstanceOfSatisfying(ProvisioningException.class,
                            e -> assertThat(e.code()).isEqualTo(ErrorCode.INSUFFICIENT_SPACE));
            assertThat(held.path()).exists();
        }
        b.cache().admit(key("y", y), filler(y), Cancellation.none()).close();
    }

    @Test
    void renewal_takesBackALockRedisLostAndMarksOneAnotherProcessTookAsLost() {
        Peers.Peer a = open(IMAGE);
        Peers.Peer b = open(IMAGE);
        VolumeGuard.Lock one = a.redis().volumeGuard().tryLock("vm-1-root").orElseThrow();
        VolumeGuard.Lock two = a.redis().volumeGuard().tryLock("vm-2-root").orElseThrow();
        String k1 = a.redis().keys().volume("vm-1-root");
        String k2 = a.redis().keys().volume("vm-2-root");
        String token1 = server.client().get(k1);

        server.client().del(k1);                         // Redis lost it (a failover to a stale replica)
        server.client().set(k2, "another-process-token"); // another process took it after a lapse
        a.redis().renewNow();

        assertThat(server.client().get(k1)).isEqualTo(token1);
        assertThat(server.client().pttl(k1)).isPositive();
        assertThat(one.lost()).isEmpty();
        assertThat(server.client().get(k2)).isEqualTo("another-process-token");
        assertThat(two.lost()).hasValueSatisfying(why -> assertThat(why).contains("another process holds it"));
        assertThat(b.redis().volumeGuard().tryLock("vm-1-root")).isEmpty();

        server.client().del(k2); // the other process is done with it
        a.redis().renewNow();
        assertThat(server.client().exists(k2)).as("a lost lock is never taken back").isFalse();
        assertThat(two.lost()).isPresent();
        server.client().set(k2, "another-process-token");
        two.close(); // compare-and-delete: the other process's lock stays
        assertThat(server.client().get(k2)).isEqualTo("another-process-token");
        one.close();
        assertThat(server.client().exists(k1)).isFalse();
    }

    @Test
    void heartbeat_whenRedisNoLongerHoldsTheIndex_rebuildsItFromTheDirectory() {
        Peers.Peer a = open(10L * IMAGE);
        byte[] x = image(IMAGE, 3);
        CacheKey kx = key("x", x);
        a.cache().admit(kx, filler(x), Cancellation.none()).close();

        server.deleteKeys(prefix); // what a flush or a restart without persistence does to this prefix
        assertThat(server.client().hlen(a.redis().keys().entries())).isZero();
        a.redis().renewNow();

        assertThat(server.client().hkeys(a.redis().keys().entries())).containsExactly(sha256(x));
        assertThat(a.redis().fleet().hostsHolding(sha256(x))).containsExactly("host-1");
        AtomicInteger runs = new AtomicInteger();
        try (CacheLease lease = a.cache().admit(kx, sink -> runs.incrementAndGet(), Cancellation.none())) {
            assertThat(lease.hit()).isTrue();
        }
        assertThat(runs).hasValue(0);
        assertThat(a.redis().outages()).isZero();
    }
}
