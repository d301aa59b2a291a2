package org.volprov.cache;

import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.Collection;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.SynchronousQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.LongAdder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.volprov.Cancellation;
import org.volprov.ProvisioningException;
import org.volprov.Sleeper;
import org.volprov.support.DaemonThreads;

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
 * recently used first) and checks the file system's free space before the filler runs
 * ({@link Admission}). {@link #list}, {@link #evict} and {@link #verify} are the operator's handles
 * ({@link CacheMaintenance}). Thread-safe.
 */
public final class DiskImageCache implements ImageCache {
    private static final Logger LOG = LoggerFactory.getLogger(DiskImageCache.class);
    static final String LOCK_FILE = "lock";
    /**
     * A directory in the cache directory that the cache never touches: the engine keeps its own
     * state there ({@link org.volprov.Provisioner.Builder#stateDirectory}).
     */
    public static final String STATE_DIRECTORY = "state";

    private final CacheFiles files;
    private final CacheIndex index;
    private final Admission admission;
    private final CacheMaintenance maintenance;
    private final DirectoryLock.Handle directoryLock;
    private final AtomicBoolean closed = new AtomicBoolean();
    private final LongAdder hits = new LongAdder();
    private final LongAdder lostEntries = new LongAdder();
    private final String description;
    /**
     * Hashes and writes downloads while they arrive, and flushes their files in the background.
     * Grows with the downloads in flight and shrinks when they end; after close() a hand-over runs on the thread that makes it, so a fill still being
     * written never waits for a hash that no thread will run.
     */
    private final ThreadPoolExecutor hashing = new ThreadPoolExecutor(0, Integer.MAX_VALUE, 30, TimeUnit.SECONDS,
            new SynchronousQueue<>(), DaemonThreads.named("volprov-hash"), (task, pool) -> task.run());

    private DiskImageCache(Builder b, CacheFiles files, CacheIndex index, DirectoryLock.Handle directoryLock) {
        this.files = files;
        this.index = index;
        this.admission = new Admission(this, files, index, b.fillLock, b.sleeper, b.reserveBytes, hashing);
        this.maintenance = new CacheMaintenance(this, files, index, b.fillLock, admission);
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
        return Optional.of(new EntryLease(files.entryPath(sha), sha, key.size(), true, hold.get(), file.get(),
                maintenance));
    }

    /** Forgets an entry whose file is gone, so that the next admission fetches the image again. */
    void dropLost(String sha) {
        index.drop(sha);
        lostEntries.increment();
        LOG.warn("cache entry {} in {} had no file (removed behind the cache's back, or by an eviction that raced"
                + " with its install): dropped it, the image is fetched again", sha, files.directory());
    }

    @Override
    public CacheLease admit(CacheKey key, ImageFiller filler, Cancellation cancellation) {
        return admission.admit(key, filler, cancellation);
    }

    void evictFiles(String sha256, Collection<String> identities) {
        LOG.debug("evicting cache entry {}", sha256);
        files.delete(sha256);
        for (String id : identities) {
            files.deleteAlias(id);
        }
    }

    @Override
    public List<CachedImage> list() {
        checkOpen();
        return index.list();
    }

    @Override
    public CacheEviction evict(String sha256) {
        checkOpen();
        CacheEviction result = maintenance.removeUnleased(sha256);
        if (result == CacheEviction.EVICTED) {
            LOG.info("cache entry {} in {} evicted on request", sha256, files.directory());
        }
        return result;
    }

    @Override
    public CacheVerification verify(String sha256, Cancellation cancellation) {
        checkOpen();
        return maintenance.verify(sha256, cancellation);
    }

    @Override
    public CacheVerification verifyAll(Cancellation cancellation) {
        checkOpen();
        return maintenance.verifyAll(cancellation);
    }

    @Override
    public CacheStats stats() {
        return new CacheStats(hits.sum(), admission.misses.sum(), admission.admissions.sum(), index.evictions(),
                admission.checksumFailures.sum(), index.entries(), index.bytesInUse(), admission.bytesDownloaded.sum(),
                lostEntries.sum());
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

    boolean isClosed() {
        return closed.get();
    }

    CacheMaintenance maintenance() {
        return maintenance;
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
        private Sleeper sleeper = Sleeper.SYSTEM;
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

        /**
         * How the cache waits between looks at another process's download of an image it needs;
         * default {@link Sleeper#SYSTEM}. Tests give one that advances a clock.
         */
        public Builder sleeper(Sleeper sleeper) {
            this.sleeper = Objects.requireNonNull(sleeper, "sleeper");
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
            CacheIndex idx = index != null ? index : new CaffeineCacheIndex(maxBytes, maxEntries, clock);
            try {
                CacheFiles.Scan scan = shared
                        ? files.scan(verifyOnOpen, clock.instant().minus(staleTempAfter))
                        : files.scan(verifyOnOpen);
                if (scan.removed() > 0) {
                    LOG.info("cache {}: removed {} stray or damaged files", files.directory(), scan.removed());
                }
                DiskImageCache cache = new DiskImageCache(this, files, idx, directoryLock);
                idx.load(scan.contents(), new IndexDirectory(files, shared ? staleTempAfter : null, clock),
                        cache::evictFiles);
                return cache;
            } catch (RuntimeException e) {
                directoryLock.close();
                throw e;
            }
        }
    }
}
