package org.volprov.cache;

import java.util.Optional;

/**
 * Single flight across processes: which cache runs the download of an image when several caches
 * (in several processes) share one directory. A {@link DiskImageCache} already runs one download
 * per image within its process; before that download starts it asks this lock, and while another
 * process holds it the cache polls its index until that process's entry appears or the lock is
 * free again (then this process downloads, for instance after the holder died).
 *
 * <p>The default, {@link #LOCAL}, grants every request: one process needs nothing more. A shared
 * implementation (Redis) hands it to {@link DiskImageCache.Builder#fillLock(FillLock)}.
 *
 * <p>Implementations are thread-safe and never block long in {@link #tryLock}. A lock that cannot
 * be consulted (its store is down) should be granted rather than refused: the worst case is then
 * two downloads of one image, which the cache tolerates (the second install keeps the first file).
 */
@FunctionalInterface
public interface FillLock {

    /** Grants every request: the cache's in-process single flight is all the coordination there is. */
    FillLock LOCAL = key -> Optional.of(() -> { });

    /**
     * Takes the lock for one download, or returns empty when another process holds it.
     *
     * @param key a 64-hex digest, or {@code identity:} followed by an object identity (of any
     *     length and characters) when no digest was published; never null
     */
    Optional<Held> tryLock(String key);

    /** A held lock; the holder keeps it (renewing it if it expires) until it is closed. */
    @FunctionalInterface
    interface Held extends AutoCloseable {
        /** Releases the lock; idempotent; throws nothing. */
        @Override
        void close();
    }
}
