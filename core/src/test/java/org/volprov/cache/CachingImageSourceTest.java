package org.volprov.cache;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.security.MessageDigest;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.volprov.Cancellation;
import org.volprov.ErrorCode;
import org.volprov.ImageRef;
import org.volprov.ProvisioningException;
import org.volprov.source.ImageSource;
import org.volprov.source.LocalDirectoryImageSource;
import org.volprov.source.ObjectInfo;
import org.volprov.testing.SettableClock;

class CachingImageSourceTest {
    @TempDir
    Path root;
    @TempDir
    Path cacheDir;

    private final SettableClock clock = new SettableClock();
    private CountingImageSource counting;
    private CachingImageSource source;
    private ImageCache cache;
    private final ImageRef ref = new ImageRef("images", "ubuntu/24.04.qcow2");
    private byte[] content;

    @BeforeEach
    void setUp() throws IOException {
        content = new byte[300_000];
        new Random(1).nextBytes(content);
        put(ref.key(), content);
        counting = new CountingImageSource(new LocalDirectoryImageSource(root));
        source = CachingImageSource.builder(counting).clock(clock).build();
        cache = DiskImageCache.builder().directory(cacheDir).maxBytes(10L << 20).build();
    }

    @AfterEach
    void tearDown() {
        cache.close();
        source.close();
    }

    private void put(String key, byte[] bytes) throws IOException {
        Path p = root.resolve("images").resolve(key);
        Files.createDirectories(p.getParent());
        Files.write(p, bytes);
    }

