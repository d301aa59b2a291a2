package org.volprov.libvirt;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Optional;
import org.libvirt.Connect;
import org.libvirt.LibvirtException;
import org.libvirt.StorageVol;
import org.libvirt.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.volprov.support.IoErrors;
import org.volprov.volume.VolumeWriter;

/**
 * Writes a volume through {@code virStorageVolUpload}, over the libvirt connection, so it works
 * wherever libvirtd runs. Where the client library and the daemon allow it (libvirt 3.4 and later),
 * the upload is a sparse stream and holes cross as {@code virStreamSendHole} (bound in
 * {@link NativeUpload}) instead of zeros. The daemon leaves a hole in a file volume as it was (a
 * seek: a fresh file reads as zero there, a reused one keeps its bytes) and zeroes it on a block
 * device; so {@link #skip} (bytes known to read as zero) is always a hole, and
 * {@link #writeZeros} is a hole only on a block device, zeros on a file. Used by one thread.
 */
final class StreamVolumeWriter implements VolumeWriter {
    private static final Logger LOG = LoggerFactory.getLogger(StreamVolumeWriter.class);
    // libvirt's RPC payload limit is 256 KiB; larger sends would only be split again.
    static final int CHUNK = 256 * 1024;
    private static final byte[] ZEROS = new byte[CHUNK];

    private final String name;
    private final StorageVol vol;
    private final Stream stream;
    private final long capacity;
    private final boolean sparse;
    /** Whether a hole zeroes what the volume held (a block device), rather than leaving it. */
    private final boolean holesZero;
    private final byte[] buffer = new byte[CHUNK];
    private long position;
    private boolean finished;
    private boolean closed;

    private StreamVolumeWriter(String name, StorageVol vol, Stream stream, long capacity, boolean sparse,
            boolean holesZero) {
        this.name = name;
        this.vol = vol;
        this.stream = stream;
        this.capacity = capacity;
        this.sparse = sparse;
        this.holesZero = sparse && holesZero;
    }

    /**
     * Starts an upload of the whole volume, sparse when the client has {@code virStreamSendHole}
     * and the daemon takes a sparse upload; the writer owns {@code vol} from here on.
     *
     * @param blockDevice whether the volume is a block device, on which the daemon zeroes a hole
     */
    static StreamVolumeWriter open(Connect connection, StorageVol vol, String name, long capacity, boolean blockDevice)
            throws LibvirtException {
        if (NativeUpload.holesAvailable()) {
            Stream stream = connection.streamNew(0);
            try {
                NativeUpload.start(vol, stream, 0, capacity, name, true);
                return new StreamVolumeWriter(name, vol, stream, capacity, true, blockDevice);
            } catch (RuntimeException e) {
                // A daemon older than sparse streams refuses the flag: upload plainly.
                LOG.debug("sparse upload to {} refused, sending zeros instead", name, e);
                freeQuietly(stream);
            }
        }
        Stream stream = connection.streamNew(0);
        try {
            // The length bounds the upload at the volume's end, so a runaway writer cannot grow a file.
            NativeUpload.start(vol, stream, 0, capacity, name, false);
        } catch (RuntimeException e) {
            freeQuietly(stream);
            throw e;
        }
        return new StreamVolumeWriter(name, vol, stream, capacity, false, false);
    }

    /** Whether zero regions cross as holes. */
    boolean sparse() {
        return sparse;
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
    public void write(ByteBuffer src) throws IOException {
        checkRoom(src.remaining());
        while (src.hasRemaining()) {
            int n = Math.min(CHUNK, src.remaining());
            byte[] chunk = n == CHUNK ? buffer : new byte[n];
            src.get(chunk, 0, n);
            send(chunk);
        }
    }

    @Override
    public void writeZeros(long length) throws IOException {
        if (length < 0) {
            throw new IllegalArgumentException("length must not be negative");
        }
        checkRoom(length);
        if (holesZero) {
            hole(length);
            return;
        }
        long left = length;
        while (left > 0) {
            int n = (int) Math.min(CHUNK, left);
            send(n == CHUNK ? ZEROS : new byte[n]);
            left -= n;
        }
    }

    /**
     * A stream cannot seek, and nothing but zeros can be known to be right here: a hole on a sparse
     * upload, else zeros.
     */
    @Override
    public void skip(long length) throws IOException {
        if (!sparse) {
            writeZeros(length);
            return;
        }
        if (length < 0) {
            throw new IllegalArgumentException("length must not be negative");
        }
        checkRoom(length);
        hole(length);
    }

    /** Bounded like the data: checkRoom kept it inside the upload's length, the volume's end. */
    private void hole(long length) {
        if (length > 0) {
            NativeUpload.sendHole(stream, length, name);
            position += length;
        }
    }

    @Override
    public void finish() throws IOException {
        checkOpen();
        try {
            // libvirtd's I/O helper flushes the target before it acknowledges the end of the stream.
            stream.finish();
            finished = true;
        } catch (LibvirtException e) {
            throw failure("finishing upload to volume " + name, e);
        }
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        if (!finished) {
            try {
                stream.abort();
            } catch (LibvirtException | RuntimeException e) {
                LOG.debug("aborting upload to {} failed", name, e);
            }
        }
        freeQuietly(stream);
        try {
            vol.free();
        } catch (LibvirtException | RuntimeException e) {
            LOG.debug("freeing volume handle {} failed", name, e);
        }
    }

    private void send(byte[] chunk) throws IOException {
        checkOpen();
        try {
            byte[] rest = chunk;
            while (true) {
                int sent = stream.send(rest);
                if (sent <= 0) {
                    throw new IOException("upload to volume " + name + " stalled: libvirt accepted " + sent + " bytes");
                }
                position += sent;
                if (sent == rest.length) {
                    return;
                }
                rest = Arrays.copyOfRange(rest, sent, rest.length);
            }
        } catch (LibvirtException e) {
            throw failure("uploading to volume " + name, e);
        }
    }

    private void checkRoom(long length) throws IOException {
        checkOpen();
        if (length > capacity - position) {
            throw new IOException("write of " + length + " bytes at offset " + position + " passes the end of volume "
                    + name + " (" + capacity + " bytes)");
        }
    }

    private void checkOpen() {
        if (closed || finished) {
            throw new IllegalStateException("upload to volume " + name + " is " + (closed ? "closed" : "finished"));
        }
    }

    private static IOException failure(String context, LibvirtException e) {
        return IoErrors.translate(new IOException(context + ": " + e.getMessage(), e), context);
    }

    private static void freeQuietly(Stream stream) {
        try {
            stream.free();
        } catch (LibvirtException | RuntimeException e) {
            LOG.debug("freeing stream failed", e);
        }
    }
}
