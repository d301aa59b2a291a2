package org.volprov.cache;

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

    /** Releases the index; idempotent. Files stay on disk. */
    @Override
    void close();
}
