package org.volprov.cache;

import java.util.List;
import java.util.Optional;
import org.volprov.Cancellation;
import org.volprov.ProvisioningException;

/**
 * Verified, content-addressed images on the host's disk.
 *
 * <p>Thread-safe. An entry exists only after all its bytes were written, made durable and matched
 * the published SHA-256 (or had their digest computed when none was published). Failures are
 * {@link ProvisioningException}s: {@code CHECKSUM_MISMATCH}, {@code INSUFFICIENT_SPACE}, or the
 * code thrown by the filler.
 */
public interface ImageCache extends AutoCloseable {

    /** A lease on the entry for {@code key}, when one is cached. */
    Optional<CacheLease> lookup(CacheKey key);

    /**
     * A lease on the entry for {@code key}, running {@code filler} to download it when it is not
     * cached. Concurrent calls for one image run one filler; the others wait and share its result.
     * When the filler's caller was cancelled, or its filler found the object changed
     * ({@code IMAGE_CHANGED}), a waiter runs its own filler instead of sharing that failure. A failed
     * filler leaves nothing behind: its partial file is deleted and no entry or alias is made.
     *
     * @param cancellation the caller's signal; a waiting caller stops waiting when it is cancelled
     * @throws ProvisioningException {@code CHECKSUM_MISMATCH} when the bytes do not match the
     *     published digest, {@code INSUFFICIENT_SPACE} when the image cannot fit, or the filler's code
     */
    CacheLease admit(CacheKey key, ImageFiller filler, Cancellation cancellation);

    CacheStats stats();

    /**
     * The entries held now, least recently used first (the order eviction takes them). A snapshot:
     * entries may come and go while it is read. Reading it changes no use order.
     */
    List<CachedImage> list();

    /**
     * Removes the entry {@code sha256} and its files, unless a lease holds it or a download of it is
     * being installed; a refused eviction changes nothing. Not counted in {@link CacheStats#evictions()}.
     *
     * @throws IllegalArgumentException when {@code sha256} is not 64 lower-case hex characters
     */
    CacheEviction evict(String sha256);

    /**
     * Re-hashes the entry {@code sha256} and compares it with its digest; a damaged entry is removed
     * (or, while leased, removed once its leases close). The entry is held while it is read, so it is
     * not evicted meanwhile, and its use order is left as it was. Verifications of one cache run one
     * at a time: a second call waits for the first.
     *
     * @param cancellation checked between reads of the file; an interrupt stops the read too
     * @throws ProvisioningException {@code CANCELLED} (or the signal's code) when cancelled,
     *     {@code INTERRUPTED} when the thread is interrupted
     */
    CacheVerification verify(String sha256, Cancellation cancellation);

    /**
     * Like {@link #verify(String, Cancellation)} for every entry held when it starts, one at a time,
     * least recently used first. A cancellation stops it between (or during) entries; the entries
     * dropped until then stay dropped.
     */
    CacheVerification verifyAll(Cancellation cancellation);

    /** Releases the index; idempotent. Files stay on disk. */
    @Override
    void close();
}
