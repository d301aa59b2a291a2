package org.volprov.contract;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.volprov.Cancellation;
import org.volprov.ErrorCode;
import org.volprov.ImageRef;
import org.volprov.ProvisioningException;
import org.volprov.cache.CacheEviction;
import org.volprov.cache.CacheKey;
import org.volprov.cache.CacheLease;
import org.volprov.cache.CacheStats;
import org.volprov.cache.CacheVerification;
import org.volprov.cache.CachedImage;
import org.volprov.cache.ImageCache;
import org.volprov.cache.ImageFiller;

/**
 * The behaviour every {@link ImageCache} shares. An implementation's test extends this class and
 * opens a cache over a directory; opening the same directory again must find what an earlier
 * (closed) cache admitted.
 */
public abstract class ImageCacheContract {
    protected static final int IMAGE = 256 * 1024;
    private static final int CHUNK = 16 * 1024;

    @TempDir
    protected Path dir;

    private final List<ImageCache> opened = new ArrayList<>();
    private ExecutorService pool;

    /** Opens a cache over {@code dir} with a byte budget and an entry limit. */
    protected abstract ImageCache newCache(Path dir, long maxBytes, int maxEntries);

    protected ImageCache open(long maxBytes) {
        return open(maxBytes, Integer.MAX_VALUE);
    }

    protected ImageCache open(long maxBytes, int maxEntries) {
        ImageCache c = newCache(dir, maxBytes, maxEntries);
        opened.add(c);
        return c;
    }

    @AfterEach
    void closeCaches() {
        if (pool != null) {
            pool.shutdownNow();
        }
        opened.forEach(ImageCache::close);
    }

    protected ExecutorService pool() {
        if (pool == null) {
            pool = Executors.newCachedThreadPool();
        }
        return pool;
    }

    // ---------------------------------------------------------------- helpers

    protected static byte[] image(int size, long seed) {
        byte[] b = new byte[size];
        new Random(seed).nextBytes(b);
        return b;
    }

    protected static String sha256(byte[] b) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    /** A key with the published digest of {@code content}. */
    protected static CacheKey published(String name, byte[] content) {
        return new CacheKey(new ImageRef("images", name), "etag-" + name, content.length, Optional.of(sha256(content)));
    }

    /** A key for an object without a published digest. */
    protected static CacheKey unpublished(String name, byte[] content) {
        return new CacheKey(new ImageRef("images", name), "etag-" + name, content.length, Optional.empty());
    }

    /** A filler that writes {@code content} from the sink's position in chunks and counts its runs. */
    protected static ImageFiller filler(byte[] content, AtomicInteger runs) {
        return sink -> {
            runs.incrementAndGet();
            writeFrom(sink, content, (int) sink.position(), content.length);
        };
    }

    protected static void writeFrom(org.volprov.cache.CacheSink sink, byte[] content, int from, int to) throws IOException {
        for (int off = from; off < to; off += CHUNK) {
            sink.write(ByteBuffer.wrap(content, off, Math.min(CHUNK, to - off)));
        }
    }

