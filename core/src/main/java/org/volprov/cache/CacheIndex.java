package org.volprov.cache;

import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * The bookkeeping half of a disk image cache: which entries exist, which are leased, their use
 * order, the byte and entry budget, and the identity aliases. The files themselves belong to
 * the cache; an index sees them as the {@link Contents} and the {@link Directory} it is loaded
 * with, and deletes an entry's files only through the {@link Evictor} it is given, and only when
 * no lease is open on it.
 *
 * <p>The default is an in-memory index on Caffeine (built by {@link DiskImageCache#builder()}); a
 * shared index (Redis) implements this interface and is handed to
 * {@link DiskImageCache.Builder#index(CacheIndex)}, reusing the file handling unchanged.
 *
 * <p>Implementations are thread-safe. Arguments are never null; digests are 64 lower-case hex.
 */
public interface CacheIndex extends AutoCloseable {

    /**
     * The in-memory index that {@link DiskImageCache} uses by default, for a shared index to fall
     * back on while its store is unreachable.
     *
     * @param maxBytes the byte budget, positive
     * @param maxEntries the most entries, positive
     */
    static CacheIndex inMemory(long maxBytes, int maxEntries) {
        if (maxBytes <= 0) {
            throw new IllegalArgumentException("maxBytes must be positive, was " + maxBytes);
        }
        if (maxEntries <= 0) {
            throw new IllegalArgumentException("maxEntries must be positive, was " + maxEntries);
        }
        return new CaffeineCacheIndex(maxBytes, maxEntries, Clock.systemUTC());
    }

    /**
     * Removes an entry's files; called by the index for each entry it evicts, with the identities
     * whose aliases pointed at it (the index has forgotten them already).
     */
    @FunctionalInterface
    interface Evictor {
        void evict(String sha256, java.util.Collection<String> identities);
    }

    /** An entry found on disk. {@code lastUsed} is the data file's modification time. */
    record Entry(String sha256, long size, Instant lastUsed) {
        public Entry {
            Objects.requireNonNull(sha256, "sha256");
            Objects.requireNonNull(lastUsed, "lastUsed");
        }
    }

    /** An identity alias found on disk: the object version {@code identity} has content {@code sha256}. */
    record Alias(String identity, String sha256) {
        public Alias {
            Objects.requireNonNull(identity, "identity");
            Objects.requireNonNull(sha256, "sha256");
        }
    }

    /** What is valid in the directory: entries oldest use first, and the aliases whose entry exists. */
    record Contents(List<Entry> entries, List<Alias> aliases) {
        public Contents {
            entries = List.copyOf(entries);
            aliases = List.copyOf(aliases);
        }
    }

    /**
     * The cache's directory as an index may consult it after {@link #load}: a shared index does when
     * it rebuilds itself after its store was unreachable. Thread-safe.
     */
    interface Directory {
        /** The directory, absolute; for messages. */
        Path path();

        /**
         * What is valid on disk now: a sweep that spares what other processes sharing the directory
         * are still writing.
         */
        Contents scan();

        /** Whether the data file of the entry {@code sha256} is on disk. */
        boolean contains(String sha256);
    }

    /** A hold on an entry; the entry is neither evicted nor deleted until it is released. */
    interface Hold {
        /** Releases the hold; idempotent. */
        void release();
    }

    /** Room set aside for one download, until it becomes an entry or is released. */
    interface Reservation {
        long bytes();

        /** Gives the room back, when the download failed; idempotent, and a no-op after {@link #add}. */
        void release();
    }

    /**
     * Called once, before any other method, with what the sweep at open found in {@code directory}.
     * Entries come oldest use first, and the index takes them in that order as its use order.
     * Entries beyond the budget are evicted through {@code evictor}.
     */
    void load(Contents contents, Directory directory, Evictor evictor);

    /** A hold on the entry {@code sha256}, marking it as used now; empty when there is no such entry. */
    Optional<Hold> acquire(String sha256);

    /**
     * A hold on the entry {@code sha256} that leaves its use order and last use as they were (for a
     * re-verification); empty when there is no such entry.
     */
    Optional<Hold> pin(String sha256);

    /**
     * What the index knows of each entry now, least recently used first. {@code leases} counts the
     * holds taken through this index object; {@code leasesElsewhere} those of other processes, or
     * empty when the index cannot see them.
     */
    List<CachedImage> list();

    /**
     * Forgets the entry {@code sha256} and the aliases pointing at it, whoever holds it: its file was
     * found gone, so the entry no longer exists whatever the index says. Does nothing when there is
     * no such entry. The files are not touched (there are none).
     */
    void drop(String sha256);

    /** The digest recorded for the object version {@code identity}, if any. */
    Optional<String> alias(String identity);

    /** Records that {@code identity} has content {@code sha256} (the cache persists it in the directory). */
    void putAlias(String identity, String sha256);

    /**
     * Sets aside room for {@code bytes} (and one entry), evicting unleased entries, least recently
     * used first, through {@code evictor} as needed. Evicts nothing when even evicting every unleased
     * entry would not make room.
     *
     * @throws org.volprov.ProvisioningException {@code INSUFFICIENT_SPACE} when the room cannot be made
     */
    Reservation reserve(long bytes, Evictor evictor);

    /**
     * Turns a reservation into the entry {@code sha256} of {@code size} bytes, held for the caller.
     * When the entry exists already the reservation is released and the existing entry held.
     */
    Hold add(Reservation reservation, String sha256, long size);

    /** What {@link #remove} did. */
    enum Removal {
        /** The entry is forgotten and its files removed through the evictor. */
        REMOVED,
        /** A hold is open on it (or the index cannot rule one out); nothing changed. */
        HELD,
        /** There was no such entry. */
        ABSENT
    }

    /**
     * Forgets the entry {@code sha256} and removes its files through {@code evictor}, when no hold
     * is open on it (an entry found unusable, or one an operator evicts); not counted as an eviction.
     */
    Removal remove(String sha256, Evictor evictor);

    /** Entries held now. */
    long entries();

    /** Bytes held now by entries. */
    long bytesInUse();

    /** Entries evicted since the index was loaded. */
    long evictions();

    /** Releases the index's resources; idempotent. */
    @Override
    void close();
}
