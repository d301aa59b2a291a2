package org.volprov;

import java.time.Instant;
import java.util.Objects;

/**
 * What a source says about an object.
 *
 * @param size the object's size in bytes
 * @param etag the source's entity tag (quotes removed), never null; empty when the source has none
 * @param lastModified when the object was last written, or {@link Instant#EPOCH} when unknown
 */
public record ObjectInfo(long size, String etag, Instant lastModified) {
    public ObjectInfo {
        if (size < 0) {
            throw new IllegalArgumentException("size must not be negative");
        }
        etag = Objects.requireNonNull(etag, "etag").replace("\"", "");
        Objects.requireNonNull(lastModified, "lastModified");
    }
}
