package org.volprov.internal.engine;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Optional;
import org.volprov.Cancellation;
import org.volprov.volume.VolumeWriter;

/** The backend's writer, each write of which first passes the job's lease. */
final class FencedWriter implements VolumeWriter {
    private final VolumeWriter w;
    private final JobLease lease;
    private final Cancellation cancellation;

    FencedWriter(VolumeWriter w, JobLease lease, Cancellation cancellation) {
        this.w = w;
        this.lease = lease;
        this.cancellation = cancellation;
    }

    @Override
    public Optional<Path> localPath() {
        return w.localPath();
    }

    @Override
    public long position() {
        return w.position();
    }

    @Override
    public void write(ByteBuffer src) throws IOException {
        lease.awaitHeld(cancellation);
        w.write(src);
    }

    @Override
    public void writeZeros(long length) throws IOException {
        lease.awaitHeld(cancellation);
        w.writeZeros(length);
    }

    @Override
    public void skip(long length) throws IOException {
        w.skip(length);
    }

    @Override
    public void finish() throws IOException {
        lease.awaitHeld(cancellation);
        w.finish();
    }

    @Override
    public void close() {
        w.close();
    }
}
