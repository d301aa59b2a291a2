package org.volprov.redis;

import static org.assertj.core.api.Assertions.assertThat;
import static org.volprov.contract.ImageCacheContract.damage;
import static org.volprov.redis.Peers.image;
import static org.volprov.redis.Peers.key;
import static org.volprov.redis.Peers.sha256;
import static org.volprov.redis.Peers.write;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.volprov.Cancellation;
import org.volprov.cache.CacheEviction;
import org.volprov.cache.CacheLease;
import org.volprov.cache.CacheVerification;
import org.volprov.cache.CachedImage;
import org.volprov.cache.ImageFiller;
import org.volprov.redis.testkit.RedisTestServer;

/**
 * The operator's handles (list, evict, re-verify) with two processes of one host on one directory
 * and one Redis: what one process may remove while the other reads or downloads the same image.
 */
class RedisCacheHandlesIT {
    private static final int IMAGE = 256 * 1024;
    private static RedisTestServer server;

    @TempDir
    Path dir;

    private final String prefix = RedisTestServer.uniquePrefix("handles");
    private final ExecutorService pool = Executors.newCachedThreadPool();
    private Peers peers;

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
        server.deleteKeys(prefix);
    }

    private Peers.Peer open() {
        if (peers == null) {
            peers = new Peers(server.uri(), prefix);
        }
        return peers.open("host-1", dir, 10L * IMAGE);
    }

    private static ImageFiller filler(byte[] content) {
        return sink -> write(sink, content, (int) sink.position(), content.length);
    }

    private static byte[] read(CacheLease lease) throws IOException {
        return Files.readAllBytes(lease.path());
    }

    @Test
    void list_inEitherProcess_tellsItsOwnLeasesFromTheOthers() {
        Peers.Peer a = open();
        Peers.Peer b = open();
        byte[] x = image(IMAGE, 301);
        try (CacheLease held = a.cache().admit(key("x", x), filler(x), Cancellation.none())) {
            CachedImage inA = a.cache().list().get(0);
            CachedImage inB = b.cache().list().get(0);

            assertThat(inA.sha256()).isEqualTo(sha256(x));
            assertThat(inA.sources()).containsExactly(key("x", x).identity());
            assertThat(inA.leases()).isEqualTo(1);
            assertThat(inA.leasesElsewhere()).hasValue(0);
            assertThat(inB.sha256()).isEqualTo(sha256(x));
            assertThat(inB.size()).isEqualTo(IMAGE);
            assertThat(inB.leases()).isZero();
            assertThat(inB.leasesElsewhere()).hasValue(1);
            assertThat(inB.leased()).isTrue();
        }
        assertThat(b.cache().list().get(0).leasesElsewhere()).hasValue(0);
    }

    @Test
    void evict_ofAnEntryTheOtherProcessHolds_isRefused_andItsReaderKeepsTheFile() throws IOException {
        Peers.Peer a = open();
        Peers.Peer b = open();
        byte[] x = image(IMAGE, 302);
        CacheLease held = a.cache().admit(key("x", x), filler(x), Cancellation.none());

        assertThat(b.cache().evict(sha256(x))).isEqualTo(CacheEviction.LEASED);

        assertThat(read(held)).isEqualTo(x);
        held.close();
        assertThat(b.cache().evict(sha256(x))).isEqualTo(CacheEviction.EVICTED);
        assertThat(dir.resolve(sha256(x))).doesNotExist();
        assertThat(a.cache().lookup(key("x", x))).isEmpty();
        assertThat(a.cache().list()).isEmpty();
    }

    @Test
    void evict_whileTheOtherProcessDownloadsTheSameImage_isRefusedAsBeingFilled() throws Exception {
        Peers.Peer a = open();
        Peers.Peer b = open();
        byte[] x = image(IMAGE, 303);
        CountDownLatch started = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        Future<CacheLease> download = pool.submit(() -> a.cache().admit(key("x", x), sink -> {
            write(sink, x, 0, IMAGE / 2);
            started.countDown();
            try {
                release.await(30, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException(e);
            }
            write(sink, x, IMAGE / 2, IMAGE);
        }, Cancellation.none()));
        assertThat(started.await(30, TimeUnit.SECONDS)).isTrue();

        assertThat(b.cache().evict(sha256(x))).isEqualTo(CacheEviction.BEING_FILLED);

        release.countDown();
        try (CacheLease lease = download.get(30, TimeUnit.SECONDS)) {
            assertThat(read(lease)).isEqualTo(x);
            assertThat(b.cache().evict(sha256(x))).isEqualTo(CacheEviction.LEASED);
        }
        assertThat(b.cache().evict(sha256(x))).isEqualTo(CacheEviction.EVICTED);
    }

    @Test
    void verify_ofADamagedEntryTheOtherProcessHolds_keepsItForTheReader_andDropsItOnceUnheld() throws IOException {
        Peers.Peer a = open();
        Peers.Peer b = open();
        byte[] x = image(IMAGE, 304);
        byte[] y = image(IMAGE, 305);
        b.cache().admit(key("y", y), filler(y), Cancellation.none()).close();
        CacheLease held = a.cache().admit(key("x", x), filler(x), Cancellation.none());
        damage(held.path());

        CacheVerification first = b.cache().verifyAll(Cancellation.none());

        assertThat(first.ok()).containsExactly(sha256(y));
        assertThat(first.dropped()).singleElement().satisfies(r -> {
            assertThat(r.sha256()).isEqualTo(sha256(x));
            assertThat(r.outcome()).isEqualTo(CacheVerification.Outcome.DROP_PENDING);
        });
        assertThat(held.path()).exists();
        assertThat(read(held)).hasSize(IMAGE);
        held.close();

        CacheVerification second = b.cache().verify(sha256(x), Cancellation.none());

        assertThat(second.results()).extracting(CacheVerification.Result::outcome)
                .containsExactly(CacheVerification.Outcome.DROPPED);
        assertThat(dir.resolve(sha256(x))).doesNotExist();
        assertThat(a.cache().lookup(key("x", x))).isEmpty();
        // Downloaded again, it is a sound entry: closing a lease on it in b must not drop it.
        try (CacheLease again = b.cache().admit(key("x", x), filler(x), Cancellation.none())) {
            assertThat(read(again)).isEqualTo(x);
        }
        assertThat(a.cache().list()).extracting(CachedImage::sha256).contains(sha256(x));
    }

    @Test
    void verify_inOneProcess_leavesTheUseOrderThatBothProcessesSee() {
        Peers.Peer a = open();
        Peers.Peer b = open();
        byte[] x = image(IMAGE, 306);
        byte[] y = image(IMAGE, 307);
        a.cache().admit(key("x", x), filler(x), Cancellation.none()).close();
        a.cache().admit(key("y", y), filler(y), Cancellation.none()).close();
        var before = a.cache().list();

        assertThat(b.cache().verify(sha256(x), Cancellation.none()).ok()).containsExactly(sha256(x));

        assertThat(a.cache().list()).isEqualTo(before);
        assertThat(a.cache().list()).extracting(CachedImage::sha256).containsExactly(sha256(x), sha256(y));
    }
}
