package org.volprov.cache;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.Collection;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.SynchronousQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.volprov.Cancellation;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;
import org.volprov.support.DaemonThreads;
import org.volprov.support.IoErrors;

/**
 * The embedded {@link ImageCache}: verified images in a local directory ({@link CacheFiles}, whose
 * javadoc describes the layout), indexed in memory with Caffeine (or by another {@link CacheIndex}).
 *
 * <pre>{@code
 * ImageCache cache = DiskImageCache.builder()
 *         .directory(Path.of("/var/lib/volprov/cache"))
 *         .maxBytes(200L << 30)
 *         .reserveBytes(10L << 30)
 *         .build();
 * }</pre>
 *
 * <p>Opening sweeps temp files left by a crash and rebuilds the index from the directory; a
 * directory is owned by one open cache at a time (a lock file guards it, across processes too),
 * unless it is opened with {@link Builder#sharedDirectory(Duration)} over a shared index. A lease
 * holds its entry's file open, and a lookup that finds an entry's file gone drops the entry and
 * reports a miss, so that the image is fetched again.
 * {@link #admit} runs one filler per image at a time (single flight; across processes too when a
 * shared {@link FillLock} is set), reserves room in the budget (evicting unleased entries, least
 * recently used first) and checks the file system's free space before the filler runs. Thread-safe.
 */
public final class DiskImageCache implements ImageCache {
    private static final Logger LOG = LoggerFactory.getLogger(DiskImageCache.class);
    static final String LOCK_FILE = "lock";
    /**
     * A directory in the cache directory that the cache never touches: the engine keeps its own
     * state there ({@link org.volprov.Provisioner.Builder#stateDirectory}).
     */
    public static final String STATE_DIRECTORY = "state";
    private static final long WAIT_POLL_MILLIS = 20;
    private static final long LOCK_POLL_MAX_MILLIS = 250;

    private final CacheFiles files;
    private final CacheIndex index;
    private final FillLock fillLock;
    private final long reserveBytes;
    private final DirectoryLock.Handle directoryLock;
    private final ConcurrentHashMap<String, CompletableFuture<Void>> flights = new ConcurrentHashMap<>();
    /** Entries found unusable, to drop once unleased. */
    private final java.util.Set<String> discarded = ConcurrentHashMap.newKeySet();
    private final AtomicBoolean closed = new AtomicBoolean();
    private final AtomicLong pendingBytes = new AtomicLong();
    private final LongAdder hits = new LongAdder();
    private final LongAdder misses = new LongAdder();
    private final LongAdder admissions = new LongAdder();
    private final LongAdder checksumFailures = new LongAdder();
    private final LongAdder bytesDownloaded = new LongAdder();
    private final LongAdder lostEntries = new LongAdder();
    private final String description;
    /**
     * Hashes downloads while they are written. Grows with the downloads in flight and shrinks when
     * they end; after close() a hand-over runs on the thread that makes it, so a fill still being
     * written never waits for a hash that no thread will run.
     */
    private final ThreadPoolExecutor hashing = new ThreadPoolExecutor(0, Integer.MAX_VALUE, 30, TimeUnit.SECONDS,
            new SynchronousQueue<>(), DaemonThreads.named("volprov-hash"), (task, pool) -> task.run());

    private DiskImageCache(Builder b, CacheFiles files, CacheIndex index, DirectoryLock.Handle directoryLock) {
        this.files = files;
        this.index = index;
        this.fillLock = b.fillLock;
        this.reserveBytes = b.reserveBytes;
        this.directoryLock = directoryLock;
        this.description = "DiskImageCache[directory=" + files.directory()
                + (b.index == null ? ", maxBytes=" + b.maxBytes + ", maxEntries=" + b.maxEntries : ", index=" + b.index)
                + ", reserveBytes=" + b.reserveBytes + (b.staleTempAfter == null ? "" : ", shared") + "]";
    }

    /** A builder; {@code directory} and {@code maxBytes} are required. */
    public static Builder builder() {
        return new Builder();
    }

