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
 * Writes a volume through {@code virStorageVolUpload}: every byte, zeros included, travels over the
 * libvirt connection, so it works wherever libvirtd runs. libvirt-java 0.5.2 binds neither
 * {@code virStreamSendHole} nor sparse uploads, so zero regions are sent as zeros. Used by one thread.
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
    private final byte[] buffer = new byte[CHUNK];
    private long position;
    private boolean finished;
    private boolean closed;

    private StreamVolumeWriter(String name, StorageVol vol, Stream stream, long capacity) {
        this.name = name;
        this.vol = vol;
        this.stream = stream;
        this.capacity = capacity;
    }

    /** Starts an upload of the whole volume; the writer owns {@code vol} from here on. */
    static StreamVolumeWriter open(Connect connection, StorageVol vol, String name, long capacity) throws LibvirtException {
        Stream stream = connection.streamNew(0);
        try {
            // The length bounds the upload at the volume's end, so a runaway writer cannot grow a file.
            NativeUpload.start(vol, stream, 0, capacity, name);
        } catch (RuntimeException e) {
            freeQuietly(stream);
            throw e;
        }
        return new StreamVolumeWriter(name, vol, stream, capacity);
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
        long left = length;
        while (left > 0) {
            int n = (int) Math.min(CHUNK, left);
            send(n == CHUNK ? ZEROS : new byte[n]);
            left -= n;
        }
    }

    /** A stream cannot seek, and nothing but zeros can be known to be right here: sends zeros. */
    @Override
    public void skip(long length) throws IOException {
        writeZeros(length);
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
