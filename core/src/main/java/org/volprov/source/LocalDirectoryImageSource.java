package org.volprov.source;

import java.io.IOException;
import java.io.InputStream;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.volprov.ErrorCode;
import org.volprov.ImageRef;
import org.volprov.ProvisioningException;

/**
 * An {@link ImageSource} over a local directory laid out as {@code <root>/<bucket>/<key>}, with
 * {@code <key>.sha256} siblings: for the embedded demo and for tests that need no S3 server.
 * Thread-safe.
 */
public final class LocalDirectoryImageSource implements ImageSource {

    private final Path root;

    public LocalDirectoryImageSource(Path root) {
        this.root = Objects.requireNonNull(root, "root").toAbsolutePath().normalize();
    }

    @Override
    public ObjectInfo stat(ImageRef ref) {
        BasicFileAttributes a = attributes(ref, resolve(ref));
        return new ObjectInfo(a.size(), version(a), a.lastModifiedTime().toInstant());
    }

    /**
     * The stand-in for an ETag: size, modification time (to the nanosecond the file system keeps)
     * and file identity (device and inode). Rewriting the file in place changes the time, replacing
     * it by a rename changes the identity even when the new file kept an old time ({@code cp -p},
     * {@code rsync}).
     */
    private static String version(BasicFileAttributes a) {
        Object fileKey = a.fileKey();
        return Long.toHexString(a.size()) + "-" + Long.toHexString(a.lastModifiedTime().to(TimeUnit.NANOSECONDS))
                + (fileKey == null ? "" : "-" + Integer.toHexString(fileKey.hashCode()));
    }

    private static BasicFileAttributes attributes(ImageRef ref, Path p) {
        try {
            BasicFileAttributes a = Files.readAttributes(p, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
            if (!a.isRegularFile()) {
                throw notFound(ref);
            }
            return a;
        } catch (java.nio.file.NoSuchFileException e) {
            throw notFound(ref);
        } catch (IOException e) {
            throw new ProvisioningException(ErrorCode.SOURCE_UNAVAILABLE, "cannot read " + ref + ": " + e, e);
        }
    }

    @Override
    public Optional<String> publishedChecksum(ImageRef ref) {
        Path p = resolve(ref.checksumSibling());
        if (!Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS)) {
            return Optional.empty();
        }
        try (InputStream in = Files.newInputStream(p)) {
            return PublishedChecksum.fromSibling(ref.checksumSibling(),
                    in.readNBytes(PublishedChecksum.MAX_SIBLING_BYTES + 1));
        } catch (IOException e) {
            throw new ProvisioningException(ErrorCode.SOURCE_UNAVAILABLE, "cannot read " + ref.checksumSibling(), e);
        }
    }

    /**
     * Opens the range when the file is still the version {@code etag} names, and checks again when
     * the range has been read: a file rewritten in place while it is read fails the read of its last
     * bytes with {@code IMAGE_CHANGED} instead of delivering bytes of two versions.
     */
    @Override
    public InputStream open(ImageRef ref, String etag, long offset, long length) {
        Objects.requireNonNull(etag, "etag");
        if (offset < 0 || length < 0) {
            throw new IllegalArgumentException("offset and length must not be negative");
        }
        Path p = resolve(ref);
        FileChannel ch;
        try {
            ch = FileChannel.open(p, StandardOpenOption.READ);
        } catch (java.nio.file.NoSuchFileException e) {
            throw notFound(ref);
        } catch (IOException e) {
            throw new ProvisioningException(ErrorCode.SOURCE_UNAVAILABLE, "cannot open " + ref + ": " + e, e);
        }
        try {
            // Checked after the open: a file replaced between the two is seen as changed.
            checkVersion(ref, p, etag);
            ch.position(offset);
            return new VersionCheckedStream(Channels.newInputStream(ch), length, () -> checkVersion(ref, p, etag));
        } catch (IOException e) {
            closeQuietly(ch);
            throw new ProvisioningException(ErrorCode.SOURCE_UNAVAILABLE, "cannot open " + ref + ": " + e, e);
        } catch (RuntimeException e) {
            closeQuietly(ch);
            throw e;
        }
    }

    private static void checkVersion(ImageRef ref, Path p, String etag) {
        String now = version(attributes(ref, p));
        if (!now.equals(etag)) {
            throw new ProvisioningException(ErrorCode.IMAGE_CHANGED, ref + " changed since its metadata was read"
                    + " (version " + etag + ", now " + now + ")");
        }
    }

    private static void closeQuietly(FileChannel ch) {
        try {
            ch.close();
        } catch (IOException ignored) {
            // the open failed already
        }
    }

    private Path resolve(ImageRef ref) {
        Path p = root.resolve(ref.bucket()).resolve(ref.key()).normalize();
        if (!p.startsWith(root.resolve(ref.bucket())) || ref.key().startsWith("/")) {
            throw new ProvisioningException(ErrorCode.INVALID_REQUEST, "imageUri: object key leaves its bucket");
        }
        return p;
    }

    private static ProvisioningException notFound(ImageRef ref) {
        return new ProvisioningException(ErrorCode.IMAGE_NOT_FOUND, "no image at " + ref);
    }

    @Override
    public String toString() {
        return "LocalDirectoryImageSource[" + root + "]";
    }

    /**
     * Reads at most {@code remaining} bytes of the underlying stream, and runs {@code check} before
     * it hands out the range's last bytes, or when the file ends before the range does.
     */
    private static final class VersionCheckedStream extends InputStream {
        private final InputStream in;
        private final Runnable check;
        private long remaining;

        VersionCheckedStream(InputStream in, long remaining, Runnable check) {
            this.in = in;
            this.remaining = remaining;
            this.check = check;
        }

        @Override
        public int read() throws IOException {
            byte[] one = new byte[1];
            int n = read(one, 0, 1);
            return n < 0 ? -1 : one[0] & 0xff;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            if (remaining <= 0) {
                return -1;
            }
            if (len == 0) {
                return 0;
            }
            int n = in.read(b, off, (int) Math.min(len, remaining));
            if (n < 0) {
                check.run(); // a file that shrank under the read: changed, not merely short
                return -1;
            }
            remaining -= n;
            if (remaining == 0) {
                check.run();
            }
            return n;
        }

        @Override
        public void close() throws IOException {
            in.close();
        }
    }
}
