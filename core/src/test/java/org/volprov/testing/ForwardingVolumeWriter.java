package org.volprov.testing;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Optional;
import org.volprov.volume.VolumeWriter;

/** A real {@link VolumeWriter} passed through, for tests to override one call and inject a fault or count calls. */
public class ForwardingVolumeWriter implements VolumeWriter {
    protected final VolumeWriter delegate;

    public ForwardingVolumeWriter(VolumeWriter delegate) {
        this.delegate = delegate;
    }

    @Override
    public Optional<Path> localPath() {
        return delegate.localPath();
    }

    @Override
    public long position() {
        return delegate.position();
    }

    @Override
    public void write(ByteBuffer src) throws IOException {
        delegate.write(src);
    }

    @Override
    public void writeZeros(long length) throws IOException {
        delegate.writeZeros(length);
    }

    @Override
    public void skip(long length) throws IOException {
        delegate.skip(length);
    }

    @Override
    public void finish() throws IOException {
        delegate.finish();
    }

    @Override
    public void close() {
        delegate.close();
    }
}
