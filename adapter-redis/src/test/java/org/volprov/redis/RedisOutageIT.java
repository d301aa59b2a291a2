package org.volprov.redis;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;
import static org.volprov.redis.Peers.image;
import static org.volprov.redis.Peers.key;
import static org.volprov.redis.Peers.sha256;
import static org.volprov.redis.Peers.write;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.volprov.Cancellation;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;
import org.volprov.cache.CacheEviction;
import org.volprov.cache.CacheLease;
import org.volprov.cache.ImageFiller;
import org.volprov.redis.testkit.PrivateRedisServer;
import org.volprov.volume.VolumeGuard;
import redis.clients.jedis.RedisClient;

/**
 * Redis stopped and restarted under running caches. The server is a private {@code redis-server}
 * child of this test (no persistence: a restart comes back empty), never the shared one. Probing is
 * slow on purpose and {@link RedisCoordination#reconnect()} is called instead, so the test decides
 * when Redis is noticed again.
 */
class RedisOutageIT {
    private static final int IMAGE = 128 * 1024;

    @TempDir
    Path tmp;

    private PrivateRedisServer redis;
    private Peers peers;
    private Path dir;

    @BeforeEach
    void startRedis() throws IOException {
        assumeTrue(PrivateRedisServer.available(), "redis-server is not installed");
        redis = PrivateRedisServer.start(tmp.resolve("redis"));
        peers = new Peers(redis.uri(), "volprov-outage");
        dir = tmp.resolve("cache");
    }

    @AfterEach
    void stopRedis() {
        if (peers != null) {
            peers.close();
        }
        if (redis != null) {
            redis.close();
        }
    }

    private Peers.Peer open(String hostId) {
        return peers.open(hostId, dir, 10L * IMAGE, c -> c.probeInterval(Duration.ofHours(1))
                .connectTimeout(Duration.ofMillis(500)).socketTimeout(Duration.ofMillis(500)), null, null);
    }

    private static ImageFiller filler(byte[] content, AtomicInteger runs) {
        return sink -> {
            runs.incrementAndGet();
            write(sink, content, 0, content.length);
        };
    }

