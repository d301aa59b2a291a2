package org.volprov;

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

    @Override
    void close();
}