    private static String sha256(byte[] b) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
    }

    /** What the engine does for one request: stat, checksum, lookup, and on a miss a download. */
    private CacheLease request(ImageSource src) {
        ObjectInfo info = src.stat(ref);
        CacheKey key = new CacheKey(ref, info.etag(), info.size(), src.publishedChecksum(ref));
        return cache.lookup(key).orElseGet(() -> cache.admit(key, download(src, key), Cancellation.none()));
    }

    private static ImageFiller download(ImageSource src, CacheKey key) {
        return sink -> {
            try (InputStream in = src.open(key.ref(), key.etag(), sink.position(), sink.size() - sink.position())) {
                byte[] buf = new byte[64 * 1024];
                int n;
                while ((n = in.read(buf)) > 0) {
                    sink.write(ByteBuffer.wrap(buf, 0, n));
                }
            }
        };
    }

    @Test
    void thousandRequests_forCachedImage_makeNoSourceCalls() throws Exception {
        Files.writeString(root.resolve("images").resolve(ref.key() + ".sha256"), sha256(content) + "\n");
        try (CacheLease first = request(source)) {
            assertThat(first.hit()).isFalse();
        }
        int afterFirst = counting.total();
        assertThat(afterFirst).isEqualTo(3); // stat, checksum, one ranged read

        for (int i = 0; i < 1000; i++) {
            try (CacheLease lease = request(source)) {
                assertThat(lease.hit()).isTrue();
            }
        }
        assertThat(counting.total()).isEqualTo(afterFirst);
        assertThat(cache.stats().hits()).isEqualTo(1000);
    }

    @Test
    void withoutTheDecorator_eachRequestReachesTheSource() throws Exception {
        // The control for the test above: the counting source does count.
        for (int i = 0; i < 10; i++) {
            request(counting).close();
        }
        assertThat(counting.stats).hasValue(10);
        assertThat(counting.checksums).hasValue(10);
        assertThat(counting.opens).hasValue(1); // no published checksum: the identity alias makes the hits
    }

    @Test
    void stat_afterTtl_asksAgainButChecksumOfSameEtagIsReused() {
        source.publishedChecksum(ref);
        clock.advance(Duration.ofSeconds(3));
        source.publishedChecksum(ref);
        assertThat(counting.stats).hasValue(2);
        assertThat(counting.checksums).hasValue(1);

        clock.advance(Duration.ofSeconds(61));
        source.publishedChecksum(ref);
        assertThat(counting.checksums).hasValue(2);
    }

    @Test
    void checksum_whenObjectIsReplaced_isFetchedForTheNewEtag() throws Exception {
        Path sibling = root.resolve("images").resolve(ref.key() + ".sha256");
        Files.writeString(sibling, sha256(content) + "  24.04.qcow2\n");
        assertThat(source.publishedChecksum(ref)).contains(sha256(content));

        byte[] replaced = new byte[1000];
        put(ref.key(), replaced);
        Files.setLastModifiedTime(root.resolve("images").resolve(ref.key()), FileTime.from(Instant.now().plusSeconds(5)));
        Files.writeString(sibling, sha256(replaced) + " *24.04.qcow2\n");
        clock.advance(Duration.ofSeconds(3)); // the stat answer expires; the checksum TTL has not

        assertThat(source.stat(ref).size()).isEqualTo(1000);
        assertThat(source.publishedChecksum(ref)).contains(sha256(replaced));
    }

    @Test
    void failures_areNotRemembered() {
        ImageRef missing = new ImageRef("images", "missing.qcow2");
        for (int i = 0; i < 2; i++) {
            assertThatThrownBy(() -> source.stat(missing)).isInstanceOfSatisfying(ProvisioningException.class,
                    e -> assertThat(e.code()).isEqualTo(ErrorCode.IMAGE_NOT_FOUND));
        }
        assertThat(counting.stats).hasValue(2);
    }

    @Test
    void burstOfConcurrentStats_makesOneSourceCall() throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(16);
        try {
            CyclicBarrier start = new CyclicBarrier(16);
            List<Future<ObjectInfo>> results = new ArrayList<>();
            for (int i = 0; i < 16; i++) {
                results.add(pool.submit(() -> {
                    start.await(10, TimeUnit.SECONDS);
                    return source.stat(ref);
                }));
            }
            for (Future<ObjectInfo> f : results) {
                assertThat(f.get(10, TimeUnit.SECONDS).size()).isEqualTo(content.length);
            }
        } finally {
            pool.shutdownNow();
        }
        assertThat(counting.stats).hasValue(1);
    }

    @Test
    void open_whenTheObjectChanged_forgetsTheRememberedStat_soTheNextOneIsFresh() throws Exception {
        String first = source.stat(ref).etag();
        byte[] next = new byte[content.length + 1];
        new Random(2).nextBytes(next);
        put(ref.key(), next);
        assertThat(source.stat(ref).etag()).as("remembered for its time to live").isEqualTo(first);

        assertThatThrownBy(() -> source.open(ref, first, 0, 10).readAllBytes())
                .isInstanceOfSatisfying(ProvisioningException.class,
                        e -> assertThat(e.code()).isEqualTo(ErrorCode.IMAGE_CHANGED));
        ObjectInfo fresh = source.stat(ref);
        assertThat(fresh.etag()).isNotEqualTo(first);
        assertThat(fresh.size()).isEqualTo(next.length);
        assertThat(counting.stats).hasValue(2);
    }

    @Test
    void open_goesToTheDelegateEveryTime() throws IOException {
        for (int i = 0; i < 3; i++) {
            try (InputStream in = source.open(ref, source.stat(ref).etag(), 10, 5)) {
                assertThat(in.readAllBytes()).hasSize(5);
            }
        }
        assertThat(counting.opens).hasValue(3);
    }

    @Test
    void builder_rejectsBadOptionsNamingThem() {
        assertThatThrownBy(() -> CachingImageSource.builder(counting).statTtl(Duration.ZERO))
                .hasMessageContaining("statTtl");
        assertThatThrownBy(() -> CachingImageSource.builder(counting).checksumTtl(Duration.ofSeconds(-1)))
                .hasMessageContaining("checksumTtl");
        assertThatThrownBy(() -> CachingImageSource.builder(counting).maxRefs(0)).hasMessageContaining("maxRefs");
        assertThatThrownBy(() -> CachingImageSource.builder(null)).hasMessageContaining("delegate");
    }

    // ---------------------------------------------------------------- published checksum formats end to end

    @Test
    void admit_acceptsBareAndSha256sumChecksumFiles() throws Exception {
        String[] formats = {sha256(content) + "\n", sha256(content).toUpperCase() + "  24.04.qcow2\n",
            sha256(content) + " *24.04.qcow2"};
        for (String sibling : formats) {
            Files.writeString(root.resolve("images").resolve(ref.key() + ".sha256"), sibling, StandardCharsets.UTF_8);
            Optional<String> digest = counting.publishedChecksum(ref);
            assertThat(digest).as(sibling).contains(sha256(content));
        }
        try (CacheLease lease = request(counting)) {
            assertThat(Files.readAllBytes(lease.path())).isEqualTo(content);
        }
    }

    @Test
    void admit_whenChecksumFileNamesOtherContent_throwsChecksumMismatch() throws Exception {
        byte[] other = new byte[10];
        Files.writeString(root.resolve("images").resolve(ref.key() + ".sha256"), sha256(other) + "  24.04.qcow2\n");
        assertThatThrownBy(() -> request(counting)).isInstanceOfSatisfying(ProvisioningException.class,
                e -> assertThat(e.code()).isEqualTo(ErrorCode.CHECKSUM_MISMATCH));
        assertThat(cache.stats().entries()).isZero();
        try (var s = Files.list(cacheDir)) {
            assertThat(s.map(p -> p.getFileName().toString())).containsExactly("lock");
        }
    }

    @Test
    void admit_whenCompressedQcow2_storesItAsDownloaded() throws Exception {
        Path img = root.resolve("images").resolve("small.qcow2");
        Path raw = root.resolve("raw.img");
        Files.write(raw, new byte[1 << 20]);
        Process p = new ProcessBuilder("qemu-img", "convert", "-c", "-O", "qcow2", raw.toString(), img.toString())
                .redirectErrorStream(true).start();
        assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
        assertThat(p.exitValue()).as(new String(p.getInputStream().readAllBytes())).isZero();
        byte[] qcow2 = Files.readAllBytes(img);
        ImageRef q = new ImageRef("images", "small.qcow2");
        ObjectInfo info = counting.stat(q);
        CacheKey key = new CacheKey(q, info.etag(), info.size(), Optional.of(sha256(qcow2)));
        try (CacheLease lease = cache.admit(key, download(counting, key), Cancellation.none())) {
            assertThat(Files.readAllBytes(lease.path())).isEqualTo(qcow2);
            assertThat(lease.size()).isLessThan(1 << 20);
        }
    }
}
