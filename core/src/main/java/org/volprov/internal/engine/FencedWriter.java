package org.volprov.internal.engine;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Optional;
import org.volprov.Cancellation;
import org.volprov.volume.VolumeWriter;

/**
 * The backend's writer, each write of which first passes the job's lease. Writes made through its
 * {@link #localPath()} by someone else do not pass here: whoever makes them passes the lease
 * itself ({@link JobVolume#awaitHeld}).
 */
final class FencedWriter implements VolumeWriter {
    private final VolumeWriter w;
    private final JobLease lease;
    private final Cancellation cancellation;
    private final Runnable beforeFinish;

    /** @param beforeFinish runs before {@link #finish()} flushes the volume, whichever fill calls it */
    FencedWriter(VolumeWriter w, JobLease lease, Cancellation cancellation, Runnable beforeFinish) {
        this.w = w;
        this.lease = lease;
        this.cancellation = cancellation;
        this.beforeFinish = beforeFinish;
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
        beforeFinish.run();
        lease.awaitHeld(cancellation);
        w.finish();
    }

    @Override
    public void close() {
        w.close();
    }
}