    /** The cache directory. */
    public Path directory() {
        return files.directory();
    }

    @Override
    public Optional<CacheLease> lookup(CacheKey key) {
        Objects.requireNonNull(key, "key");
        checkOpen();
        Optional<String> digest = key.sha256().or(() -> index.alias(key.identity()));
        if (digest.isEmpty()) {
            return Optional.empty();
        }
        String sha = digest.get();
        Optional<CacheIndex.Hold> hold = index.acquire(sha);
        if (hold.isEmpty()) {
            return Optional.empty();
        }
        // Held, the entry is not evicted any more: a file missing now will never come back.
        Optional<FileChannel> file = files.openEntry(sha);
        if (file.isEmpty()) {
            hold.get().release();
            dropLost(sha);
            return Optional.empty();
        }
        hits.increment();
        return Optional.of(new Lease(files.entryPath(sha), sha, key.size(), true, hold.get(), file.get(), this));
    }

    /** Forgets an entry whose file is gone, so that the next admission fetches the image again. */
    private void dropLost(String sha) {
        index.drop(sha);
        lostEntries.increment();
        LOG.warn("cache entry {} in {} had no file (removed behind the cache's back, or by an eviction that raced"
                + " with its install): dropped it, the image is fetched again", sha, files.directory());
    }

