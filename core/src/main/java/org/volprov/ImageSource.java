package org.volprov;

import java.io.InputStream;
import java.net.URI;
import java.util.Optional;

/**
 * Where images come from: an object store (S3, MinIO) or a local directory laid out the same way.
 *
 * <p>Implementations are thread-safe: the engine calls them from several jobs at once. Arguments
 * are never null. Every failure is a {@link ProvisioningException}: {@code IMAGE_NOT_FOUND} for a
 * missing bucket or object, {@code ACCESS_DENIED} for refused credentials, and
 * {@code SOURCE_UNAVAILABLE} (which the engine retries) for connection failures, timeouts and
 * server errors; the vendor exception is kept as the cause.
 */
public interface ImageSource extends AutoCloseable {

    /** Size, ETag and last-modified time of the object. */
    ObjectInfo stat(ImageRef ref);

    /**
     * The SHA-256 published in the {@code <key>.sha256} sibling object, lower-case hex, parsed by
     * {@link PublishedChecksum}. Empty when the sibling is absent or holds no digest.
     */
    Optional<String> publishedChecksum(ImageRef ref);

    /**
     * Opens {@code length} bytes of the object starting at {@code offset}. The caller closes the
     * stream. A stream that ends early or throws an {@link java.io.IOException} mid-way can be
     * resumed by opening again at the next offset.
     */
    InputStream open(ImageRef ref, long offset, long length);

    /**
     * The endpoint that {@code http(s)} image URIs must name; empty when the source accepts only
     * {@code s3://} URIs.
     */
    default Optional<URI> endpoint() {
        return Optional.empty();
    }

    /** Releases connections; idempotent. */
    @Override
    default void close() {
    }
}
