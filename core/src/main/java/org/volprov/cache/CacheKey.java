package org.volprov.cache;

import java.util.Objects;
import java.util.Optional;
import org.volprov.ImageRef;
import org.volprov.source.PublishedChecksum;

/**
 * Identifies an image for the cache. Entries are content-addressed by SHA-256; when the source
 * publishes no checksum, the object's identity (bucket, key, ETag, size) finds the digest computed
 * by an earlier download of the same unchanged object.
 *
 * @param ref the object
 * @param etag the object's ETag
 * @param size the object's size in bytes
 * @param sha256 the published digest, lower-case hex, when there is one
 */
public record CacheKey(ImageRef ref, String etag, long size, Optional<String> sha256) {
    public CacheKey {
        Objects.requireNonNull(ref, "ref");
        Objects.requireNonNull(etag, "etag");
        Objects.requireNonNull(sha256, "sha256");
        if (size < 0) {
            throw new IllegalArgumentException("size must not be negative");
        }
        sha256.ifPresent(d -> {
            if (!PublishedChecksum.isDigest(d)) {
                throw new IllegalArgumentException("sha256 must be 64 lower-case hex characters");
            }
        });
    }

    /** The identity of the object version: {@code bucket/key@etag#size}. */
    public String identity() {
        return ref.bucket() + "/" + ref.key() + "@" + etag + "#" + size;
    }
}
