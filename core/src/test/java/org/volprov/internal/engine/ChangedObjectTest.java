package org.volprov.internal.engine;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.volprov.ErrorCode;
import org.volprov.ImageRef;
import org.volprov.Job;
import org.volprov.JobState;
import org.volprov.ProvisionRequest;
import org.volprov.Provisioner;
import org.volprov.Stage;
import org.volprov.cache.CacheKey;
import org.volprov.cache.DiskImageCache;
import org.volprov.image.ImageFormat;
import org.volprov.source.ImageSource;
import org.volprov.source.LocalDirectoryImageSource;
import org.volprov.source.ObjectInfo;
import org.volprov.testing.ForwardingImageSource;
import org.volprov.testing.TestImages;
import org.volprov.volume.FileVolumeBackend;

/**
 * An object rewritten while the engine downloads it, with no checksum published: the job starts over
 * from a fresh stat and ends with exactly the new version, or fails with IMAGE_CHANGED when the
 * object keeps changing, and the cache never holds bytes of two versions. The cache directory is
 * checked by hashing its files, not by asking the cache.
 */
class ChangedObjectTest {
    private static final int SIZE = 6 << 20;
    private static final long VOLUME = 8L << 20;
    private static final Duration WAIT = Duration.ofSeconds(60);

    @TempDir
    Path root;
    @TempDir
    Path work;
    private Path file;
    private byte[] v1;
    private byte[] v2;
    private DiskImageCache cache;
    private FileVolumeBackend backend;
    private final List<Provisioner> engines = new ArrayList<>();

    @BeforeEach
    void setUp() throws IOException {
        v1 = random(SIZE, 1);
        v2 = random(SIZE + 4096, 2); // another size too: the local source's version sees it at once
        file = Files.createDirectories(root.resolve("images")).resolve("changing.raw");
        Files.write(file, v1);
        cache = DiskImageCache.builder().directory(work.resolve("cache")).maxBytes(1L << 30).build();
        backend = FileVolumeBackend.open(work.resolve("volumes"));
    }

    @AfterEach
    void tearDown() {
        engines.forEach(Provisioner::close);
        cache.close();
    }

    private Provisioner start(ImageSource source, int parallelism) {
        Provisioner.Builder b = Provisioner.builder().source(source).cache(cache).backend(backend)
                .workDirectory(work).maxConcurrentJobs(2);
        if (parallelism > 1) {
            b.parallelDownload(parallelism, 1 << 20);
        }
        Provisioner p = b.build();
        engines.add(p);
        return p;
    }

    private static ProvisionRequest request(String volume) {
        return ProvisionRequest.builder().imageUri("s3://images/changing.raw").volumeName(volume)
                .volumeSizeBytes(VOLUME).format(ImageFormat.RAW).build();
    }

    @ParameterizedTest(name = "parallelism {0}")
    @ValueSource(ints = {1, 3})
    void objectRewrittenMidDownload_restartsFromAFreshStat_andEndsWithExactlyTheNewVersion(int parallelism)
            throws Exception {
        RewritingSource source = new RewritingSource(new LocalDirectoryImageSource(root), file, 1, v2);
        Provisioner p = start(source, parallelism);
        Job job = p.await(p.submit(request("vm-new")), WAIT);

        assertThat(job.state()).as("%s %s", job.errorCode(), job.errorMessage()).isEqualTo(JobState.COMPLETED);
        assertThat(source.rewrites).hasValue(1);
        assertThat(source.statEtags).as("a fresh stat after the change").hasSize(2).doesNotHaveDuplicates();
        assertThat(job.imageDigest()).isEqualTo(sha256(v2));
        Path volume = work.resolve("volumes/vm-new");
        assertThat(TestImages.sha256(volume, v2.length)).isEqualTo(sha256(v2));
        assertThat(TestImages.zerosBetween(volume, v2.length, VOLUME)).isTrue();
        assertThat(cacheEntriesCheckedByHashing()).containsExactly(sha256(v2));
        // The first version's identity leads nowhere: a request for it is a miss, not mixed bytes.
        CacheKey first = new CacheKey(new ImageRef("images", "changing.raw"), source.statEtags.get(0), v1.length,
                Optional.empty());
        assertThat(cache.lookup(first)).isEmpty();
    }

    @Test
    void objectThatKeepsChanging_failsWithImageChanged_afterBoundedRestarts_andKeepsNothing() throws Exception {
        RewritingSource source = new RewritingSource(new LocalDirectoryImageSource(root), file, Integer.MAX_VALUE, v2, v1);
        Provisioner p = start(source, 1);
        Job job = p.await(p.submit(request("vm-never")), WAIT);

        assertThat(job.state()).isEqualTo(JobState.FAILED);
        assertThat(job.errorCode()).isEqualTo(ErrorCode.IMAGE_CHANGED);
        assertThat(job.errorMessage()).contains("kept changing", "4 downloads", "atomically");
        assertThat(source.statEtags).as("the first stat and one per restart").hasSize(1 + ImageFetch.MAX_IMAGE_RESTARTS);
        assertThat(cacheEntriesCheckedByHashing()).isEmpty();
        assertThat(cacheFiles()).as("nothing but the lock file").containsExactly("lock");
        assertThat(backend.find("vm-never")).isEmpty();
    }

