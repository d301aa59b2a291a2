package org.volprov.source;

import java.time.Instant;
import java.util.Objects;

/**
 * What a source says about an object.
 *
 * @param size the object's size in bytes
 * @param etag the source's entity tag (quotes removed), never blank: reads after the first are
 *     conditional on it, and the cache knows an unpublished image's version by it
 * @param lastModified when the object was last written, or {@link Instant#EPOCH} when unknown
 */
public record ObjectInfo(long size, String etag, Instant lastModified) {
    public ObjectInfo {
        if (size < 0) {
            throw new IllegalArgumentException("size must not be negative");
        }
        etag = Objects.requireNonNull(etag, "etag").replace("\"", "");
        if (etag.isBlank()) {
            throw new IllegalArgumentException("etag must not be blank");
        }
        Objects.requireNonNull(lastModified, "lastModified");
    }
}