    protected static byte[] read(CacheLease lease) {
        try {
            return Files.readAllBytes(lease.path());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The largest regular file under the cache directory: a partial download would show here. */
    protected long largestFile() throws IOException {
        try (Stream<Path> s = Files.walk(dir)) {
            return s.filter(Files::isRegularFile).mapToLong(p -> p.toFile().length()).max().orElse(0);
        }
    }

    private static void awaitWaiting(Thread t) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (t.getState() != Thread.State.TIMED_WAITING && t.getState() != Thread.State.WAITING) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("the waiter never waited; state " + t.getState());
            }
            Thread.onSpinWait();
        }
    }

    // ---------------------------------------------------------------- basics

    @Test
    public void admit_whenMissing_runsFillerOnceAndLaterLookupsHit() {
        ImageCache cache = open(10L * IMAGE);
        byte[] img = image(IMAGE, 1);
        CacheKey key = published("a.qcow2", img);
        AtomicInteger runs = new AtomicInteger();

        assertThat(cache.lookup(key)).isEmpty();
        try (CacheLease first = cache.admit(key, filler(img, runs), Cancellation.none())) {
            assertThat(first.hit()).isFalse();
            assertThat(first.sha256()).isEqualTo(sha256(img));
            assertThat(first.size()).isEqualTo(IMAGE);
            assertThat(read(first)).isEqualTo(img);
        }
        try (CacheLease second = cache.admit(key, filler(img, runs), Cancellation.none())) {
            assertThat(second.hit()).isTrue();
            assertThat(read(second)).isEqualTo(img);
        }
        try (CacheLease third = cache.lookup(key).orElseThrow()) {
            assertThat(third.hit()).isTrue();
            third.close(); // closing twice does nothing
        }
        assertThat(runs).hasValue(1);
        CacheStats s = cache.stats();
        assertThat(s.misses()).isEqualTo(1);
        assertThat(s.hits()).isEqualTo(2);
        assertThat(s.admissions()).isEqualTo(1);
        assertThat(s.entries()).isEqualTo(1);
        assertThat(s.bytesInUse()).isEqualTo(IMAGE);
        assertThat(s.bytesDownloaded()).isEqualTo(IMAGE);
    }

    @Test
    public void admit_whenSixteenThreadsAskForOneImage_runsExactlyOneFill() throws Exception {
        ImageCache cache = open(10L * IMAGE);
        byte[] img = image(IMAGE, 2);
        CacheKey key = published("burst.qcow2", img);
        AtomicInteger runs = new AtomicInteger();
        CyclicBarrier start = new CyclicBarrier(16);
        List<Future<Boolean>> results = new ArrayList<>();
        for (int i = 0; i < 16; i++) {
            results.add(pool().submit(() -> {
                start.await(10, TimeUnit.SECONDS);
                try (CacheLease lease = cache.admit(key, filler(img, runs), Cancellation.none())) {
                    assertThat(read(lease)).isEqualTo(img);
                    return lease.hit();
                }
            }));
        }
        int misses = 0;
        for (Future<Boolean> f : results) {
            misses += f.get(30, TimeUnit.SECONDS) ? 0 : 1;
        }
        assertThat(runs).hasValue(1);
        assertThat(misses).isEqualTo(1);
        assertThat(cache.stats().hits()).isEqualTo(15);
        assertThat(cache.stats().misses()).isEqualTo(1);
    }

    @Test
    public void admit_whenImagesDiffer_fillsThemInParallel() throws Exception {
        ImageCache cache = open(10L * IMAGE);
        CyclicBarrier bothFilling = new CyclicBarrier(2);
        List<Future<CacheLease>> results = new ArrayList<>();
        for (int i = 0; i < 2; i++) {
            byte[] img = image(IMAGE, 10 + i);
            CacheKey key = published("par-" + i, img);
            results.add(pool().submit(() -> cache.admit(key, sink -> {
                writeFrom(sink, img, 0, IMAGE / 2);
                try {
                    // Breaks (and fails the test) unless both fills run at once.
                    bothFilling.await(10, TimeUnit.SECONDS);
                } catch (Exception e) {
                    throw new IOException("the other fill did not run in parallel", e);
                }
                writeFrom(sink, img, IMAGE / 2, IMAGE);
            }, Cancellation.none())));
        }
        for (Future<CacheLease> f : results) {
            f.get(30, TimeUnit.SECONDS).close();
        }
        assertThat(cache.stats().entries()).isEqualTo(2);
    }

    // ---------------------------------------------------------------- failures

    @Test
    public void admit_whenFillerThrowsMidway_leavesNoEntryAndNoPartialFile() throws Exception {
        ImageCache cache = open(10L * IMAGE);
        byte[] img = image(IMAGE, 3);
        CacheKey key = published("broken.qcow2", img);

        assertThatThrownBy(() -> cache.admit(key, sink -> {
            writeFrom(sink, img, 0, IMAGE / 2);
            throw new ProvisioningException(ErrorCode.SOURCE_UNAVAILABLE, "connection reset");
        }, Cancellation.none())).isInstanceOfSatisfying(ProvisioningException.class,
                e -> assertThat(e.code()).isEqualTo(ErrorCode.SOURCE_UNAVAILABLE));

        assertThat(cache.lookup(key)).isEmpty();
        assertThat(largestFile()).isLessThan(IMAGE / 2);
        assertThat(cache.stats().entries()).isZero();
        assertThat(cache.stats().bytesInUse()).isZero();

        AtomicInteger runs = new AtomicInteger();
        try (CacheLease lease = cache.admit(key, filler(img, runs), Cancellation.none())) {
            assertThat(read(lease)).isEqualTo(img);
        }
    }

    @Test
    public void admit_whenFillerThrowsIOException_reportsSourceUnavailableAndLeavesNothing() throws Exception {
        ImageCache cache = open(10L * IMAGE);
        byte[] img = image(IMAGE, 4);
        CacheKey key = unpublished("io.qcow2", img);

        assertThatThrownBy(() -> cache.admit(key, sink -> {
            writeFrom(sink, img, 0, IMAGE / 2);
            throw new IOException("Connection reset by peer");
        }, Cancellation.none())).isInstanceOfSatisfying(ProvisioningException.class,
                e -> assertThat(e.code()).isEqualTo(ErrorCode.SOURCE_UNAVAILABLE));
        assertThat(cache.lookup(key)).isEmpty();
        assertThat(largestFile()).isLessThan(IMAGE / 2);
    }

    @Test
    public void admit_whenFillerWritesTooLittle_admitsNothing() throws Exception {
        ImageCache cache = open(10L * IMAGE);
        byte[] img = image(IMAGE, 5);
        CacheKey key = unpublished("short.qcow2", img);
        assertThatThrownBy(() -> cache.admit(key, sink -> writeFrom(sink, img, 0, IMAGE - 1), Cancellation.none()))
                .isInstanceOf(ProvisioningException.class);
        assertThat(cache.lookup(key)).isEmpty();
        assertThat(largestFile()).isLessThan(IMAGE / 2);
    }

    @Test
    public void admit_whenChecksumDiffers_throwsChecksumMismatchAndAdmitsNothing() throws Exception {
        ImageCache cache = open(10L * IMAGE);
        byte[] img = image(IMAGE, 6);
        byte[] other = image(IMAGE, 7);
        CacheKey key = published("tampered.qcow2", img);

        assertThatThrownBy(() -> cache.admit(key, filler(other, new AtomicInteger()), Cancellation.none()))
                .isInstanceOfSatisfying(ProvisioningException.class,
                        e -> assertThat(e.code()).isEqualTo(ErrorCode.CHECKSUM_MISMATCH));

        assertThat(cache.lookup(key)).isEmpty();
        assertThat(cache.stats().checksumFailures()).isEqualTo(1);
        assertThat(cache.stats().entries()).isZero();
        assertThat(cache.stats().admissions()).isZero();
        assertThat(largestFile()).isLessThan(IMAGE / 2);
    }

    @Test
    public void admit_whenResumedAtSinkPosition_hashesEachByteOnce() {
        ImageCache cache = open(10L * IMAGE);
        byte[] img = image(IMAGE, 8);
        CacheKey key = published("resume.qcow2", img);
        AtomicInteger connections = new AtomicInteger();
        // Stands in for the engine's filler: the "connection" breaks twice, each retry re-opens at position().
        ImageFiller resuming = sink -> {
            while (sink.position() < sink.size()) {
                int from = (int) sink.position();
                int breakAt = connections.incrementAndGet() < 3 ? Math.min(IMAGE, from + IMAGE / 3 + 7) : IMAGE;
                try {
                    writeFrom(sink, img, from, breakAt);
                    if (breakAt < IMAGE) {
                        throw new IOException("connection reset");
                    }
                } catch (IOException e) {
                    // resume
                }
            }
        };
        try (CacheLease lease = cache.admit(key, resuming, Cancellation.none())) {
            assertThat(read(lease)).isEqualTo(img);
        }
        assertThat(connections).hasValue(3);
        assertThat(cache.stats().bytesDownloaded()).isEqualTo(IMAGE);
    }

    // ---------------------------------------------------------------- single flight and cancellation

    @Test
    public void admit_whenFillerFails_waitersShareTheFailureWithoutFilling() throws Exception {
        ImageCache cache = open(10L * IMAGE);
        byte[] img = image(IMAGE, 9);
        CacheKey key = published("shared-failure.qcow2", img);
        CountDownLatch filling = new CountDownLatch(1);
        CountDownLatch fail = new CountDownLatch(1);
        Future<?> leader = pool().submit(() -> cache.admit(key, sink -> {
            filling.countDown();
            awaitLatch(fail);
            throw new ProvisioningException(ErrorCode.IMAGE_NOT_FOUND, "gone");
        }, Cancellation.none()));
        assertThat(filling.await(10, TimeUnit.SECONDS)).isTrue();

        AtomicInteger waiterRuns = new AtomicInteger();
        AtomicReference<Throwable> waiterFailure = new AtomicReference<>();
        Thread waiter = new Thread(() -> {
            try {
                cache.admit(key, filler(img, waiterRuns), Cancellation.none()).close();
            } catch (Throwable t) {
                waiterFailure.set(t);
            }
        });
        waiter.start();
        awaitWaiting(waiter);
        fail.countDown();
        waiter.join(10_000);

        assertThat(waiterFailure.get()).isInstanceOfSatisfying(ProvisioningException.class,
                e -> assertThat(e.code()).isEqualTo(ErrorCode.IMAGE_NOT_FOUND));
        assertThat(waiterRuns).hasValue(0);
        assertThatThrownBy(() -> leader.get(10, TimeUnit.SECONDS)).hasCauseInstanceOf(ProvisioningException.class);
    }

    @Test
    public void admit_whenFillersCallerIsCancelled_waiterRunsItsOwnFill() throws Exception {
        ImageCache cache = open(10L * IMAGE);
        byte[] img = image(IMAGE, 11);
        CacheKey key = published("cancelled-leader.qcow2", img);
        Cancellation leaderSignal = Cancellation.none();
        CountDownLatch filling = new CountDownLatch(1);
        CountDownLatch resume = new CountDownLatch(1);
        Future<CacheLease> leader = pool().submit(() -> cache.admit(key, sink -> {
            writeFrom(sink, img, 0, IMAGE / 2);
            filling.countDown();
            awaitLatch(resume);
            writeFrom(sink, img, IMAGE / 2, IMAGE); // the sink sees the cancellation here
        }, leaderSignal));
        assertThat(filling.await(10, TimeUnit.SECONDS)).isTrue();

        AtomicInteger waiterRuns = new AtomicInteger();
        AtomicReference<Object> waiterResult = new AtomicReference<>();
        Thread waiter = new Thread(() -> {
            try (CacheLease lease = cache.admit(key, filler(img, waiterRuns), Cancellation.none())) {
                waiterResult.set(lease.hit() ? "hit" : read(lease));
            } catch (Throwable t) {
                waiterResult.set(t);
            }
        });
        waiter.start();
        awaitWaiting(waiter);
        leaderSignal.cancel(ErrorCode.CANCELLED, "the job was cancelled");
        resume.countDown();
        waiter.join(10_000);

        assertThatThrownBy(() -> leader.get(10, TimeUnit.SECONDS)).cause()
                .isInstanceOfSatisfying(ProvisioningException.class,
                        e -> assertThat(e.code()).isEqualTo(ErrorCode.CANCELLED));
        assertThat(waiterResult.get()).isEqualTo(img);
        assertThat(waiterRuns).hasValue(1);
        assertThat(cache.lookup(key)).isPresent();
    }

    @Test
    public void admit_whenWaiterIsCancelled_stopsWaitingAndLeavesTheFillRunning() throws Exception {
        ImageCache cache = open(10L * IMAGE);
        byte[] img = image(IMAGE, 12);
        CacheKey key = published("cancelled-waiter.qcow2", img);
        CountDownLatch filling = new CountDownLatch(1);
        CountDownLatch resume = new CountDownLatch(1);
        Future<CacheLease> leader = pool().submit(() -> cache.admit(key, sink -> {
            filling.countDown();
            awaitLatch(resume);
            writeFrom(sink, img, 0, IMAGE);
        }, Cancellation.none()));
        assertThat(filling.await(10, TimeUnit.SECONDS)).isTrue();

        Cancellation waiterSignal = Cancellation.none();
        Future<CacheLease> waiter = pool().submit(
                () -> cache.admit(key, filler(img, new AtomicInteger()), waiterSignal));
        waiterSignal.cancel(ErrorCode.CANCELLED, "the waiting job was cancelled");

        assertThatThrownBy(() -> waiter.get(10, TimeUnit.SECONDS)).cause()
                .isInstanceOfSatisfying(ProvisioningException.class,
                        e -> assertThat(e.code()).isEqualTo(ErrorCode.CANCELLED));
        resume.countDown();
        try (CacheLease lease = leader.get(10, TimeUnit.SECONDS)) {
            assertThat(read(lease)).isEqualTo(img);
        }
    }

    private static void awaitLatch(CountDownLatch latch) throws IOException {
        try {
            if (!latch.await(10, TimeUnit.SECONDS)) {
                throw new IOException("the test never released the filler");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException(e);
        }
    }

    // ---------------------------------------------------------------- identity without a published digest

    @Test
    public void admit_whenNoPublishedChecksum_secondRequestForSameObjectIsHitWithoutFill() {
        ImageCache cache = open(10L * IMAGE);
        byte[] img = image(IMAGE, 13);
        CacheKey key = unpublished("plain.qcow2", img);
        AtomicInteger runs = new AtomicInteger();
        try (CacheLease first = cache.admit(key, filler(img, runs), Cancellation.none())) {
            assertThat(first.sha256()).isEqualTo(sha256(img));
        }
        try (CacheLease second = cache.admit(key, filler(img, runs), Cancellation.none())) {
            assertThat(second.hit()).isTrue();
            assertThat(read(second)).isEqualTo(img);
        }
        assertThat(runs).hasValue(1);

        // A new version of the object (another ETag) is another identity: it is downloaded.
        CacheKey changed = new CacheKey(key.ref(), "etag-2", img.length, Optional.empty());
        assertThat(cache.lookup(changed)).isEmpty();
    }

    @Test
    public void reopen_keepsEntriesAndIdentityAliases() {
        byte[] a = image(IMAGE, 14);
        byte[] b = image(IMAGE, 15);
        ImageCache first = open(10L * IMAGE);
        AtomicInteger runs = new AtomicInteger();
        first.admit(published("a", a), filler(a, runs), Cancellation.none()).close();
        first.admit(unpublished("b", b), filler(b, runs), Cancellation.none()).close();
        first.close();
        first.close(); // idempotent

        ImageCache second = open(10L * IMAGE);
        try (CacheLease la = second.lookup(published("a", a)).orElseThrow();
                CacheLease lb = second.lookup(unpublished("b", b)).orElseThrow()) {
            assertThat(read(la)).isEqualTo(a);
            assertThat(read(lb)).isEqualTo(b);
        }
        assertThat(second.stats().entries()).isEqualTo(2);
        assertThat(second.stats().bytesInUse()).isEqualTo(2L * IMAGE);
    }

    @Test
    public void lookup_whenTheEntrysFileIsGone_isAMissAndTheImageIsFetchedAgain() throws IOException {
        ImageCache cache = open(10L * IMAGE);
        byte[] img = image(IMAGE, 16);
        CacheKey key = unpublished("vanished.qcow2", img);
        AtomicInteger runs = new AtomicInteger();
        Path file;
        try (CacheLease first = cache.admit(key, filler(img, runs), Cancellation.none())) {
            file = first.path();
        }
        Files.delete(file); // what an operator, or an eviction that raced with an install, leaves behind

        assertThat(cache.lookup(key)).as("an entry without its file is no hit").isEmpty();
        assertThat(cache.lookup(published("vanished.qcow2", img))).as("by digest neither").isEmpty();
        assertThat(cache.stats().lostEntries()).isEqualTo(1);
        assertThat(cache.stats().entries()).isZero();
        try (CacheLease again = cache.admit(key, filler(img, runs), Cancellation.none())) {
            assertThat(again.hit()).isFalse();
            assertThat(read(again)).isEqualTo(img);
        }
        assertThat(runs).hasValue(2);
        try (CacheLease hit = cache.lookup(key).orElseThrow()) {
            assertThat(read(hit)).isEqualTo(img);
        }
        assertThat(cache.stats().entries()).isEqualTo(1);
        assertThat(cache.stats().bytesInUse()).isEqualTo(IMAGE);
    }

    // ---------------------------------------------------------------- budget

    @Test
    public void admit_whenBudgetIsFull_evictsLeastRecentlyUsedFirst() {
        ImageCache cache = open(3L * IMAGE);
        byte[] a = image(IMAGE, 21);
        byte[] b = image(IMAGE, 22);
        byte[] c = image(IMAGE, 23);
        byte[] d = image(IMAGE, 24);
        AtomicInteger runs = new AtomicInteger();
        cache.admit(published("a", a), filler(a, runs), Cancellation.none()).close();
        cache.admit(published("b", b), filler(b, runs), Cancellation.none()).close();
        cache.admit(published("c", c), filler(c, runs), Cancellation.none()).close();
        cache.lookup(published("a", a)).orElseThrow().close(); // a is now more recent than b

        cache.admit(published("d", d), filler(d, runs), Cancellation.none()).close();

        assertThat(cache.lookup(published("b", b))).isEmpty();
        assertThat(cache.lookup(published("a", a))).isPresent().get().satisfies(CacheLease::close);
        assertThat(cache.lookup(published("c", c))).isPresent().get().satisfies(CacheLease::close);
        assertThat(cache.lookup(published("d", d))).isPresent().get().satisfies(CacheLease::close);
        assertThat(cache.stats().evictions()).isEqualTo(1);
        assertThat(cache.stats().bytesInUse()).isEqualTo(3L * IMAGE);
    }

    @Test
    public void admit_whenEntryLimitIsReached_evictsOldest() {
        ImageCache cache = open(100L * IMAGE, 2);
        byte[] a = image(1000, 31);
        byte[] b = image(1000, 32);
        byte[] c = image(1000, 33);
        AtomicInteger runs = new AtomicInteger();
        cache.admit(published("a", a), filler(a, runs), Cancellation.none()).close();
        cache.admit(published("b", b), filler(b, runs), Cancellation.none()).close();
        cache.admit(published("c", c), filler(c, runs), Cancellation.none()).close();
        assertThat(cache.lookup(published("a", a))).isEmpty();
        assertThat(cache.stats().entries()).isEqualTo(2);
    }

    @Test
    public void admit_underEvictionPressure_neverEvictsLeasedEntry() throws IOException {
        ImageCache cache = open(2L * IMAGE);
        byte[] a = image(IMAGE, 41);
        byte[] b = image(IMAGE, 42);
        byte[] c = image(IMAGE, 43);
        byte[] d = image(IMAGE, 44);
        AtomicInteger runs = new AtomicInteger();
        try (CacheLease held = cache.admit(published("a", a), filler(a, runs), Cancellation.none())) {
            cache.admit(published("b", b), filler(b, runs), Cancellation.none()).close();
            try (CacheLease heldC = cache.admit(published("c", c), filler(c, runs), Cancellation.none())) {
                // a is older than b but leased: b went instead.
                assertThat(cache.lookup(published("b", b))).isEmpty();
                int before = runs.get();
                assertThatThrownBy(() -> cache.admit(published("d", d), filler(d, runs), Cancellation.none()))
                        .isInstanceOfSatisfying(ProvisioningException.class,
                                e -> assertThat(e.code()).isEqualTo(ErrorCode.INSUFFICIENT_SPACE));
                assertThat(runs).hasValue(before);
                assertThat(Files.readAllBytes(held.path())).isEqualTo(a);
                assertThat(Files.readAllBytes(heldC.path())).isEqualTo(c);
            }
        }
        // Once released, the leased entries can make room again.
        cache.admit(published("d", d), filler(d, runs), Cancellation.none()).close();
        assertThat(cache.lookup(published("a", a))).isEmpty();
    }

    @Test
    public void admit_whenImageIsLargerThanBudget_throwsInsufficientSpaceBeforeFilling() {
        ImageCache cache = open(IMAGE - 1);
        byte[] img = image(IMAGE, 51);
        AtomicInteger runs = new AtomicInteger();
        assertThatThrownBy(() -> cache.admit(published("huge", img), filler(img, runs), Cancellation.none()))
                .isInstanceOfSatisfying(ProvisioningException.class,
                        e -> assertThat(e.code()).isEqualTo(ErrorCode.INSUFFICIENT_SPACE));
        assertThat(runs).hasValue(0);
        assertThat(cache.stats().misses()).isZero();
    }

    @Test
    public void admit_whenImageCannotFitEvenAfterEvicting_evictsNothing() {
        ImageCache cache = open(2L * IMAGE);
        byte[] a = image(IMAGE, 61);
        byte[] b = image(IMAGE, 62);
        byte[] big = image(2 * IMAGE, 63);
        AtomicInteger runs = new AtomicInteger();
        try (CacheLease held = cache.admit(published("a", a), filler(a, runs), Cancellation.none())) {
            cache.admit(published("b", b), filler(b, runs), Cancellation.none()).close();
            assertThatThrownBy(() -> cache.admit(published("big", big), filler(big, runs), Cancellation.none()))
                    .isInstanceOfSatisfying(ProvisioningException.class,
                            e -> assertThat(e.code()).isEqualTo(ErrorCode.INSUFFICIENT_SPACE));
        }
        assertThat(cache.lookup(published("b", b))).isPresent().get().satisfies(CacheLease::close);
        assertThat(cache.stats().evictions()).isZero();
    }

    @Test
    public void waiting_isBoundedByTheCallersDeadline() throws Exception {
        ImageCache cache = open(10L * IMAGE);
        byte[] img = image(IMAGE, 71);
        CacheKey key = published("deadline.qcow2", img);
        CountDownLatch filling = new CountDownLatch(1);
        CountDownLatch resume = new CountDownLatch(1);
        Future<CacheLease> leader = pool().submit(() -> cache.admit(key, sink -> {
            filling.countDown();
            awaitLatch(resume);
            writeFrom(sink, img, 0, IMAGE);
        }, Cancellation.none()));
        assertThat(filling.await(10, TimeUnit.SECONDS)).isTrue();
        java.time.Clock clock = java.time.Clock.systemUTC();
        Cancellation shortDeadline = new Cancellation(clock, clock.instant().plus(Duration.ofMillis(50)));
        assertThatThrownBy(() -> cache.admit(key, filler(img, new AtomicInteger()), shortDeadline))
                .isInstanceOfSatisfying(ProvisioningException.class,
                        e -> assertThat(e.code()).isEqualTo(ErrorCode.TIMED_OUT));
        resume.countDown();
        leader.get(10, TimeUnit.SECONDS).close();
    }

    // ---------------------------------------------------------------- the operator's handles: list, evict, verify

    /** Overwrites the first bytes of an entry's file in place, keeping its size: damage a size check cannot see. */
    public static void damage(Path entry) throws IOException {
        entry.toFile().setWritable(true);
        try (var ch = java.nio.channels.FileChannel.open(entry, java.nio.file.StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap(new byte[] {1, 2, 3, 4, 5, 6, 7, 8}), 0);
        }
    }

    @Test
    void list_reportsEachEntryWithItsSourceSizeAndLeases_leastRecentlyUsedFirst() {
        ImageCache cache = open(10L * IMAGE);
        byte[] a = image(IMAGE, 201);
        byte[] b = image(IMAGE / 2, 202);
        CacheKey ka = published("list-a.qcow2", a);
        CacheKey kb = unpublished("list-b.qcow2", b);
        AtomicInteger runs = new AtomicInteger();
        CacheLease held = cache.admit(ka, filler(a, runs), Cancellation.none());
        cache.admit(kb, filler(b, runs), Cancellation.none()).close();

        List<CachedImage> listed = cache.list();

        assertThat(listed).extracting(CachedImage::sha256).containsExactly(sha256(a), sha256(b));
        CachedImage ea = listed.get(0);
        assertThat(ea.size()).isEqualTo(IMAGE);
        assertThat(ea.sources()).containsExactly(ka.identity());
        assertThat(ea.leases()).isEqualTo(1);
        assertThat(ea.leasesElsewhere()).hasValue(0);
        assertThat(ea.leased()).isTrue();
        CachedImage eb = listed.get(1);
        assertThat(eb.size()).isEqualTo(IMAGE / 2);
        assertThat(eb.sources()).containsExactly(kb.identity());
        assertThat(eb.leases()).isZero();
        assertThat(eb.leased()).isFalse();
        assertThat(eb.lastUsed()).isAfterOrEqualTo(ea.lastUsed());

        held.close();
        cache.lookup(ka).orElseThrow().close(); // a use: a is now the most recently used

        assertThat(cache.list()).extracting(CachedImage::sha256).containsExactly(sha256(b), sha256(a));
        assertThat(cache.list()).allSatisfy(e -> assertThat(e.leases()).isZero());
    }

    @Test
    void list_ofAReopenedCache_findsTheEntriesOnDisk() {
        byte[] a = image(IMAGE, 203);
        ImageCache first = open(10L * IMAGE);
        first.admit(published("reopen-list.qcow2", a), filler(a, new AtomicInteger()), Cancellation.none()).close();
        first.close();

        assertThat(open(10L * IMAGE).list()).extracting(CachedImage::sha256, CachedImage::size)
                .containsExactly(org.assertj.core.groups.Tuple.tuple(sha256(a), (long) IMAGE));
    }

    @Test
    void evict_ofAnUnleasedEntry_removesItAndItsFile_andTheNextAdmissionDownloadsAgain() {
        ImageCache cache = open(10L * IMAGE);
        byte[] a = image(IMAGE, 211);
        CacheKey key = published("evict.qcow2", a);
        AtomicInteger runs = new AtomicInteger();
        Path file;
        try (CacheLease lease = cache.admit(key, filler(a, runs), Cancellation.none())) {
            file = lease.path();
        }

        assertThat(cache.evict(sha256(a))).isEqualTo(CacheEviction.EVICTED);

        assertThat(file).doesNotExist();
        assertThat(cache.list()).isEmpty();
        assertThat(cache.lookup(key)).isEmpty();
        assertThat(cache.stats().evictions()).isZero();
        try (CacheLease again = cache.admit(key, filler(a, runs), Cancellation.none())) {
            assertThat(read(again)).isEqualTo(a);
        }
        assertThat(runs).hasValue(2);
    }

    @Test
    void evict_ofALeasedEntry_isRefused_andTheReaderKeepsItsFile() {
        ImageCache cache = open(10L * IMAGE);
        byte[] a = image(IMAGE, 212);
        CacheKey key = published("evict-leased.qcow2", a);
        CacheLease lease = cache.admit(key, filler(a, new AtomicInteger()), Cancellation.none());

        assertThat(cache.evict(sha256(a))).isEqualTo(CacheEviction.LEASED);

        assertThat(read(lease)).isEqualTo(a);
        assertThat(cache.list()).extracting(CachedImage::sha256).containsExactly(sha256(a));
        lease.close();
        assertThat(cache.evict(sha256(a))).isEqualTo(CacheEviction.EVICTED);
    }

    @Test
    void evict_ofAnUnknownDigest_isNotCached_andAMalformedOneIsRejected() {
        ImageCache cache = open(10L * IMAGE);

        assertThat(cache.evict(sha256(image(16, 213)))).isEqualTo(CacheEviction.NOT_CACHED);
        assertThatThrownBy(() -> cache.evict("../etc")).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void verifyAll_ofSoundEntries_reportsThemOk_andLeavesTheUseOrderAlone() {
        ImageCache cache = open(10L * IMAGE);
        byte[] a = image(IMAGE, 221);
        byte[] b = image(IMAGE, 222);
        AtomicInteger runs = new AtomicInteger();
        cache.admit(published("verify-a.qcow2", a), filler(a, runs), Cancellation.none()).close();
        cache.admit(published("verify-b.qcow2", b), filler(b, runs), Cancellation.none()).close();
        List<CachedImage> before = cache.list();

        CacheVerification report = cache.verifyAll(Cancellation.none());

        assertThat(report.ok()).containsExactly(sha256(a), sha256(b));
        assertThat(report.dropped()).isEmpty();
        assertThat(cache.list()).isEqualTo(before);
    }

    @Test
    void verify_ofADamagedEntry_dropsAndReportsIt_andTheNextAdmissionDownloadsAgain() throws IOException {
        ImageCache cache = open(10L * IMAGE);
        byte[] a = image(IMAGE, 223);
        byte[] b = image(IMAGE, 224);
        CacheKey key = published("verify-bad.qcow2", a);
        AtomicInteger runs = new AtomicInteger();
        Path file;
        try (CacheLease lease = cache.admit(key, filler(a, runs), Cancellation.none())) {
            file = lease.path();
        }
        cache.admit(published("verify-good.qcow2", b), filler(b, new AtomicInteger()), Cancellation.none()).close();
        damage(file);

        CacheVerification report = cache.verifyAll(Cancellation.none());

        assertThat(report.ok()).containsExactly(sha256(b));
        assertThat(report.dropped()).singleElement().satisfies(r -> {
            assertThat(r.sha256()).isEqualTo(sha256(a));
            assertThat(r.outcome()).isEqualTo(CacheVerification.Outcome.DROPPED);
            assertThat(r.reason()).contains("hashes to");
        });
        assertThat(file).doesNotExist();
        assertThat(cache.lookup(key)).isEmpty();
        try (CacheLease again = cache.admit(key, filler(a, runs), Cancellation.none())) {
            assertThat(read(again)).isEqualTo(a);
        }
        assertThat(runs).hasValue(2);
        assertThat(cache.verify(sha256(a), Cancellation.none()).ok()).containsExactly(sha256(a));
    }

    @Test
    void verify_ofADamagedEntryThatIsLeased_keepsItForTheReader_andDropsItWhenTheLeaseCloses() throws IOException {
        ImageCache cache = open(10L * IMAGE);
        byte[] a = image(IMAGE, 225);
        CacheLease lease = cache.admit(published("verify-leased.qcow2", a), filler(a, new AtomicInteger()),
                Cancellation.none());
        damage(lease.path());

        CacheVerification report = cache.verify(sha256(a), Cancellation.none());

        assertThat(report.results()).singleElement().satisfies(r -> {
            assertThat(r.outcome()).isEqualTo(CacheVerification.Outcome.DROP_PENDING);
            assertThat(r.reason()).contains("leased");
        });
        assertThat(lease.path()).exists();
        lease.close();
        assertThat(cache.list()).isEmpty();
        assertThat(lease.path()).doesNotExist();
    }

    @Test
    void verify_ofAnUnknownDigest_reportsNotCached() {
        ImageCache cache = open(10L * IMAGE);

        assertThat(cache.verify(sha256(image(16, 226)), Cancellation.none()).results())
                .extracting(CacheVerification.Result::outcome).containsExactly(CacheVerification.Outcome.NOT_CACHED);
    }

    @Test
    void verifyAll_whenCancelled_throwsTheSignalsCode_andDropsNothing() {
        ImageCache cache = open(10L * IMAGE);
        byte[] a = image(IMAGE, 227);
        cache.admit(published("verify-cancel.qcow2", a), filler(a, new AtomicInteger()), Cancellation.none()).close();
        Cancellation signal = Cancellation.none();
        signal.cancel(ErrorCode.CANCELLED, "the operator gave up");

        assertThatThrownBy(() -> cache.verifyAll(signal)).isInstanceOfSatisfying(ProvisioningException.class,
                e -> assertThat(e.code()).isEqualTo(ErrorCode.CANCELLED));
        assertThat(cache.list()).extracting(CachedImage::sha256).containsExactly(sha256(a));
    }

    @Test
    void verify_onAnInterruptedThread_throwsInterrupted() {
        ImageCache cache = open(10L * IMAGE);
        byte[] a = image(IMAGE, 228);
        cache.admit(published("verify-interrupt.qcow2", a), filler(a, new AtomicInteger()), Cancellation.none()).close();

        Thread.currentThread().interrupt();
        try {
            assertThatThrownBy(() -> cache.verify(sha256(a), Cancellation.none()))
                    .isInstanceOfSatisfying(ProvisioningException.class,
                            e -> assertThat(e.code()).isEqualTo(ErrorCode.INTERRUPTED));
        } finally {
            Thread.interrupted();
        }
        assertThat(cache.list()).extracting(CachedImage::sha256).containsExactly(sha256(a));
    }
}
