package org.volprov.redis;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.volprov.redis.Peers.image;
import static org.volprov.redis.Peers.key;
import static org.volprov.redis.Peers.sha256;
import static org.volprov.redis.Peers.write;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Stream;
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
 * Several processes of one host (and hosts of a fleet) on one Redis. Each "process" is a
 * coordination and a cache of its own in this JVM; those of one host share a directory.
 */
class RedisSharedCacheIT {
    private static final int IMAGE = 256 * 1024;
    private static RedisTestServer server;

    @TempDir
    Path dir;

    private final String prefix = RedisTestServer.uniquePrefix("shared");
    private Peers peers;
    private final ExecutorService pool = Executors.newCachedThreadPool();
    private final List<ScheduledExecutorService> schedulers = new ArrayList<>();

    @BeforeAll
    static void server() {
        server = RedisTestServer.shared();
    }

    @AfterEach
    void cleanUp() {
        pool.shutdownNow();
        if (peers != null) {
            peers.close();
        }
        schedulers.forEach(ScheduledExecutorService::shutdownNow);
        server.deleteKeys(prefix);
    }

    private Peers peers() {
        if (peers == null) {
            peers = new Peers(server.uri(), prefix);
        }
        return peers;
    }

    private ScheduledExecutorService scheduler() {
        ScheduledExecutorService s = Executors.newSingleThreadScheduledExecutor();
        schedulers.add(s);
        return s;
    }

    private static ImageFiller counting(byte[] content, AtomicInteger runs) {
        return sink -> {
            runs.incrementAndGet();
            write(sink, content, (int) sink.position(), content.length);
        };
    }

