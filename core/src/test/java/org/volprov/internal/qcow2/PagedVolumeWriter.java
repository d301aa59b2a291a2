package org.volprov.internal.qcow2;

import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Optional;
import org.volprov.volume.VolumeWriter;

/**
 * A sequential {@link VolumeWriter} for tests (an upload stream's shape: no local path), keeping
 * the volume in a {@link PagedSink} of its capacity, which refuses any write out of order or past
 * the capacity. {@code skip} leaves the bytes as they are (zero, in memory); {@code writeZeros}
 * zeroes them.
 */
final class PagedVolumeWriter implements VolumeWriter {
    final PagedSink disk;
    private long position;
    private int finishes;

    PagedVolumeWriter(long capacity) {
        this.disk = new PagedSink(GuestSink.Order.GUEST, capacity);
    }

    @Override
    public Optional<Path> localPath() {
        return Optional.empty();
    }

    @Override
    public long position() {
        return position;
    }

    @Override
    public void write(ByteBuffer src) {
        int n = src.remaining();
        if (n > 0) {
            disk.data(position, src);
            position += n;
        }
    }

    @Override
    public void writeZeros(long length) {
        if (length > 0) {
            disk.zero(position, length);
            position += length;
        }
    }

    @Override
    public void skip(long length) {
        writeZeros(length);
    }

    @Override
    public void finish() {
        finishes++;
    }

    /** How many times {@link #finish()} was called. */
    int finishes() {
        return finishes;
    }

    @Override
    public void close() {
    }
}