    private static void admit(Peers.Peer p, String name, byte[] content, AtomicInteger runs) {
        try (CacheLease lease = p.cache().admit(key(name, content), filler(content, runs), Cancellation.none())) {
            assertThat(Files.readAllBytes(lease.path())).isEqualTo(content);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    private RedisClient client() {
        return RedisClient.create(java.net.URI.create(redis.uri()));
    }

    @Test
    void redisStoppedAndRestartedMidRun_provisioningGoesOnAndTheIndexIsReconciled() throws IOException {
        Peers.Peer a = open("host-1");
        byte[] one = image(IMAGE, 1);
        byte[] two = image(IMAGE, 2);
        byte[] three = image(IMAGE, 3);
        AtomicInteger runs = new AtomicInteger();
        admit(a, "one", one, runs);
        assertThat(a.redis().fleet().hostsHolding(sha256(one))).containsExactly("host-1");

        redis.stop();

        // Provisioning goes on: a new image is admitted and a cached one is a hit, on the local index.
        admit(a, "two", two, runs);
        try (CacheLease hit = a.cache().lookup(key("one", one)).orElseThrow()) {
            assertThat(hit.hit()).isTrue();
        }
        assertThat(a.redis().connected()).isFalse();
        assertThat(a.redis().outages()).isEqualTo(1); // many failed calls, one outage (one warning)
        assertThat(a.cache().stats().entries()).isEqualTo(2);
        assertThatThrownBy(() -> a.redis().fleet().hosts()).isInstanceOfSatisfying(ProvisioningException.class,
                e -> assertThat(e.code()).isEqualTo(ErrorCode.BACKEND_FAILURE));
        // A process that starts during the outage opens the shared directory and sees what is on disk.
        Peers.Peer b = open("host-1");
        assertThat(b.redis().connected()).isFalse();
        try (CacheLease hit = b.cache().lookup(key("two", two)).orElseThrow()) {
            assertThat(hit.hit()).isTrue();
        }
        assertThat(a.redis().reconnect()).isFalse(); // still down

        redis.restart(); // empty: no persistence

        assertThat(a.redis().reconnect()).isTrue();
        assertThat(b.redis().reconnect()).isTrue();
        try (RedisClient c = client()) {
            assertThat(c.hkeys("volprov-outage:host:host-1:entries")).containsExactlyInAnyOrder(sha256(one), sha256(two));
            assertThat(c.get("volprov-outage:host:host-1:bytes")).isEqualTo(Long.toString(2L * IMAGE));
        }
        assertThat(a.redis().fleet().hostsHolding(sha256(two))).containsExactly("host-1");
        // Back on Redis: what one process admits is a hit in the other.
        admit(a, "three", three, runs);
        try (CacheLease hit = b.cache().lookup(key("three", three)).orElseThrow()) {
            assertThat(hit.hit()).isTrue();
        }
        assertThat(runs).hasValue(3);
        assertThat(a.redis().outages()).isEqualTo(1);
        assertThat(a.redis().fleet().stats("host-1").entries()).isEqualTo(3);
    }

    @Test
    void leaseTakenDuringTheOutage_isMovedIntoRedisSoNoOtherProcessEvictsIt() throws IOException {
        Peers.Peer a = peers.open("host-1", dir, 2L * IMAGE, c -> c.probeInterval(Duration.ofHours(1)), null, null);
        Peers.Peer b = peers.open("host-1", dir, 2L * IMAGE, c -> c.probeInterval(Duration.ofHours(1)), null, null);
        byte[] x = image(IMAGE, 4);
        byte[] y = image(IMAGE, 5);
        byte[] z = image(IMAGE, 6);
        AtomicInteger runs = new AtomicInteger();
        admit(a, "x", x, runs);
        admit(a, "y", y, runs);
        redis.stop();
        try (CacheLease held = a.cache().lookup(key("x", x)).orElseThrow()) {
            redis.restart();
            assertThat(a.redis().reconnect()).isTrue();
            assertThat(b.redis().reconnect()).isTrue();
            // The budget holds two; x is the oldest but leased (taken while Redis was down): y goes.
            admit(b, "z", z, runs);
            assertThat(Files.readAllBytes(held.path())).isEqualTo(x);
            assertThat(b.cache().lookup(key("y", y))).isEmpty();
        }
    }

    @Test
    void volumeGuard_whenRedisIsDown_guardsInProcessAndTakesTheLockInRedisWhenItReturns() throws IOException {
        Peers.Peer a = open("host-1");
        Peers.Peer b = open("host-1");
        VolumeGuard ga = a.redis().volumeGuard();
        VolumeGuard gb = b.redis().volumeGuard();
        redis.stop();

        VolumeGuard.Lock held = ga.tryLock("vm-7-root").orElseThrow();
        assertThat(ga.tryLock("vm-7-root")).isEmpty();

        redis.restart();
        assertThat(a.redis().reconnect()).isTrue();
        assertThat(b.redis().reconnect()).isTrue();
        assertThat(gb.tryLock("vm-7-root")).isEmpty();
        held.close();
        assertThat(gb.tryLock("vm-7-root")).isPresent().get().satisfies(VolumeGuard.Lock::close);
    }

    @Test
    void create_whenRedisIsDown_startsLocalOnlyAndJoinsWhenItAnswers() throws IOException {
        redis.stop();
        Peers.Peer a = open("host-1");
        assertThat(a.redis().connected()).isFalse();
        byte[] x = image(IMAGE, 7);
        AtomicInteger runs = new AtomicInteger();
        admit(a, "x", x, runs);

        redis.restart();
        assertThat(a.redis().reconnect()).isTrue();
        assertThat(a.redis().fleet().digestsOn("host-1")).containsExactly(sha256(x));
        assertThat(a.redis().fleet().hostsHolding(sha256(x))).containsExactly("host-1");
    }

    @Test
    void handles_whenRedisIsDown_refuseToEvict_andListWithoutTheOtherProcessesLeases() throws IOException {
        Peers.Peer a = open("host-1");
        byte[] x = image(IMAGE, 8);
        AtomicInteger runs = new AtomicInteger();
        admit(a, "x", x, runs);
        redis.stop();

        // The other processes' leases cannot be seen: nothing is removed that one of them may read.
        assertThat(a.cache().evict(sha256(x))).isEqualTo(CacheEviction.LEASED);
        assertThat(a.cache().list()).singleElement().satisfies(e -> {
            assertThat(e.sha256()).isEqualTo(sha256(x));
            assertThat(e.leasesElsewhere()).isEmpty();
        });
        assertThat(a.cache().verifyAll(Cancellation.none()).ok()).containsExactly(sha256(x));

        redis.restart(); // empty: the index is rebuilt from the directory, last use from the files
        assertThat(a.redis().reconnect()).isTrue();
        assertThat(a.cache().list()).singleElement().satisfies(e -> assertThat(e.lastUsed().toEpochMilli())
                .isEqualTo(Files.getLastModifiedTime(dir.resolve(sha256(x))).toMillis()));
        assertThat(a.cache().evict(sha256(x))).isEqualTo(CacheEviction.EVICTED);
    }
}
