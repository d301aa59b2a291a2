package org.volprov.cache;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.WritableByteChannel;

/**
 * A real file channel that fails like a full file system once {@code capacity} bytes were written:
 * the fallback for the ENOSPC test where a small tmpfs cannot be mounted. Not a mock of the file
 * system: the bytes before the limit really land in the file.
 */
final class FullDiskChannel extends FileChannel {
    private final FileChannel delegate;
    private long remaining;

    FullDiskChannel(FileChannel delegate, long capacity) {
        this.delegate = delegate;
        this.remaining = capacity;
    }

    @Override
    public int write(ByteBuffer src) throws IOException {
        if (remaining <= 0) {
            throw new IOException("No space left on device");
        }
        int allowed = (int) Math.min(src.remaining(), remaining);
        ByteBuffer part = src.duplicate();
        part.limit(part.position() + allowed);
        int n = delegate.write(part);
        src.position(src.position() + n);
        remaining -= n;
        return n;
    }

    @Override
    public int read(ByteBuffer dst) throws IOException {
        return delegate.read(dst);
    }

    @Override
    public long read(ByteBuffer[] dsts, int offset, int length) throws IOException {
        return delegate.read(dsts, offset, length);
    }

    @Override
    public long write(ByteBuffer[] srcs, int offset, int length) throws IOException {
        throw new IOException("No space left on device");
    }

    @Override
    public long position() throws IOException {
        return delegate.position();
    }

    @Override
    public FileChannel position(long newPosition) throws IOException {
        delegate.position(newPosition);
        return this;
    }

    @Override
    public long size() throws IOException {
        return delegate.size();
    }

    @Override
    public FileChannel truncate(long size) throws IOException {
        delegate.truncate(size);
        return this;
    }

    @Override
    public void force(boolean metaData) throws IOException {
        delegate.force(metaData);
    }

    @Override
    public long transferTo(long position, long count, WritableByteChannel target) throws IOException {
        return delegate.transferTo(position, count, target);
    }

    @Override
    public long transferFrom(ReadableByteChannel src, long position, long count) throws IOException {
        throw new IOException("No space left on device");
    }

    @Override
    public int read(ByteBuffer dst, long position) throws IOException {
        return delegate.read(dst, position);
    }

    @Override
    public int write(ByteBuffer src, long position) throws IOException {
        if (remaining <= 0) {
            throw new IOException("No space left on device");
        }
        int allowed = (int) Math.min(src.remaining(), remaining);
        ByteBuffer part = src.duplicate();
        part.limit(part.position() + allowed);
        int n = delegate.write(part, position);
        src.position(src.position() + n);
        remaining -= n;
        return n;
    }

    @Override
    public MappedByteBuffer map(MapMode mode, long position, long size) throws IOException {
        return delegate.map(mode, position, size);
    }

    @Override
    public FileLock lock(long position, long size, boolean shared) throws IOException {
        return delegate.lock(position, size, shared);
    }

    @Override
    public FileLock tryLock(long position, long size, boolean shared) throws IOException {
        return delegate.tryLock(position, size, shared);
    }

    @Override
    protected void implCloseChannel() throws IOException {
        delegate.close();
    }
}