    private static byte[] read(CacheLease lease) {
        try {
            return Files.readAllBytes(lease.path());
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    private static void awaitBlocked(Thread t) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (t.getState() != Thread.State.WAITING && t.getState() != Thread.State.TIMED_WAITING) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError(t.getName() + " never waited; state " + t.getState());
            }
            Thread.onSpinWait();
        }
    }

    private static void await(CountDownLatch latch) throws IOException {
        try {
            if (!latch.await(30, TimeUnit.SECONDS)) {
                throw new IOException("the test never released the filler");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException(e);
        }
    }

    @Test
    void admit_whenEightRequestsInTwoProcessesAskForOneImage_downloadsItOnce() throws Exception {
        Peers.Peer a = peers().open("host-1", dir, 10L * IMAGE);
        Peers.Peer b = peers().open("host-1", dir, 10L * IMAGE);
        byte[] img = image(IMAGE, 1);
        CacheKey key = key("burst.qcow2", img);
        AtomicInteger runs = new AtomicInteger();
        AtomicReference<Thread> downloader = new AtomicReference<>();
        CountDownLatch filling = new CountDownLatch(1);
        CountDownLatch finish = new CountDownLatch(1);
        ImageFiller filler = sink -> {
            runs.incrementAndGet();
            downloader.set(Thread.currentThread());
            write(sink, img, 0, IMAGE / 2);
            filling.countDown();
            await(finish);
            write(sink, img, IMAGE / 2, IMAGE);
        };
        CyclicBarrier start = new CyclicBarrier(8);
        List<Thread> threads = new ArrayList<>();
        List<Object> results = java.util.Collections.synchronizedList(new ArrayList<>());
        for (int i = 0; i < 8; i++) {
            Peers.Peer p = i % 2 == 0 ? a : b;
            Thread t = new Thread(() -> {
                try {
                    start.await(10, TimeUnit.SECONDS);
                    try (CacheLease lease = p.cache().admit(key, filler, Cancellation.none())) {
                        results.add(lease.hit() ? "hit" : read(lease));
                        assertThat(read(lease)).isEqualTo(img);
                    }
                } catch (Throwable e) {
                    results.add(e);
                }
            }, "request-" + i);
            threads.add(t);
            t.start();
        }
        assertThat(filling.await(30, TimeUnit.SECONDS)).isTrue();
        // Hold the download until every other request waits: in its process's flight, or on the lock.
        for (Thread t : threads) {
            if (t != downloader.get()) {
                awaitBlocked(t);
            }
        }
        finish.countDown();
        for (Thread t : threads) {
            t.join(30_000);
        }

        assertThat(runs).hasValue(1);
        assertThat(results).hasSize(8).filteredOn("hit"::equals).hasSize(7);
        assertThat(a.cache().stats().misses() + b.cache().stats().misses()).isEqualTo(1);
        assertThat(a.cache().stats().hits() + b.cache().stats().hits()).isEqualTo(7);
        SharedCacheStats shared = a.redis().fleet().stats("host-1");
        assertThat(shared.misses()).isEqualTo(1);
        assertThat(shared.admissions()).isEqualTo(1);
        assertThat(shared.entries()).isEqualTo(1);
        assertThat(shared.bytesInUse()).isEqualTo(IMAGE);
    }

    @Test
    void admit_inOneProcess_isAHitInTheOtherAndBothSeeOneBudget() {
        Peers.Peer a = peers().open("host-1", dir, 2L * IMAGE);
        Peers.Peer b = peers().open("host-1", dir, 2L * IMAGE);
        byte[] x = image(IMAGE, 2);
        byte[] y = image(IMAGE, 3);
        byte[] z = image(IMAGE, 4);
        AtomicInteger runs = new AtomicInteger();
        try (CacheLease heldByA = a.cache().admit(key("x", x), counting(x, runs), Cancellation.none())) {
            try (CacheLease inB = b.cache().lookup(key("x", x)).orElseThrow()) {
                assertThat(inB.hit()).isTrue();
                assertThat(read(inB)).isEqualTo(x);
            }
            b.cache().admit(key("y", y), counting(y, runs), Cancellation.none()).close();
            // The budget holds two: z needs room, x is older but leased by the other process, so y goes.
            b.cache().admit(key("z", z), counting(z, runs), Cancellation.none()).close();

            assertThat(a.cache().lookup(key("y", y))).isEmpty();
            assertThat(Files.exists(dir.resolve(sha256(y)))).isFalse();
            assertThat(read(heldByA)).isEqualTo(x);
        }
        assertThat(runs).hasValue(3);
        assertThat(a.cache().stats().entries()).isEqualTo(2);
        assertThat(a.cache().stats().bytesInUse()).isEqualTo(2L * IMAGE);
        assertThat(b.cache().stats().evictions()).isEqualTo(1);
    }

    @Test
    void lease_ofAProcessThatStoppedRenewing_expiresAndItsEntryCanBeEvicted() {
        SettableClock clock = new SettableClock();
        ScheduledExecutorService aTimer = scheduler();
        Peers.Peer a = peers().open("host-1", dir, IMAGE, c -> c, clock, aTimer);
        Peers.Peer b = peers().open("host-1", dir, IMAGE, c -> c, clock, null);
        byte[] x = image(IMAGE, 5);
        byte[] y = image(IMAGE, 6);
        AtomicInteger runs = new AtomicInteger();
        CacheLease never = a.cache().admit(key("x", x), counting(x, runs), Cancellation.none());
        aTimer.shutdownNow(); // the process "dies": its lease is neither renewed nor released

        assertThatThrownBy(() -> b.cache().admit(key("y", y), counting(y, runs), Cancellation.none()))
                .isInstanceOfSatisfying(ProvisioningException.class,
                        e -> assertThat(e.code()).isEqualTo(ErrorCode.INSUFFICIENT_SPACE));

        clock.advance(a.redis().config().leaseTime().plusSeconds(1));
        try (CacheLease lease = b.cache().admit(key("y", y), counting(y, runs), Cancellation.none())) {
            assertThat(read(lease)).isEqualTo(y);
        }
        assertThat(b.cache().lookup(key("x", x))).isEmpty();
        assertThat(runs).hasValue(2);
        assertThat(never.path()).doesNotExist();
    }

    @Test
    void fillLock_ofAProcessThatStoppedRenewing_expiresAndAnotherProcessDownloads() throws Exception {
        ScheduledExecutorService aTimer = scheduler();
        Peers.Peer a = peers().open("host-1", dir, 10L * IMAGE, c -> c.leaseTime(Duration.ofSeconds(1)), null, aTimer);
        Peers.Peer b = peers().open("host-1", dir, 10L * IMAGE, c -> c.leaseTime(Duration.ofSeconds(1)), null, null);
        byte[] img = image(IMAGE, 7);
        CacheKey key = key("crash.qcow2", img);
        CountDownLatch filling = new CountDownLatch(1);
        CountDownLatch crashed = new CountDownLatch(1);
        Future<?> dying = pool.submit(() -> a.cache().admit(key, sink -> {
            write(sink, img, 0, IMAGE / 2);
            filling.countDown();
            await(crashed);
            throw new IOException("the process is gone");
        }, Cancellation.none()));
        assertThat(filling.await(30, TimeUnit.SECONDS)).isTrue();
        aTimer.shutdownNow(); // stops renewing the lock, as a process that died would

        AtomicInteger runs = new AtomicInteger();
        try (CacheLease lease = b.cache().admit(key, counting(img, runs), Cancellation.none())) {
            assertThat(lease.hit()).isFalse();
            assertThat(read(lease)).isEqualTo(img);
        }
        assertThat(runs).hasValue(1);
        assertThat(server.client().exists(a.redis().keys().fill(sha256(img)))).isFalse();

        crashed.countDown();
        assertThatThrownBy(() -> dying.get(30, TimeUnit.SECONDS)).hasCauseInstanceOf(ProvisioningException.class);
    }

    @Test
    void open_whileAnotherProcessDownloads_keepsItsTempFile() throws Exception {
        Peers.Peer a = peers().open("host-1", dir, 10L * IMAGE);
        byte[] img = image(IMAGE, 8);
        CountDownLatch filling = new CountDownLatch(1);
        CountDownLatch resume = new CountDownLatch(1);
        Future<CacheLease> download = pool.submit(() -> a.cache().admit(key("slow", img), sink -> {
            write(sink, img, 0, IMAGE / 2);
            filling.countDown();
            await(resume);
            write(sink, img, IMAGE / 2, IMAGE);
        }, Cancellation.none()));
        assertThat(filling.await(30, TimeUnit.SECONDS)).isTrue();

        Peers.Peer b = peers().open("host-1", dir, 10L * IMAGE);
        try (Stream<Path> s = Files.list(dir)) {
            assertThat(s.map(p -> p.getFileName().toString())).anyMatch(n -> n.endsWith(".tmp"));
        }
        resume.countDown();
        try (CacheLease lease = download.get(30, TimeUnit.SECONDS)) {
            assertThat(read(lease)).isEqualTo(img);
        }
        assertThat(b.cache().lookup(key("slow", img))).isPresent().get().satisfies(CacheLease::close);
    }

    @Test
    void fleet_listsTheLiveHostsHoldingEachImage(@TempDir Path otherHostDir) {
        Peers.Peer h1 = peers().open("host-1", dir, 10L * IMAGE);
        Peers.Peer h2 = peers().open("host-2", otherHostDir, 10L * IMAGE);
        byte[] x = image(IMAGE, 9);
        byte[] y = image(IMAGE, 10);
        AtomicInteger runs = new AtomicInteger();
        h1.cache().admit(key("x", x), counting(x, runs), Cancellation.none()).close();
        h1.cache().admit(key("y", y), counting(y, runs), Cancellation.none()).close();
        h2.cache().admit(key("x", x), counting(x, runs), Cancellation.none()).close();

        RedisFleetView fleet = h1.redis().fleet();
        assertThat(runs).hasValue(3); // each host has a copy of its own
        assertThat(fleet.hostsHolding(sha256(x))).containsExactly("host-1", "host-2");
        assertThat(fleet.hostsHolding(sha256(y))).containsExactly("host-1");
        assertThat(fleet.digestsOn("host-2")).containsExactly(sha256(x));
        assertThat(fleet.hosts()).containsExactly("host-1", "host-2");
        assertThat(fleet.stats("host-1")).satisfies(s -> {
            assertThat(s.alive()).isTrue();
            assertThat(s.admissions()).isEqualTo(2);
            assertThat(s.entries()).isEqualTo(2);
            assertThat(s.bytesInUse()).isEqualTo(2L * IMAGE);
        });
        assertThatThrownBy(() -> fleet.hostsHolding("not-a-digest")).isInstanceOf(IllegalArgumentException.class);

        // A host that stops is no longer offered once its heartbeat expires.
        server.client().del(h2.redis().keys().alive("host-2"));
        assertThat(fleet.hostsHolding(sha256(x))).containsExactly("host-1");
    }

    @Test
    void volumeGuard_acrossTwoProcesses_letsOneJobWriteAVolumeAtATime() {
        Peers.Peer a = peers().open("host-1", dir, IMAGE);
        Peers.Peer b = peers().open("host-1", dir, IMAGE);
        VolumeGuard ga = a.redis().volumeGuard();
        VolumeGuard gb = b.redis().volumeGuard();

        VolumeGuard.Lock held = ga.tryLock("vm-1-root").orElseThrow();
        assertThat(ga.tryLock("vm-1-root")).isEmpty();
        assertThat(gb.tryLock("vm-1-root")).isEmpty();
        VolumeGuard.Lock other = gb.tryLock("vm-2-root").orElseThrow();

        held.close();
        held.close(); // idempotent
        VolumeGuard.Lock now = gb.tryLock("vm-1-root").orElseThrow();
        assertThat(ga.tryLock("vm-1-root")).isEmpty();
        now.close();
        other.close();
        assertThat(ga.tryLock("vm-1-root")).isPresent().get().satisfies(VolumeGuard.Lock::close);
    }

    @Test
    void volumeGuard_onAnotherHost_isIndependent(@TempDir Path otherHostDir) {
        Peers.Peer h1 = peers().open("host-1", dir, IMAGE);
        Peers.Peer h2 = peers().open("host-2", otherHostDir, IMAGE);
        try (VolumeGuard.Lock one = h1.redis().volumeGuard().tryLock("vm-1-root").orElseThrow();
                VolumeGuard.Lock two = h2.redis().volumeGuard().tryLock("vm-1-root").orElseThrow()) {
            assertThat(one).isNotSameAs(two);
        }
    }

    @Test
    void secondCacheOnOneCoordination_isRefused(@TempDir Path otherDir) {
        Peers.Peer a = peers().open("host-1", dir, IMAGE);
        assertThatThrownBy(() -> a.redis().cache().directory(otherDir).maxBytes(IMAGE).build())
                .isInstanceOf(IllegalStateException.class).hasMessageContaining("open cache");
    }
}
