package org.volprov.cache;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedByInterruptException;
import java.nio.channels.FileChannel;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.ReentrantLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.volprov.Cancellation;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;
import org.volprov.cache.CacheVerification.Outcome;
import org.volprov.cache.CacheVerification.Result;
import org.volprov.source.PublishedChecksum;

/**
 * The operator's handles on a {@link DiskImageCache}: evicting one entry and re-verifying entries
 * against their digests; and the entries found unusable, removed once no lease holds them. Both remove an entry only under the image's {@link FillLock} and only
 * when the index holds no lease on it, so nothing is deleted under a reader or under a download
 * of the same image being installed, in this process or another sharing the directory.
 * Thread-safe; verifications run one at a time.
 */
final class CacheMaintenance {
    private static final Logger LOG = LoggerFactory.getLogger(CacheMaintenance.class);
    private static final int READ_BUFFER = 1 << 20;

    private final DiskImageCache cache;
    private final CacheFiles files;
    private final CacheIndex index;
    private final FillLock fillLock;
    private final Admission admission;
    private final ReentrantLock verifying = new ReentrantLock();
    /** Entries found unusable, to remove once unleased. */
    private final Set<String> unusable = ConcurrentHashMap.newKeySet();

    CacheMaintenance(DiskImageCache cache, CacheFiles files, CacheIndex index, FillLock fillLock,
            Admission admission) {
        this.cache = cache;
        this.files = files;
        this.index = index;
        this.fillLock = fillLock;
        this.admission = admission;
    }

    /**
     * Removes the entry {@code sha256} unless it is leased or a download of it is being installed.
     * The fill lock keeps another process from installing the same digest while its files go.
     */
    CacheEviction removeUnleased(String sha256) {
        requireDigest(sha256);
        if (admission.filling(sha256)) {
            return CacheEviction.BEING_FILLED;
        }
        Optional<FillLock.Held> held = fillLock.tryLock(sha256);
        if (held.isEmpty()) {
            return CacheEviction.BEING_FILLED;
        }
        CacheEviction result;
        try (FillLock.Held h = held.get()) {
            result = switch (index.remove(sha256, cache::evictFiles)) {
                case REMOVED -> CacheEviction.EVICTED;
                case HELD -> CacheEviction.LEASED;
                case ABSENT -> CacheEviction.NOT_CACHED;
            };
        }
        if (result == CacheEviction.EVICTED || result == CacheEviction.NOT_CACHED) {
            // Gone: a later entry of the same digest is a new download, not the one found unusable.
            unusable.remove(sha256);
        }
        return result;
    }

    /** Marks an entry unusable (a lease's {@code discard}, or a damaged entry in use): removed once unleased. */
    void markUnusable(String sha256) {
        unusable.add(sha256);
    }

    /**
     * Removes an entry marked unusable if no lease holds it now: tried when the marking lease
     * closes, and again when any later lease on it does.
     */
    void dropIfUnusable(String sha256) {
        if (unusable.contains(sha256) && !cache.isClosed() && removeUnleased(sha256) == CacheEviction.EVICTED) {
            LOG.info("cache entry {} was unusable and is removed", sha256);
        }
    }

    CacheVerification verify(String sha256, Cancellation cancellation) {
        requireDigest(sha256);
        Objects.requireNonNull(cancellation, "cancellation");
        lockInterruptibly();
        try {
            return new CacheVerification(List.of(verifyOne(sha256, cancellation)));
        } finally {
            verifying.unlock();
        }
    }

    CacheVerification verifyAll(Cancellation cancellation) {
        Objects.requireNonNull(cancellation, "cancellation");
        lockInterruptibly();
        try {
            List<Result> results = new ArrayList<>();
            for (CachedImage e : index.list()) {
                results.add(verifyOne(e.sha256(), cancellation));
            }
            return new CacheVerification(results);
        } finally {
            verifying.unlock();
        }
    }

    private Result verifyOne(String sha256, Cancellation cancellation) {
        cancellation.checkpoint();
        // Pinned, not leased: a re-verification is no use, so the LRU order stays as it was.
        Optional<CacheIndex.Hold> pin = index.pin(sha256);
        if (pin.isEmpty()) {
            return new Result(sha256, Outcome.NOT_CACHED, "no such entry");
        }
        String problem;
        try {
            Optional<FileChannel> file = files.openEntry(sha256);
            if (file.isEmpty()) {
                cache.dropLost(sha256);
                return new Result(sha256, Outcome.DROPPED, "its file is gone");
            }
            try (FileChannel ch = file.get()) {
                String actual = hash(ch, sha256, cancellation);
                problem = actual.equals(sha256) ? null : "its content hashes to " + actual;
            } catch (ClosedByInterruptException e) {
                throw interrupted(sha256, e);
            } catch (IOException e) {
                problem = "its file cannot be read: " + e;
            }
        } finally {
            pin.get().release();
        }
        if (problem == null) {
            return new Result(sha256, Outcome.OK, "");
        }
        LOG.warn("cache entry {} in {} is damaged ({}): dropping it", sha256, files.directory(), problem);
        return switch (removeUnleased(sha256)) {
            case EVICTED -> new Result(sha256, Outcome.DROPPED, problem);
            case NOT_CACHED -> new Result(sha256, Outcome.DROPPED, problem + "; it was removed meanwhile");
            case LEASED, BEING_FILLED -> {
                markUnusable(sha256);
                dropIfUnusable(sha256);
                yield new Result(sha256, Outcome.DROP_PENDING, problem + "; it is leased, and is removed once"
                        + " this cache's leases on it close");
            }
        };
    }

    private static String hash(FileChannel ch, String sha256, Cancellation cancellation) throws IOException {
        MessageDigest md = CacheFiles.sha256();
        ByteBuffer buf = ByteBuffer.allocate(READ_BUFFER);
        while (true) {
            cancellation.checkpoint();
            if (Thread.currentThread().isInterrupted()) {
                throw interrupted(sha256, null);
            }
            buf.clear();
            if (ch.read(buf) < 0) {
                return CacheFiles.HEX.formatHex(md.digest());
            }
            buf.flip();
            md.update(buf);
        }
    }

    private void lockInterruptibly() {
        try {
            verifying.lockInterruptibly();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw interrupted(null, e);
        }
    }

    private static ProvisioningException interrupted(String sha256, Exception cause) {
        Thread.currentThread().interrupt();
        return new ProvisioningException(ErrorCode.INTERRUPTED, "interrupted while verifying cache entry"
                + (sha256 == null ? "s" : " " + sha256), cause);
    }

    private static void requireDigest(String sha256) {
        if (!PublishedChecksum.isDigest(sha256)) {
            throw new IllegalArgumentException("sha256 must be 64 lower-case hex characters, was " + sha256);
        }
    }
}
