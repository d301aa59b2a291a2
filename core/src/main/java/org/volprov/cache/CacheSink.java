package org.volprov.cache;

import java.io.IOException;
import java.nio.ByteBuffer;
import org.volprov.ProvisioningException;

/**
 * Where an {@link ImageFiller} writes an image's bytes, in order. The cache hashes the bytes as
 * they are written, so a filler that loses its connection resumes at {@link #position()} without
 * anything being hashed twice. Used by one thread at a time.
 */
public interface CacheSink {

    /** How many bytes have been written; the offset the next write lands at. */
    long position();

    /** The object's size: the filler must write exactly this many bytes. */
    long size();

    /**
     * Writes all remaining bytes of {@code src}.
     *
     * @throws ProvisioningException {@code INSUFFICIENT_SPACE} when the file system is full, or when
     *     more than {@link #size()} bytes are written
     * @throws IOException for other write failures
     */
    void write(ByteBuffer src) throws IOException;
}
