package org.volprov.cache;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.volprov.Cancellation;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;
import org.volprov.Sleeper;
import org.volprov.contract.ImageCacheContract;
import org.volprov.testing.SettableClock;

class DiskImageCacheTest extends ImageCacheContract {

    @Override
    protected ImageCache newCache(Path dir, long maxBytes, int maxEntries) {
        return DiskImageCache.builder().directory(dir).maxBytes(maxBytes).maxEntries(maxEntries).build();
    }

    private List<String> names() throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).sorted().collect(Collectors.toList());
        }
    }

    @Test
    void files_areNamedByDigestsOnly() throws IOException {
        ImageCache cache = open(10L * IMAGE);
        byte[] a = image(1000, 1);
        // A key full of path tricks ('..' segments themselves are refused by ImageRef): none of it
        // may reach the directory.
        CacheKey key = new CacheKey(new org.volprov.ImageRef("images", "..\\..\\etc/..../passwd"), "x/../y", a.length,
                java.util.Optional.empty());
        cache.admit(key, filler(a, new AtomicInteger()), Cancellation.none()).close();
        assertThat(names()).allMatch(n -> n.equals("lock") || n.matches("[0-9a-f]{64}(\\.meta|\\.alias)?"));
        assertThat(names()).contains(sha256(a), sha256(a) + ".meta");
    }

    @Test
    void discard_removesTheEntryAndItsFiles_onceTheLastLeaseCloses() throws IOException {
        ImageCache cache = open(10L * IMAGE);
        byte[] a = image(IMAGE, 4);
        CacheKey key = unpublished("unusable", a);
        CacheLease first = cache.admit(key, filler(a, new AtomicInteger()), Cancellation.none());
        CacheLease second = cache.lookup(key).orElseThrow();
        first.discard();
        first.close();
        assertThat(names()).as("still leased").contains(sha256(a));
        assertThat(read(second)).isEqualTo(a);
        second.close();
        assertThat(names()).containsExactly("lock");
        assertThat(cache.stats().entries()).isZero();
        assertThat(cache.stats().bytesInUse()).isZero();
        assertThat(cache.stats().evictions()).as("a discard is not an eviction").isZero();
        assertThat(cache.lookup(key)).isEmpty();
        // Admitted again later (republished), it is an entry like any other.
        cache.admit(key, filler(a, new AtomicInteger()), Cancellation.none()).close();
        assertThat(cache.lookup(key)).isPresent().get().satisfies(CacheLease::close);
    }

    @Test
    void reopen_afterCrash_sweepsTempFilesAndDropsTruncatedEntries() throws IOException {
        byte[] a = image(IMAGE, 2);
        byte[] b = image(IMAGE, 3);
        ImageCache first = open(10L * IMAGE);
        first.admit(published("a", a), filler(a, new AtomicInteger()), Cancellation.none()).close();
        first.admit(published("b", b), filler(b, new AtomicInteger()), Cancellation.none()).close();
        first.close();

        // What a crash leaves: a half-written download, a small temp file, metadata of an entry whose
        // rename never happened, and a data file cut short (a disk that lied about fsync).
        Files.write(dir.resolve("0123456789abcdef0123456789abcdef.tmp"), image(IMAGE / 2, 9));
        Files.write(dir.resolve("fedcba9876543210fedcba9876543210.tmp"), new byte[10]);
        String orphan = sha256(image(10, 10));
        Files.writeString(dir.resolve(orphan + ".meta"), "sha256=" + orphan + "\nsize=10\n");
        Path aFile = dir.resolve(sha256(a));
        aFile.toFile().setWritable(true);
        try (FileChannel ch = FileChannel.open(aFile, StandardOpenOption.WRITE)) {
            ch.truncate(IMAGE / 2);
        }

        ImageCache second = open(10L * IMAGE);
        assertThat(names()).containsExactlyInAnyOrder("lock", sha256(b), sha256(b) + ".meta",
                CacheFiles.aliasName(published("b", b).identity()));
        assertThat(second.lookup(published("a", a))).isEmpty();
        try (CacheLease lb = second.lookup(published("b", b)).orElseThrow()) {
            assertThat(read(lb)).isEqualTo(b);
        }
        assertThat(second.stats().entries()).isEqualTo(1);
        assertThat(second.stats().bytesInUse()).isEqualTo(IMAGE);
        // The truncated image downloads again.
        AtomicInteger runs = new AtomicInteger();
        second.admit(published("a", a), filler(a, runs), Cancellation.none()).close();
        assertThat(runs).hasValue(1);
    }

    @Test
    void reopen_withVerifyOnOpen_dropsEntriesWhoseContentChanged() throws IOException {
        byte[] a = image(IMAGE, 4);
        byte[] b = image(IMAGE, 5);
        ImageCache first = open(10L * IMAGE);
        first.admit(published("a", a), filler(a, new AtomicInteger()), Cancellation.none()).close();
        first.admit(published("b", b), filler(b, new AtomicInteger()), Cancellation.none()).close();
        first.close();
        Path aFile = dir.resolve(sha256(a));
        aFile.toFile().setWritable(true);
        try (FileChannel ch = FileChannel.open(aFile, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap(new byte[] {(byte) ~a[100]}), 100); // same size, one byte flipped
        }

        ImageCache sizeOnly = open(10L * IMAGE);
        assertThat(sizeOnly.lookup(published("a", a))).isPresent().get().satisfies(CacheLease::close);
        sizeOnly.close();

        ImageCache verified = DiskImageCache.builder().directory(dir).maxBytes(10L * IMAGE).verifyOnOpen(true).build();
        try {
            assertThat(verified.lookup(published("a", a))).isEmpty();
            assertThat(verified.lookup(published("b", b))).isPresent().get().satisfies(CacheLease::close);
            assertThat(Files.exists(aFile)).isFalse();
        } finally {
            verified.close();
        }
    }

    @Test
    void reopen_withSmallerBudget_shedsOldestEntries() {
        byte[] a = image(IMAGE, 6);
        byte[] b = image(IMAGE, 7);
        ImageCache first = open(10L * IMAGE);
        first.admit(published("a", a), filler(a, new AtomicInteger()), Cancellation.none()).close();
        first.admit(published("b", b), filler(b, new AtomicInteger()), Cancellation.none()).close();
        first.close();
        ImageCache small = open(IMAGE);
        assertThat(small.stats().entries()).isEqualTo(1);
        assertThat(small.stats().bytesInUse()).isEqualTo(IMAGE);
    }

    @Test
    void open_whenDirectoryIsHeldByAnotherCache_fails() {
        open(IMAGE);
        assertThatThrownBy(() -> open(IMAGE)).isInstanceOfSatisfying(ProvisioningException.class,
                e -> assertThat(e).hasMessageContaining("in use"));
    }

    @Test
    void open_whenThisProcessHoldsTheDirectory_isRefusedAndOtherProcessesStayLockedOut() throws Exception {
        open(IMAGE);
        assertThatThrownBy(() -> open(IMAGE)).isInstanceOfSatisfying(ProvisioningException.class,
                e -> assertThat(e).hasMessageContaining("in use"));
        assertThat(LockProbe.tryLockFromAnotherProcess(dir.resolve(DiskImageCache.LOCK_FILE)))
                .as("the refused open must leave the first cache's lock in place").isEqualTo("HELD");
    }

    @Test
    void close_ofOneOfTwoCachesSharingTheDirectory_keepsItLockedUntilTheLastCloses() throws Exception {
        DiskImageCache a = DiskImageCache.builder().directory(dir).index(CacheIndex.inMemory(IMAGE, 10))
                .sharedDirectory(Duration.ofHours(1)).build();
        DiskImageCache b = DiskImageCache.builder().directory(dir).index(CacheIndex.inMemory(IMAGE, 10))
                .sharedDirectory(Duration.ofHours(1)).build();
        Path lockFile = dir.resolve(DiskImageCache.LOCK_FILE);
        b.close();
        assertThat(LockProbe.tryLockFromAnotherProcess(lockFile)).isEqualTo("HELD");
        assertThatThrownBy(() -> open(IMAGE)).as("an exclusive cache beside a shared one")
                .hasMessageContaining("in use");
        a.close();
        assertThat(LockProbe.tryLockFromAnotherProcess(lockFile)).isEqualTo("FREE");
    }

    @Test
    void admit_whenAnEvictionRemovesTheFileItsInstallKept_holdsItsOwnCopyAndLaterHitsHaveTheFile() throws Exception {
        RacingIndex index = new RacingIndex(CacheIndex.inMemory(2L * IMAGE, Integer.MAX_VALUE));
        DiskImageCache cache = DiskImageCache.builder().directory(dir).index(index).build();
        try {
            byte[] x = image(IMAGE, 61);
            byte[] y = image(IMAGE, 62);
            AtomicInteger runs = new AtomicInteger();
            cache.admit(unpublished("x-old", x), filler(x, runs), Cancellation.none()).close();
            // The same bytes under a second identity: the install finds x's file and keeps it. Just
            // before the index takes the entry, another job's admission needs the room and evicts x.
            index.beforeNextAdd(() -> {
                try {
                    pool().submit(() -> cache.admit(published("y", y), filler(y, runs), Cancellation.none()).close())
                            .get(30, TimeUnit.SECONDS);
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            });

            try (CacheLease lease = cache.admit(unpublished("x-new", x), filler(x, runs), Cancellation.none())) {
                assertThat(read(lease)).isEqualTo(x);
            }
            assertThat(index.evictions()).as("the race happened").isEqualTo(1);
            try (CacheLease hit = cache.lookup(unpublished("x-new", x)).orElseThrow()) {
                assertThat(read(hit)).isEqualTo(x);
            }
            try (CacheLease hit = cache.lookup(published("y", y)).orElseThrow()) {
                assertThat(read(hit)).isEqualTo(y);
            }
            assertThat(runs).hasValue(3);
            assertThat(cache.stats().lostEntries()).isZero();
            assertThat(cache.stats().bytesInUse()).isEqualTo(2L * IMAGE);
        } finally {
            cache.close();
        }
    }

    /** The in-memory index, with a hook that runs once just before an entry is added. */
    private static final class RacingIndex implements CacheIndex {
        private final CacheIndex delegate;
        private final AtomicReference<Runnable> beforeAdd = new AtomicReference<>();

        RacingIndex(CacheIndex delegate) {
            this.delegate = delegate;
        }

        void beforeNextAdd(Runnable hook) {
            beforeAdd.set(hook);
        }

        @Override
        public Hold add(Reservation reservation, String sha256, long size) {
            Runnable hook = beforeAdd.getAndSet(null);
            if (hook != null) {
                hook.run();
            }
            return delegate.add(reservation, sha256, size);
        }

        @Override
        public void load(Contents contents, Directory directory, Evictor evictor) {
            delegate.load(contents, directory, evictor);
        }

        @Override
        public Optional<Hold> acquire(String sha256) {
            return delegate.acquire(sha256);
        }

        @Override
        public Optional<Hold> pin(String sha256) {
            return delegate.pin(sha256);
        }

        @Override
        public List<CachedImage> list() {
            return delegate.list();
        }

        @Override
        public Removal remove(String sha256, Evictor evictor) {
            return delegate.remove(sha256, evictor);
        }

        @Override
        public void drop(String sha256) {
            delegate.drop(sha256);
        }

        @Override
        public Optional<String> alias(String identity) {
            return delegate.alias(identity);
        }

        @Override
        public void putAlias(String identity, String sha256) {
            delegate.putAlias(identity, sha256);
        }

        @Override
        public Reservation reserve(long bytes, Evictor evictor) {
            return delegate.reserve(bytes, evictor);
        }

        @Override
        public long entries() {
            return delegate.entries();
        }

        @Override
        public long bytesInUse() {
            return delegate.bytesInUse();
        }

        @Override
        public long evictions() {
            return delegate.evictions();
        }

        @Override
        public void close() {
            delegate.close();
        }
    }

    @Test
    void admit_whenFileSystemHasLessThanReserve_throwsInsufficientSpaceBeforeFilling() {
        ImageCache cache = DiskImageCache.builder().directory(dir).maxBytes(10L * IMAGE)
                .reserveBytes(Long.MAX_VALUE / 2).build();
        try {
            byte[] a = image(IMAGE, 8);
            AtomicInteger runs = new AtomicInteger();
            assertThatThrownBy(() -> cache.admit(published("a", a), filler(a, runs), Cancellation.none()))
                    .isInstanceOfSatisfying(ProvisioningException.class,
                            e -> assertThat(e.code()).isEqualTo(ErrorCode.INSUFFICIENT_SPACE));
            assertThat(runs).hasValue(0);
        } finally {
            cache.close();
        }
    }

    @Test
    void afterClose_callsAreRefusedAndCloseIsIdempotent() {
        ImageCache cache = open(IMAGE);
        cache.close();
        cache.close();
        byte[] a = image(100, 1);
        assertThatThrownBy(() -> cache.lookup(published("a", a))).isInstanceOf(IllegalStateException.class);
        // The directory is free again.
        open(IMAGE);
    }

    @Test
    void builder_rejectsBadOptionsNamingThem() {
        assertThatThrownBy(() -> DiskImageCache.builder().maxBytes(0)).hasMessageContaining("maxBytes");
        assertThatThrownBy(() -> DiskImageCache.builder().maxEntries(0)).hasMessageContaining("maxEntries");
        assertThatThrownBy(() -> DiskImageCache.builder().reserveBytes(-1)).hasMessageContaining("reserveBytes");
        assertThatThrownBy(() -> DiskImageCache.builder().directory(null)).hasMessageContaining("directory");
        assertThatThrownBy(() -> DiskImageCache.builder().maxBytes(1).build()).hasMessageContaining("directory");
        assertThatThrownBy(() -> DiskImageCache.builder().directory(dir).build()).hasMessageContaining("maxBytes");
    }

    // ---------------------------------------------------------------- other processes: fill lock and shared directory

    /** A fill lock held from outside the cache, as another process would hold it. */
    private static final class ForeignFillLock implements FillLock {
        final Set<String> foreign = ConcurrentHashMap.newKeySet();
        final AtomicInteger grants = new AtomicInteger();

        @Override
        public Optional<Held> tryLock(String key) {
            if (foreign.contains(key)) {
                return Optional.empty();
            }
            grants.incrementAndGet();
            return Optional.of(() -> { });
        }
    }

    private static void awaitPolling(Thread t) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (t.getState() != Thread.State.TIMED_WAITING) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("the cache never waited for the lock; state " + t.getState());
            }
            Thread.onSpinWait();
        }
    }

    @Test
    void admit_whenAnotherProcessHoldsTheFillLock_waitsAndFillsOnceItIsReleased() throws Exception {
        ForeignFillLock fillLock = new ForeignFillLock();
        byte[] img = image(IMAGE, 81);
        CacheKey key = published("foreign.qcow2", img);
        fillLock.foreign.add(sha256(img));
        try (DiskImageCache cache = DiskImageCache.builder().directory(dir).maxBytes(10L * IMAGE)
                .fillLock(fillLock).build()) {
            AtomicInteger runs = new AtomicInteger();
            AtomicReference<Object> result = new AtomicReference<>();
            Thread t = new Thread(() -> {
                try (CacheLease lease = cache.admit(key, filler(img, runs), Cancellation.none())) {
                    result.set(read(lease));
                } catch (Throwable e) {
                    result.set(e);
                }
            });
            t.start();
            awaitPolling(t);
            assertThat(runs).hasValue(0);

            fillLock.foreign.clear(); // the other process gave up (or died and its lock expired)
            t.join(10_000);

            assertThat(result.get()).isEqualTo(img);
            assertThat(runs).hasValue(1);
            assertThat(fillLock.grants).hasValue(1);
        }
    }

    @Test
    void admit_whenAnotherProcessHoldsTheFillLock_backsOffThroughTheInjectedSleeper() {
        ForeignFillLock fillLock = new ForeignFillLock();
        byte[] img = image(IMAGE, 83);
        CacheKey key = published("foreign-sleeper.qcow2", img);
        fillLock.foreign.add(sha256(img));
        List<Duration> slept = new ArrayList<>();
        Sleeper sleeper = d -> {
            slept.add(d);
            if (slept.size() == 6) {
                fillLock.foreign.clear(); // the other process gave up after six looks
            }
        };
        try (DiskImageCache cache = DiskImageCache.builder().directory(dir).maxBytes(10L * IMAGE)
                .fillLock(fillLock).sleeper(sleeper).build()) {
            AtomicInteger runs = new AtomicInteger();
            try (CacheLease lease = cache.admit(key, filler(img, runs), Cancellation.none())) {
                assertThat(read(lease)).isEqualTo(img);
            }
            assertThat(runs).hasValue(1);
            assertThat(slept).extracting(Duration::toMillis).containsExactly(20L, 40L, 80L, 160L, 250L, 250L);
        }
    }

    @Test
    void evict_whileAnotherProcessHoldsTheImagesFillLock_isRefusedAsBeingFilled() {
        ForeignFillLock fillLock = new ForeignFillLock();
        byte[] img = image(IMAGE, 84);
        try (DiskImageCache cache = DiskImageCache.builder().directory(dir).maxBytes(10L * IMAGE)
                .fillLock(fillLock).build()) {
            cache.admit(published("foreign-evict.qcow2", img), filler(img, new AtomicInteger()), Cancellation.none())
                    .close();
            fillLock.foreign.add(sha256(img)); // another process installs the same digest now

            assertThat(cache.evict(sha256(img))).isEqualTo(CacheEviction.BEING_FILLED);
            assertThat(cache.list()).extracting(CachedImage::sha256).containsExactly(sha256(img));

            fillLock.foreign.clear();
            assertThat(cache.evict(sha256(img))).isEqualTo(CacheEviction.EVICTED);
        }
    }

    @Test
    void evict_whileThisCacheDownloadsTheImage_isRefusedAsBeingFilled() throws Exception {
        byte[] img = image(IMAGE, 85);
        CacheKey key = published("evict-filling.qcow2", img);
        try (DiskImageCache cache = DiskImageCache.builder().directory(dir).maxBytes(10L * IMAGE).build()) {
            java.util.concurrent.CountDownLatch started = new java.util.concurrent.CountDownLatch(1);
            java.util.concurrent.CountDownLatch release = new java.util.concurrent.CountDownLatch(1);
            java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newSingleThreadExecutor();
            try {
                var download = pool.submit(() -> cache.admit(key, sink -> {
                    started.countDown();
                    try {
                        release.await(30, TimeUnit.SECONDS);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        throw new IOException(e);
                    }
                    sink.write(ByteBuffer.wrap(img));
                }, Cancellation.none()));
                assertThat(started.await(30, TimeUnit.SECONDS)).isTrue();

                assertThat(cache.evict(sha256(img))).isEqualTo(CacheEviction.BEING_FILLED);

                release.countDown();
                download.get(30, TimeUnit.SECONDS).close();
            } finally {
                pool.shutdownNow();
            }
            assertThat(cache.evict(sha256(img))).isEqualTo(CacheEviction.EVICTED);
        }
    }

    @Test
    void list_stampsLastUseFromTheCachesClock_andVerificationLeavesIt() {
        SettableClock clock = new SettableClock();
        byte[] img = image(IMAGE, 86);
        CacheKey key = published("clock-list.qcow2", img);
        try (DiskImageCache cache = DiskImageCache.builder().directory(dir).maxBytes(10L * IMAGE).clock(clock)
                .build()) {
            Instant admitted = clock.instant();
            cache.admit(key, filler(img, new AtomicInteger()), Cancellation.none()).close();
            assertThat(cache.list()).extracting(CachedImage::lastUsed).containsExactly(admitted);

            clock.advance(Duration.ofMinutes(5));
            cache.lookup(key).orElseThrow().close();
            clock.advance(Duration.ofMinutes(5));
            assertThat(cache.verify(sha256(img), Cancellation.none()).ok()).containsExactly(sha256(img));

            assertThat(cache.list()).extracting(CachedImage::lastUsed).containsExactly(admitted.plus(Duration.ofMinutes(5)));
        }
    }

    @Test
    void admit_whenWaitingForAnotherProcessIsCancelled_throwsCancelledWithoutFilling() throws Exception {
        ForeignFillLock fillLock = new ForeignFillLock();
        byte[] img = image(IMAGE, 82);
        CacheKey key = unpublished("foreign-cancel.qcow2", img);
        fillLock.foreign.add("identity:" + key.identity());
        try (DiskImageCache cache = DiskImageCache.builder().directory(dir).maxBytes(10L * IMAGE)
                .fillLock(fillLock).build()) {
            AtomicInteger runs = new AtomicInteger();
            Cancellation signal = Cancellation.none();
            AtomicReference<Throwable> failure = new AtomicReference<>();
            Thread t = new Thread(() -> {
                try {
                    cache.admit(key, filler(img, runs), signal).close();
                } catch (Throwable e) {
                    failure.set(e);
                }
            });
            t.start();
            awaitPolling(t);
            signal.cancel(ErrorCode.CANCELLED, "the job was cancelled");
            t.join(10_000);

            assertThat(failure.get()).isInstanceOfSatisfying(ProvisioningException.class,
                    e -> assertThat(e.code()).isEqualTo(ErrorCode.CANCELLED));
            assertThat(runs).hasValue(0);
        }
    }

    @Test
    void open_sharedDirectory_sparesYoungTempFilesAndSweepsStaleOnes() throws IOException {
        SettableClock clock = new SettableClock();
        Path young = Files.write(dir.resolve("0123456789abcdef0123456789abcdef.tmp"), new byte[100]);
        Path stale = Files.write(dir.resolve("fedcba9876543210fedcba9876543210.tmp"), new byte[100]);
        Files.setLastModifiedTime(young, FileTime.from(clock.instant().minusSeconds(60)));
        Files.setLastModifiedTime(stale, FileTime.from(clock.instant().minus(Duration.ofHours(2))));

        try (DiskImageCache first = DiskImageCache.builder().directory(dir).index(CacheIndex.inMemory(IMAGE, 10))
                .sharedDirectory(Duration.ofHours(1)).clock(clock).build();
                DiskImageCache second = DiskImageCache.builder().directory(dir).index(CacheIndex.inMemory(IMAGE, 10))
                        .sharedDirectory(Duration.ofHours(1)).clock(clock).build()) {
            assertThat(Files.exists(young)).isTrue();
            assertThat(Files.exists(stale)).isFalse();
            assertThat(first.directory()).isEqualTo(second.directory());
        }
    }

    @Test
    void builder_sharedDirectoryWithoutSharedIndex_isRefusedNamingTheOption() {
        assertThatThrownBy(() -> DiskImageCache.builder().directory(dir).maxBytes(IMAGE)
                .sharedDirectory(Duration.ofHours(1)).build()).hasMessageContaining("sharedDirectory");
        assertThatThrownBy(() -> DiskImageCache.builder().sharedDirectory(Duration.ZERO))
                .hasMessageContaining("staleTempAfter");
        assertThatThrownBy(() -> CacheIndex.inMemory(0, 1)).hasMessageContaining("maxBytes");
        assertThatThrownBy(() -> CacheIndex.inMemory(1, 0)).hasMessageContaining("maxEntries");
    }

    // ---------------------------------------------------------------- a full file system

    @Test
    void admit_whenFileSystemFillsDuringWrite_throwsInsufficientSpaceAndStaysUsable(@TempDir Path mountPoint)
            throws Exception {
        boolean mounted = mountTmpfs(mountPoint, "8m");
        try {
            Path cacheDir = mountPoint.resolve("cache");
            DiskImageCache.Builder builder = DiskImageCache.builder().directory(cacheDir).maxBytes(64L << 20);
            if (!mounted) {
                // Fallback: a real channel that reports ENOSPC after 2 MiB.
                builder.channelOpener((p, o) -> new FullDiskChannel(FileChannel.open(p, o), 2L << 20));
            }
            try (DiskImageCache cache = builder.build()) {
                byte[] img = image(6 << 20, 12);
                Path ballast = mountPoint.resolve("ballast");
                AtomicInteger runs = new AtomicInteger();
                // The free-space check passes (8 MiB free); then another writer takes 4 MiB mid-download.
                assertThatThrownBy(() -> cache.admit(published("big", img), sink -> {
                    runs.incrementAndGet();
                    writeFrom(sink, img, 0, 1 << 20);
                    if (mounted) {
                        Files.write(ballast, new byte[4 << 20]);
                    }
                    writeFrom(sink, img, 1 << 20, img.length);
                }, Cancellation.none())).isInstanceOfSatisfying(ProvisioningException.class,
                        e -> assertThat(e.code()).isEqualTo(ErrorCode.INSUFFICIENT_SPACE));
                assertThat(runs).hasValue(1);
                try (Stream<Path> s = Files.list(cacheDir)) {
                    assertThat(s.map(p -> p.getFileName().toString())).containsExactly("lock");
                }
                assertThat(cache.stats().entries()).isZero();

                Files.deleteIfExists(ballast);
                byte[] small = image(1 << 20, 13);
                try (CacheLease lease = cache.admit(published("small", small), filler(small, runs),
                        Cancellation.none())) {
                    assertThat(read(lease)).isEqualTo(small);
                }
            }
        } finally {
            if (mounted) {
                run("umount", mountPoint.toString());
            }
        }
    }

    private static boolean mountTmpfs(Path mountPoint, String size) {
        try {
            int rc = run("mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", mountPoint.toString());
            if (rc == 0) {
                return true;
            }
            System.out.println("ENOSPC test: mount -t tmpfs exited " + rc + "; using a channel that fails like a full disk");
        } catch (IOException e) {
            System.out.println("ENOSPC test: cannot run mount (" + e + "); using a channel that fails like a full disk");
        }
        return false;
    }

    private static int run(String... cmd) throws IOException {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        try {
            if (!p.waitFor(30, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                return -1;
            }
            String out = new String(p.getInputStream().readAllBytes());
            if (p.exitValue() != 0) {
                System.out.println(String.join(" ", cmd) + ": " + out.strip());
            }
            return p.exitValue();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return -1;
        }
    }
}
