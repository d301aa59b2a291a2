package org.volprov.internal.qcow2;

import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * Where a decoder puts a disk's content: guest bytes at guest offsets. Two kinds, by
 * {@link #order()}:
 *
 * <ul>
 *   <li>{@link Order#ANY}, positional (a local block device or file): calls come in any order; a
 *       range may be delivered more than once, always with the same content;</li>
 *   <li>{@link Order#GUEST}, a stream that cannot seek (libvirt's upload stream): calls tile
 *       {@code [0, virtualSize)} exactly once, in increasing order, each starting where the last
 *       ended.</li>
 * </ul>
 *
 * <p>Every byte of the virtual size is delivered, as {@link #data} or as {@link #zero}; a sink
 * whose target reads as zero already may skip zero ranges. A decoder calls its sink from one thread
 * at a time (the thread that drives it); an {@link IOException} ends the decode and reaches its
 * caller.
 */
public interface GuestSink {

    /** How a sink takes its writes. */
    enum Order {
        /** Positional writes in any order. */
        ANY,
        /** Contiguous writes in increasing guest order, each byte once. */
        GUEST
    }

    Order order();

    /** Writes the remaining bytes of {@code bytes} at {@code guestOffset}; the buffer is not kept after the call. */
    void data(long guestOffset, ByteBuffer bytes) throws IOException;

    /** {@code length} bytes from {@code guestOffset} read as zero. */
    void zero(long guestOffset, long length) throws IOException;
}
