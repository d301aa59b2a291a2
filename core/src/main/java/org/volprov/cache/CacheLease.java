package org.volprov.cache;

import java.nio.file.Path;

/**
 * A verified cache entry held for use. While a lease is open the entry is neither evicted nor
 * deleted. Close it when the image has been written to the volume; closing twice does nothing.
 */
public interface CacheLease extends AutoCloseable {

    /** The entry's file: read it, never write it. */
    Path path();

    /** The entry's SHA-256, lower-case hex. */
    String sha256();

    /** The entry's size in bytes. */
    long size();

    /** True when this caller did not download the image (it was cached, or another caller fetched it). */
    boolean hit();

    /**
     * Marks the entry unusable: its bytes matched their checksum, but the image cannot be
     * provisioned (a corrupt table found after admission). It leaves the cache as soon as no lease
     * holds it, so it holds no budget; this lease still needs closing. Idempotent. A cache that
     * cannot drop an entry early keeps it until it is evicted (the default).
     */
    default void discard() {
    }

    @Override
    void close();
}