    @Test
    void jobWaitingOnTheFlightOfADownloadThatFoundTheObjectChanged_restartsItselfAndCompletes() throws Exception {
        CountDownLatch firstRead = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        AtomicInteger opens = new AtomicInteger();
        ImageSource gated = new ForwardingImageSource(new LocalDirectoryImageSource(root)) {
            @Override
            public InputStream open(ImageRef ref, String etag, long offset, long length) {
                InputStream in = super.open(ref, etag, offset, length);
                if (opens.incrementAndGet() > 1) {
                    return in;
                }
                return new FilterInputStream(in) {
                    @Override
                    public int read(byte[] b, int off, int len) throws IOException {
                        firstRead.countDown();
                        try {
                            release.await(30, TimeUnit.SECONDS);
                        } catch (InterruptedException e) {
                            Thread.currentThread().interrupt();
                        }
                        return super.read(b, off, len);
                    }
                };
            }
        };
        CountDownLatch bDownloading = new CountDownLatch(1);
        Provisioner p = start(gated, 1);
        p.addListener(e -> {
            if (e.job().request().volumeName().equals("vm-b") && e.job().stage() == Stage.DOWNLOADING) {
                bDownloading.countDown();
            }
        });
        String a = p.submit(request("vm-a"));
        assertThat(firstRead.await(30, TimeUnit.SECONDS)).isTrue();
        String b = p.submit(request("vm-b"));
        // b now waits for a's download of the same object version.
        assertThat(bDownloading.await(30, TimeUnit.SECONDS)).isTrue();
        rewrite(file, v2);
        release.countDown();

        for (String id : new String[] {a, b}) {
            Job job = p.await(id, WAIT);
            assertThat(job.state()).as("%s %s", job.errorCode(), job.errorMessage()).isEqualTo(JobState.COMPLETED);
            assertThat(job.imageDigest()).isEqualTo(sha256(v2));
        }
        assertThat(cacheEntriesCheckedByHashing()).containsExactly(sha256(v2));
    }

    /** The digests of the cache's entries, each checked to hash to its own name. */
    private List<String> cacheEntriesCheckedByHashing() throws IOException {
        List<String> out = new ArrayList<>();
        try (Stream<Path> s = Files.list(work.resolve("cache"))) {
            for (Path p : s.filter(f -> f.getFileName().toString().matches("[0-9a-f]{64}")).toList()) {
                assertThat(TestImages.sha256(p)).as("content of %s", p).isEqualTo(p.getFileName().toString());
                out.add(p.getFileName().toString());
            }
        }
        return out;
    }

    private List<String> cacheFiles() throws IOException {
        try (Stream<Path> s = Files.list(work.resolve("cache"))) {
            return s.map(f -> f.getFileName().toString()).sorted().toList();
        }
    }

    /** Rewrites the file in place (same inode), as a publisher writing over an image does. */
    static void rewrite(Path file, byte[] content) throws IOException {
        FileTime before = Files.getLastModifiedTime(file);
        Files.write(file, content, StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE);
        Files.setLastModifiedTime(file, FileTime.fromMillis(before.toMillis() + 1000));
    }

    private static byte[] random(int size, long seed) {
        byte[] b = new byte[size];
        new Random(seed).nextBytes(b);
        return b;
    }

    private static String sha256(byte[] b) throws Exception {
        return java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256").digest(b));
    }

    /**
     * A real source over a file that is rewritten in place, with the next of {@code versions} in
     * turn, once a download has read a third of it: up to {@code times} times, once per download.
     */
    static final class RewritingSource extends ForwardingImageSource {
        final AtomicInteger rewrites = new AtomicInteger();
        final List<String> statEtags = new CopyOnWriteArrayList<>();
        private final Path file;
        private final int times;
        private final byte[][] versions;
        private final AtomicLong readSinceStat = new AtomicLong();

        RewritingSource(ImageSource delegate, Path file, int times, byte[]... versions) {
            super(delegate);
            this.file = file;
            this.times = times;
            this.versions = versions;
        }

        /** Never halfway through a rewrite (content written, time not yet set): a publisher's write is one change. */
        @Override
        public synchronized ObjectInfo stat(ImageRef ref) {
            ObjectInfo info = delegate.stat(ref);
            statEtags.add(info.etag());
            readSinceStat.set(0);
            return info;
        }

        @Override
        public InputStream open(ImageRef ref, String etag, long offset, long length) {
            InputStream in = delegate.open(ref, etag, offset, length);
            return new FilterInputStream(in) {
                @Override
                public int read(byte[] b, int off, int len) throws IOException {
                    int n = super.read(b, off, len);
                    long after = n > 0 ? readSinceStat.addAndGet(n) : 0;
                    if (after >= SIZE / 3 && after - n < SIZE / 3) {
                        maybeRewrite();
                    }
                    return n;
                }
            };
        }

        private synchronized void maybeRewrite() throws IOException {
            if (rewrites.get() < times) {
                rewrite(file, versions[rewrites.getAndIncrement() % versions.length]);
            }
        }
    }
}
