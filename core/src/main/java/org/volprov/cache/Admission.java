package org.volprov.cache;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.volprov.Cancellation;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;
import org.volprov.Sleeper;
import org.volprov.support.IoErrors;

/**
 * How a {@link DiskImageCache} admits an image it does not hold: one download per image at a time
 * (single flight in this process, and across processes through the {@link FillLock}), room reserved
 * in the index's budget and on the file system before the filler runs, and the verified file
 * installed and held. Thread-safe.
 */
final class Admission {
    private static final Logger LOG = LoggerFactory.getLogger(Admission.class);
    private static final long WAIT_POLL_MILLIS = 20;
    private static final long LOCK_POLL_MAX_MILLIS = 250;

    private final DiskImageCache cache;
    private final CacheFiles files;
    private final CacheIndex index;
    private final FillLock fillLock;
    private final Sleeper sleeper;
    private final long reserveBytes;
    private final Executor hashing;
    private final ConcurrentHashMap<String, CompletableFuture<Void>> flights = new ConcurrentHashMap<>();
    private final AtomicLong pendingBytes = new AtomicLong();
    final LongAdder misses = new LongAdder();
    final LongAdder admissions = new LongAdder();
    final LongAdder checksumFailures = new LongAdder();
    final LongAdder bytesDownloaded = new LongAdder();

    Admission(DiskImageCache cache, CacheFiles files, CacheIndex index, FillLock fillLock, Sleeper sleeper,
            long reserveBytes, Executor hashing) {
        this.cache = cache;
        this.files = files;
        this.index = index;
        this.fillLock = fillLock;
        this.sleeper = sleeper;
        this.reserveBytes = reserveBytes;
        this.hashing = hashing;
    }

    /** Whether a download of the image with digest {@code sha256} runs in this process now. */
    boolean filling(String sha256) {
        return flights.containsKey(sha256);
    }

    /** See {@link DiskImageCache#admit}. */
    CacheLease admit(CacheKey key, ImageFiller filler, Cancellation cancellation) {
        Objects.requireNonNull(key, "key");
        Objects.requireNonNull(filler, "filler");
        Objects.requireNonNull(cancellation, "cancellation");
        String flightKey = key.sha256().orElse("identity:" + key.identity());
        while (true) {
            Optional<CacheLease> cached = cache.lookup(key);
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
                    return cache.lookup(key).orElseGet(() -> fill(key, filler, cancellation));
                }
            }
            cancellation.checkpoint();
            try {
                sleeper.sleep(Duration.ofMillis(pollMillis));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new ProvisioningException(ErrorCode.CANCELLED, "interrupted while another process downloads "
                        + key.ref(), e);
            }
            pollMillis = Math.min(LOCK_POLL_MAX_MILLIS, pollMillis * 2);
            cancellation.checkpoint();
            Optional<CacheLease> cached = cache.lookup(key);
            if (cached.isPresent()) {
                return cached.get();
            }
        }
    }

    private CacheLease fill(CacheKey key, ImageFiller filler, Cancellation cancellation) {
        long size = key.size();
        CacheIndex.Reservation room = index.reserve(size, cache::evictFiles);
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
            Fill fill = files.newFill(size, cancellation, bytesDownloaded::add, hashing);
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
            return new EntryLease(path, sha, size, false, hold, file, cache.maintenance());
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
    private FileChannel openInstalled(Fill fill, String sha) {
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
}
