package org.volprov.volume;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;
import org.volprov.support.IoErrors;

/**
 * A {@link VolumeWriter} onto an existing local file or block device. It never creates the target:
 * a missing path fails with {@code BACKEND_FAILURE}, so a vanished device node can never become a
 * regular file. A symbolic link is followed only to a block device. Shared by the file-backed
 * backend and by backends whose volumes have a local path.
 */
public final class LocalVolumeWriter implements VolumeWriter {
    private static final Logger LOG = LoggerFactory.getLogger(LocalVolumeWriter.class);
    private static final int S_IFMT = 0170000;
    private static final int S_IFBLK = 0060000;
    private static final int S_IFREG = 0100000;
    private static final int S_IFLNK = 0120000;
    private static final ByteBuffer ZEROS = ByteBuffer.allocateDirect(1 << 20).asReadOnlyBuffer();

    private final Path path;
    private final boolean blockDevice;
    private final FileChannel channel;
    private long position;
    private boolean closed;

    private LocalVolumeWriter(Path path, boolean blockDevice, FileChannel channel) {
        this.path = path;
        this.blockDevice = blockDevice;
        this.channel = channel;
    }

    /**
     * Opens {@code path} for writing. A symbolic link (an LV's {@code /dev/<vg>/<lv>}, which LVM and
     * udev always make a link to {@code /dev/dm-N}) is resolved once, and only followed to a block
     * device: a link into a regular file, or any other kind of node, is refused. The writer then
     * works on the resolved node, which {@link #localPath()} returns.
     *
     * @param requireBlockDevice when true, anything but a block device is refused (pools whose
     *     volumes are block devices: LVM, disk partitions, ...)
     * @throws ProvisioningException {@code BACKEND_FAILURE} when the path is missing, of the wrong
     *     kind, changes while it is opened, or cannot be opened
     */
    public static LocalVolumeWriter open(Path path, boolean requireBlockDevice) {
        Node named = Node.stat(path);
        Path target = path;
        Node node = named;
        if (named.type == S_IFLNK) {
            try {
                target = path.toRealPath();
            } catch (IOException e) {
                throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "volume path " + path
                        + " is a symbolic link that does not resolve: " + e, e);
            }
            node = Node.stat(target);
            if (node.type != S_IFBLK) {
                throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "volume path " + path
                        + " is a symbolic link to " + target + ", which is not a block device (a link is only"
                        + " followed to a device node)");
            }
        } else if (node.type != S_IFBLK && (requireBlockDevice || node.type != S_IFREG)) {
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "volume path " + path + " is not a "
                    + (requireBlockDevice ? "block device" : "regular file or block device"));
        }
        FileChannel ch;
        try {
            // WRITE without CREATE: opening fails rather than making a file where a device was.
            ch = FileChannel.open(target, StandardOpenOption.WRITE);
        } catch (IOException e) {
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "cannot open volume path " + target + ": " + e, e);
        }
        // What was opened must be what was checked: a node swapped in between is refused.
        Node opened;
        try {
            opened = Node.stat(target);
        } catch (ProvisioningException e) {
            closeQuietly(ch, target);
            throw e;
        }
        if (!opened.sameAs(node)) {
            closeQuietly(ch, target);
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "volume path " + target
                    + " changed while it was opened");
        }
        return new LocalVolumeWriter(target, node.type == S_IFBLK, ch);
    }

    /** The kind and identity of one file system node, read without following a link. */
    private record Node(int type, Object dev, Object ino, Object rdev) {
        static Node stat(Path p) {
            try {
                Map<String, Object> a = Files.readAttributes(p, "unix:mode,dev,ino,rdev", LinkOption.NOFOLLOW_LINKS);
                return new Node(((Integer) a.get("mode")) & S_IFMT, a.get("dev"), a.get("ino"), a.get("rdev"));
            } catch (NoSuchFileException e) {
                throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "volume path " + p + " does not exist", e);
            } catch (IOException | UnsupportedOperationException | IllegalArgumentException e) {
                throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "cannot stat volume path " + p, e);
            }
        }

        boolean sameAs(Node o) {
            return type == o.type && dev.equals(o.dev) && ino.equals(o.ino) && rdev.equals(o.rdev);
        }
    }

    private static void closeQuietly(FileChannel ch, Path p) {
        try {
            ch.close();
        } catch (IOException e) {
            LOG.debug("closing {} failed", p, e);
        }
    }

    @Override
    public Optional<Path> localPath() {
        return Optional.of(path);
    }

    @Override
    public long position() {
        return position;
    }

    @Override
    public void write(ByteBuffer src) throws IOException {
        try {
            while (src.hasRemaining()) {
                position += channel.write(src, position);
            }
        } catch (IOException e) {
            throw IoErrors.translate(e, "writing volume " + path);
        }
    }

    @Override
    public void writeZeros(long length) throws IOException {
        if (length <= 0) {
            return;
        }
        long end = position + length;
        if (!blockDevice && end >= channel.size()) {
            // A regular file's tail: cut it off and extend it again; the new part is a hole that reads as zero.
            long size = Math.max(channel.size(), end);
            channel.truncate(position);
            if (size > position) {
                channel.write(ByteBuffer.wrap(new byte[1]), size - 1);
            }
            position = end;
            return;
        }
        if (blockDevice && zeroOutDevice(position, length)) {
            position = end;
            return;
        }
        while (position < end) {
            ByteBuffer chunk = ZEROS.duplicate();
            chunk.limit((int) Math.min(chunk.capacity(), end - position));
            write(chunk);
        }
    }

    @Override
    public void skip(long length) {
        if (length < 0) {
            throw new IllegalArgumentException("length must not be negative");
        }
        position += length;
    }

    @Override
    public void finish() throws IOException {
        try {
            channel.force(true);
        } catch (IOException e) {
            throw IoErrors.translate(e, "flushing volume " + path);
        }
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        closeQuietly(channel, path);
    }

    /** BLKZEROOUT through util-linux's blkdiscard; false when it is not available or refused. */
    private boolean zeroOutDevice(long offset, long length) {
        if (offset % 512 != 0 || length % 512 != 0) {
            return false;
        }
        try {
            Process p = new ProcessBuilder("blkdiscard", "--zeroout", "--offset", Long.toString(offset),
                    "--length", Long.toString(length), path.toString())
                    .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
            if (!p.waitFor(30, TimeUnit.MINUTES)) {
                p.destroyForcibly();
                return false;
            }
            return p.exitValue() == 0;
        } catch (IOException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }
}
