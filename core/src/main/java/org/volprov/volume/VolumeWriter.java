package org.volprov.volume;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Optional;

/**
 * Writes a volume's bytes from offset 0 onwards. Used by one thread. Nothing written is durable
 * until {@link #finish()} returns; {@link #close()} without {@code finish()} aborts.
 */
public interface VolumeWriter extends AutoCloseable {

    /**
     * The volume's local path (a pool file or a block device), when the converter may write onto
     * it directly. The path already exists; nothing may create it.
     */
    Optional<Path> localPath();

    /** The offset the next write lands at. */
    long position();

    /** Writes all remaining bytes of {@code src} at {@link #position()}. */
    void write(ByteBuffer src) throws IOException;

    /** Makes the next {@code length} bytes read as zero, by the cheapest means the target has. */
    void writeZeros(long length) throws IOException;

    /**
     * Moves past {@code length} bytes that already hold the right content (written in place
     * through {@link #localPath()}, or known to read as zero). A writer that cannot skip writes zeros.
     */
    void skip(long length) throws IOException;

    /** Makes everything written durable (fsync, or the end of an upload stream). */
    void finish() throws IOException;

    /** Releases the target; aborts an unfinished upload. Idempotent. */
    @Override
    void close();
}
