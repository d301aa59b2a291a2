package org.volprov.internal.qcow2;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;
import org.volprov.internal.Writeback;

/**
 * A positional {@link GuestSink} on a file or block device: data written at its guest offset, zero
 * ranges skipped when the target reads as zero already, else written as zeros. Nothing is ever
 * written at or past {@code capacity}. Nothing is flushed: the volume writer makes it durable.
 * Used by one thread; the channel stays the caller's.
 */
public final class ChannelSink implements GuestSink {
    private static final int ZEROS = 1 << 20;

    private final FileChannel target;
    private final long capacity;
    private final boolean targetIsZero;
    private final Writeback writeback;
    private ByteBuffer zeros;

    /**
     * @param capacity bytes of the target that may be written (the virtual size)
     * @param targetIsZero whether the target reads as zero, so zero ranges need no write
     */
    public ChannelSink(FileChannel target, long capacity, boolean targetIsZero) {
        this(target, capacity, targetIsZero, null);
    }

    /**
     * @param writeback told of every byte written, to flush the target in the background; null for none
     */
    public ChannelSink(FileChannel target, long capacity, boolean targetIsZero, Writeback writeback) {
        this.target = target;
        this.capacity = capacity;
        this.targetIsZero = targetIsZero;
        this.writeback = writeback;
    }

    @Override
    public Order order() {
        return Order.ANY;
    }

    @Override
    public void data(long guestOffset, ByteBuffer bytes) throws IOException {
        check(guestOffset, bytes.remaining());
        long at = guestOffset;
        while (bytes.hasRemaining()) {
            at += target.write(bytes, at);
        }
        wrote(at - guestOffset);
    }

    @Override
    public void zero(long guestOffset, long length) throws IOException {
        check(guestOffset, length);
        if (targetIsZero) {
            return;
        }
        if (zeros == null) {
            zeros = ByteBuffer.allocateDirect(ZEROS);
        }
        for (long at = guestOffset, end = guestOffset + length; at < end; ) {
            ByteBuffer z = zeros.clear().limit((int) Math.min(ZEROS, end - at));
            while (z.hasRemaining()) {
                at += target.write(z, at);
            }
        }
        wrote(length);
    }

    private void wrote(long n) {
        if (writeback != null) {
            writeback.wrote(n);
        }
    }

    private void check(long offset, long length) {
        if (offset < 0 || length < 0 || offset > capacity - length) {
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "a write of " + length + " bytes at " + offset
                    + " would pass the target's " + capacity + " bytes");
        }
    }
}
