package org.volprov.benchmarks;

import java.nio.ByteBuffer;
import org.openjdk.jmh.infra.Blackhole;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;
import org.volprov.cache.CacheSink;

/**
 * A cache sink that keeps nothing: the download benchmarks measure the source and the copy loop,
 * not the disk. Each chunk's last byte goes to a {@link Blackhole}, so the reads cannot be elided.
 */
final class DiscardingSink implements CacheSink {
    private final long size;
    private final Blackhole blackhole;
    private long position;

    DiscardingSink(long size, Blackhole blackhole) {
        this.size = size;
        this.blackhole = blackhole;
    }

    @Override
    public long position() {
        return position;
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public void write(ByteBuffer src) {
        int n = src.remaining();
        if (position + n > size) {
            throw new ProvisioningException(ErrorCode.INSUFFICIENT_SPACE, "the source sent more than " + size + " bytes");
        }
        if (n > 0) {
            blackhole.consume(src.get(src.limit() - 1));
        }
        src.position(src.limit());
        position += n;
    }
}
