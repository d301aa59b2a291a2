package org.volprov.source;

import java.io.InputStream;
import java.net.URI;
import java.util.Optional;
import org.volprov.ImageRef;
import org.volprov.ProvisioningException;

/**
 * Where images come from: an object store (S3, MinIO) or a local directory laid out the same way.
 *
 * <p>Implementations are thread-safe: the engine calls them from several jobs at once. Arguments
 * are never null. Every failure is a {@link ProvisioningException}: {@code IMAGE_NOT_FOUND} for a
 * missing bucket or object, {@code ACCESS_DENIED} for refused credentials, {@code SOURCE_REFUSED}
 * for a permanent refusal (HTTP 400, 405, 501, an archived object...) or an answer that cannot be
 * used safely, {@code IMAGE_CHANGED} when the object is no longer the version {@link #stat} named,
 * and {@code SOURCE_UNAVAILABLE} (which the engine retries) for connection failures, timeouts,
 * throttling and server errors; the vendor exception is kept as the cause.
 */
public interface ImageSource extends AutoCloseable {

    /**
     * Size, ETag and last-modified time of the object.
     *
     * @throws ProvisioningException {@code SOURCE_REFUSED} when the source does not state the
     *     object's size or ETag (a missing, negative or absurd {@code Content-Length}): an object of
     *     unknown size or identity is never taken as empty or as unchanged
     */
    ObjectInfo stat(ImageRef ref);

    /**
     * The SHA-256 published in the {@code <key>.sha256} sibling object, lower-case hex, parsed by
     * {@link PublishedChecksum}. Empty when the sibling is absent or holds no digest.
     *
     * @throws ProvisioningException {@code ACCESS_DENIED} when the source refuses the sibling. A
     *     bucket policy that grants {@code GetObject} without {@code ListBucket} makes S3 answer 403
     *     rather than 404 for a missing object, so the engine takes a refused sibling of an object
     *     it could {@link #stat} as "not published", unless it is told to require a checksum
     */
    Optional<String> publishedChecksum(ImageRef ref);

    /**
     * Opens {@code length} bytes of the object starting at {@code offset}, provided the object is
     * still the version whose ETag {@link #stat} returned. The caller closes the stream. A stream
     * that ends early or throws an {@link java.io.IOException} mid-way can be resumed by opening
     * again at the next offset with the same ETag.
     *
     * <p>Every read is conditional on {@code etag} (S3 {@code If-Match}), and the ETag the source
     * answers with is compared with it too, so a server that ignores the condition is caught as
     * well. Bytes of two versions are never delivered as one range.
     *
     * @param etag the ETag from {@link ObjectInfo#etag()}, as {@link #stat} returned it
     * @throws ProvisioningException {@code IMAGE_CHANGED} when the object is no longer that
     *     version, at open or from a read of the stream; the caller must start over from a fresh
     *     {@link #stat} and must not keep the bytes it read under the old identity
     */
    InputStream open(ImageRef ref, String etag, long offset, long length);

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