    @Override
    public CacheLease admit(CacheKey key, ImageFiller filler, Cancellation cancellation) {
        Objects.requireNonNull(key, "key");
        Objects.requireNonNull(filler, "filler");
        Objects.requireNonNull(cancellation, "cancellation");
        String flightKey = key.sha256().orElse("identity:" + key.identity());
        while (true) {
            checkOpen();
            Optional<CacheLease> cached = lookup(key);
            if (cached.isPresent()) {
                return cached.get();
            }
            cancellation.checkpoint();
            CompletableFuture<Void> mine = new CompletableFuture<>();
            CompletableFuture<Void> running = flights.putIfAbsent(flightKey, mine);
            if (running == null) {
                try {
                    return lead(key, filler, cancellation, mine);
                } finally {
                    flights.remove(flightKey, mine);
                }
            }
            Throwable failure = await(running, key, cancellation);
            if (failure == null) {
                continue; // the entry is there now; the lookup above takes a lease on it
            }
            if (failure instanceof ProvisioningException pe
                    && (pe.code() == ErrorCode.CANCELLED || pe.code() == ErrorCode.TIMED_OUT)) {
                LOG.debug("the download of {} was cancelled by its caller; downloading it for this one", key.ref());
                continue;
            }
            if (failure instanceof ProvisioningException pe && pe.code() == ErrorCode.IMAGE_CHANGED) {
                // The leader's object version changed under it. This caller's filler reads its own
                // version (possibly another object with the same digest): it fails at its first read
                // if that changed too, and its caller starts over from a fresh stat.
                LOG.debug("the object {} changed under another caller's download; trying this caller's", key.ref());
                continue;
            }
            if (failure instanceof ProvisioningException pe) {
                throw new ProvisioningException(pe.code(), pe.getMessage(), pe);
            }
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "the download of " + key.ref() + " failed: "
                    + failure, failure);
        }
    }

    /** Waits for another caller's download; null when it succeeded, else its failure. */
    private static Throwable await(CompletableFuture<Void> running, CacheKey key, Cancellation cancellation) {
        while (true) {
            cancellation.checkpoint();
            try {
                running.get(WAIT_POLL_MILLIS, TimeUnit.MILLISECONDS);
                return null;
            } catch (TimeoutException e) {
                // Poll again: the cancellation may have been signalled or its deadline passed.
            } catch (ExecutionException e) {
                return e.getCause();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new ProvisioningException(ErrorCode.CANCELLED, "interrupted while waiting for the download of "
                        + key.ref(), e);
            }
        }
    }

    private CacheLease lead(CacheKey key, ImageFiller filler, Cancellation cancellation, CompletableFuture<Void> flight) {
        try {
            CacheLease lease = fillUnderLock(key, filler, cancellation);
            flight.complete(null);
            return lease;
        } catch (RuntimeException | Error e) {
            flight.completeExceptionally(e);
            throw e;
        }
    }

    /**
     * Runs the download under the cross-process lock; while another process holds it, polls for
     * that process's entry, and takes over when the lock is released without one (its download
     * failed, or its holder died and the lock expired).
     */
    private CacheLease fillUnderLock(CacheKey key, ImageFiller filler, Cancellation cancellation) {
        String lockKey = key.sha256().orElse("identity:" + key.identity());
        long pollMillis = WAIT_POLL_MILLIS;
        while (true) {
            Optional<FillLock.Held> held = fillLock.tryLock(lockKey);
            if (held.isPresent()) {
                try (FillLock.Held h = held.get()) {
                    // Another flight (or process) may have finished between our lookup and taking the lock.
                    return lookup(key).orElseGet(() -> fill(key, filler, cancellation));
                }
            }
            cancellation.checkpoint();
            try {
                TimeUnit.MILLISECONDS.sleep(pollMillis);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new ProvisioningException(ErrorCode.CANCELLED, "interrupted while another process downloads "
                        + key.ref(), e);
            }
            pollMillis = Math.min(LOCK_POLL_MAX_MILLIS, pollMillis * 2);
            cancellation.checkpoint();
            Optional<CacheLease> cached = lookup(key);
            if (cached.isPresent()) {
                return cached.get();
            }
        }
    }

    private CacheLease fill(CacheKey key, ImageFiller filler, Cancellation cancellation) {
        long size = key.size();
        CacheIndex.Reservation room = index.reserve(size, this::evictFiles);
        long pending = pendingBytes.addAndGet(size);
        try {
            long usable = files.usableSpace();
            long others = pending - size;
            if (usable - reserveBytes - others < size) {
                throw new ProvisioningException(ErrorCode.INSUFFICIENT_SPACE, "the file system of "
                        + files.directory() + " has " + usable + " usable bytes; with reserveBytes " + reserveBytes
                        + " and " + others + " bytes of downloads in progress, an image of " + size
                        + " bytes does not fit");
            }
            misses.increment();
            CacheFiles.Fill fill = files.newFill(size, cancellation, bytesDownloaded::add, hashing);
            Path path;
            String sha;
            CacheIndex.Hold hold;
            FileChannel file;
            // The fill's temp file lives until the entry is held with its file open: it replaces an
            // existing file that an eviction removed between the install and the index taking the entry.
            try (fill) {
                try {
                    filler.fill(fill);
                } catch (IOException e) {
                    IoErrors.translate(e, "the download of " + key.ref() + " failed");
                    throw new ProvisioningException(ErrorCode.SOURCE_UNAVAILABLE, "the download of " + key.ref()
                            + " failed: " + e, e);
                }
                try {
                    sha = fill.finish(key.sha256());
                } catch (ProvisioningException e) {
                    if (e.code() == ErrorCode.CHECKSUM_MISMATCH) {
                        checksumFailures.increment();
                    }
                    throw new ProvisioningException(e.code(), key.ref() + ": " + e.getMessage(), e.getCause());
                }
                path = files.install(fill);
                hold = index.add(room, sha, size);
                try {
                    file = openInstalled(fill, sha);
                } catch (RuntimeException e) {
                    hold.release();
                    throw e;
                }
            }
            admissions.increment();
            try {
                files.writeAlias(key.identity(), sha);
                index.putAlias(key.identity(), sha);
            } catch (ProvisioningException e) {
                // The entry is sound; only the shortcut for unpublished checksums is lost, so the
                // next request for this object downloads it again instead of failing this one.
                LOG.warn("cannot record the digest of {}: {}", key.identity(), e.getMessage());
            }
            return new Lease(path, sha, size, false, hold, file, this);
        } finally {
            pendingBytes.addAndGet(-size);
            room.release();
        }
    }

    /**
     * Opens the file of an entry this fill was installed as, which the index holds now. When the
     * install kept an existing file of the same digest and an eviction removed that file before
     * the index took the entry, the fill goes in its place.
     */
    private FileChannel openInstalled(CacheFiles.Fill fill, String sha) {
        Optional<FileChannel> file = files.openEntry(sha);
        if (file.isEmpty() && !fill.installed()) {
            LOG.debug("cache entry {} was evicted while a copy was being installed; installing the copy", sha);
            files.install(fill);
            file = files.openEntry(sha);
        }
        if (file.isEmpty()) {
            index.drop(sha);
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "cache entry " + sha + " in "
                    + files.directory() + " was removed while it was being installed");
        }
        return file.get();
    }

    private void evictFiles(String sha256, Collection<String> identities) {
        LOG.debug("evicting cache entry {}", sha256);
        files.delete(sha256);
        for (String id : identities) {
            files.deleteAlias(id);
        }
    }

    @Override
    public CacheStats stats() {
        return new CacheStats(hits.sum(), misses.sum(), admissions.sum(), index.evictions(), checksumFailures.sum(),
                index.entries(), index.bytesInUse(), bytesDownloaded.sum(), lostEntries.sum());
    }

    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) {
            return;
        }
        hashing.shutdown();
        try {
            index.close();
        } finally {
            directoryLock.close();
        }
    }

    private void checkOpen() {
        if (closed.get()) {
            throw new IllegalStateException("the cache is closed");
        }
    }

    @Override
    public String toString() {
        return description;
    }

    /**
     * Drops an entry marked unusable once no lease holds it: tried when the marking lease closes,
     * and again when any later lease on it does.
     */
    private void dropIfDiscarded(String sha256) {
        if (discarded.contains(sha256) && !closed.get() && index.removeIfUnheld(sha256, this::evictFiles)) {
            discarded.remove(sha256);
            LOG.info("cache entry {} was unusable and is removed", sha256);
        }
    }

    /** A held entry; its open file keeps its bytes readable even if something unlinks it meanwhile. */
    private record Lease(Path path, String sha256, long size, boolean hit, CacheIndex.Hold hold, FileChannel file,
            DiskImageCache cache) implements CacheLease {
        @Override
        public void discard() {
            cache.discarded.add(sha256);
        }

        @Override
        public void close() {
            try {
                file.close();
            } catch (IOException e) {
                LOG.debug("closing cache entry {}", sha256, e);
            } finally {
                hold.release();
                cache.dropIfDiscarded(sha256);
            }
        }
    }

    /** Builds a {@link DiskImageCache}; each option is checked when set, and its message names it. */
    public static final class Builder {
        private Path directory;
        private long maxBytes = -1;
        private int maxEntries = Integer.MAX_VALUE;
        private long reserveBytes;
        private boolean verifyOnOpen;
        private CacheIndex index;
        private FillLock fillLock = FillLock.LOCAL;
        private Duration staleTempAfter;
        private Clock clock = Clock.systemUTC();
        private CacheFiles.ChannelOpener opener;

        private Builder() {
        }

        /** The cache directory, created when missing; required. Give the cache a directory of its own. */
        public Builder directory(Path directory) {
            this.directory = Objects.requireNonNull(directory, "directory");
            return this;
        }

        /** The byte budget of all entries; required, positive. */
        public Builder maxBytes(long maxBytes) {
            if (maxBytes <= 0) {
                throw new IllegalArgumentException("maxBytes must be positive, was " + maxBytes);
            }
            this.maxBytes = maxBytes;
            return this;
        }

        /** The most entries held at once; positive; default unlimited. */
        public Builder maxEntries(int maxEntries) {
            if (maxEntries <= 0) {
                throw new IllegalArgumentException("maxEntries must be positive, was " + maxEntries);
            }
            this.maxEntries = maxEntries;
            return this;
        }

        /** Free space the cache leaves on its file system for others; not negative; default 0. */
        public Builder reserveBytes(long reserveBytes) {
            if (reserveBytes < 0) {
                throw new IllegalArgumentException("reserveBytes must not be negative, was " + reserveBytes);
            }
            this.reserveBytes = reserveBytes;
            return this;
        }

        /** Re-hash every entry when opening, dropping those whose content changed; default false (size check only). */
        public Builder verifyOnOpen(boolean verifyOnOpen) {
            this.verifyOnOpen = verifyOnOpen;
            return this;
        }

        /**
         * An index to use instead of the in-memory Caffeine one (a shared index); it then owns the
         * budget, and {@code maxBytes} and {@code maxEntries} are not used. The cache closes it.
         */
        public Builder index(CacheIndex index) {
            this.index = Objects.requireNonNull(index, "index");
            return this;
        }

        /**
         * The lock that makes single flight hold across processes sharing the directory; default
         * {@link FillLock#LOCAL} (within this cache only).
         */
        public Builder fillLock(FillLock fillLock) {
            this.fillLock = Objects.requireNonNull(fillLock, "fillLock");
            return this;
        }

        /**
         * Lets several caches, in several processes on one host, use the directory at once; needs a
         * shared {@link #index(CacheIndex)} (two private indexes would evict each other's files). The
         * directory's lock file is then taken shared, so only a cache that does not share it is kept
         * out, and the sweep at open spares files younger than {@code staleTempAfter}: another
         * process's download in progress or entry being installed. A temp file left by a process
         * that died is removed by the first open after it is that old. Within one JVM the caches
         * that share a directory share one lock on it, held until the last of them closes.
         *
         * @param staleTempAfter positive; pick it well above the longest pause of a download (one
         *     hour is a safe default); a download's temp file is touched by every write
         */
        public Builder sharedDirectory(Duration staleTempAfter) {
            Objects.requireNonNull(staleTempAfter, "staleTempAfter");
            if (staleTempAfter.isNegative() || staleTempAfter.isZero()) {
                throw new IllegalArgumentException("staleTempAfter must be positive, was " + staleTempAfter);
            }
            this.staleTempAfter = staleTempAfter;
            return this;
        }

        /** The clock the age of files is read against in a shared directory; default the system's UTC clock. */
        public Builder clock(Clock clock) {
            this.clock = Objects.requireNonNull(clock, "clock");
            return this;
        }

        /** A channel factory for the cache's data files; for tests that simulate a failing disk. */
        Builder channelOpener(CacheFiles.ChannelOpener opener) {
            this.opener = opener;
            return this;
        }

        /**
         * Opens the cache: takes the directory's lock, sweeps it and loads the index.
         *
         * @throws IllegalStateException when {@code directory} or {@code maxBytes} is missing, or
         *     {@code sharedDirectory} is set without an {@code index}
         * @throws ProvisioningException {@code BACKEND_FAILURE} when the directory cannot be used or
         *     another cache holds it
         */
        public DiskImageCache build() {
            if (directory == null) {
                throw new IllegalStateException("directory is required");
            }
            if (maxBytes < 0 && index == null) {
                throw new IllegalStateException("maxBytes is required");
            }
            if (staleTempAfter != null && index == null) {
                throw new IllegalStateException("sharedDirectory needs a shared index: set index(...)");
            }
            boolean shared = staleTempAfter != null;
            CacheFiles files = opener == null ? CacheFiles.open(directory) : CacheFiles.open(directory, opener);
            DirectoryLock.Handle directoryLock = DirectoryLock.acquire(files.directory(), LOCK_FILE, shared);
            CacheIndex idx = index != null ? index : new CaffeineCacheIndex(maxBytes, maxEntries);
            try {
                CacheFiles.Contents contents = shared
                        ? files.scan(verifyOnOpen, clock.instant().minus(staleTempAfter))
                        : files.scan(verifyOnOpen);
                if (contents.removed() > 0) {
                    LOG.info("cache {}: removed {} stray or damaged files", files.directory(), contents.removed());
                }
                DiskImageCache cache = new DiskImageCache(this, files, idx, directoryLock);
                idx.load(contents, cache::evictFiles);
                return cache;
            } catch (RuntimeException e) {
                directoryLock.close();
                throw e;
            }
        }
    }
}
