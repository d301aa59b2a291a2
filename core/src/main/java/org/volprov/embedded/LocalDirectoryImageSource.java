package org.volprov.embedded;

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
import org.volprov.ErrorCode;
import org.volprov.ImageRef;
import org.volprov.ImageSource;
import org.volprov.ObjectInfo;
import org.volprov.ProvisioningException;
import org.volprov.PublishedChecksum;

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
        Path p = resolve(ref);
        try {
            BasicFileAttributes a = Files.readAttributes(p, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
            if (!a.isRegularFile()) {
                throw notFound(ref);
            }
            // Size and modification time stand in for an ETag: either changes when the file is rewritten.
            String etag = Long.toHexString(a.size()) + "-" + Long.toHexString(a.lastModifiedTime().toMillis());
            return new ObjectInfo(a.size(), etag, a.lastModifiedTime().toInstant());
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

    @Override
    public InputStream open(ImageRef ref, long offset, long length) {
        if (offset < 0 || length < 0) {
            throw new IllegalArgumentException("offset and length must not be negative");
        }
        Path p = resolve(ref);
        try {
            FileChannel ch = FileChannel.open(p, StandardOpenOption.READ);
            ch.position(offset);
            return new BoundedInputStream(Channels.newInputStream(ch), length);
        } catch (java.nio.file.NoSuchFileException e) {
            throw notFound(ref);
        } catch (IOException e) {
            throw new ProvisioningException(ErrorCode.SOURCE_UNAVAILABLE, "cannot open " + ref + ": " + e, e);
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

    /** Reads at most {@code remaining} bytes of the underlying stream. */
    private static final class BoundedInputStream extends InputStream {
        private final InputStream in;
        private long remaining;

        BoundedInputStream(InputStream in, long remaining) {
            this.in = in;
            this.remaining = remaining;
        }

        @Override
        public int read() throws IOException {
            if (remaining <= 0) {
                return -1;
            }
            int b = in.read();
            if (b >= 0) {
                remaining--;
            }
            return b;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            if (remaining <= 0) {
                return -1;
            }
            int n = in.read(b, off, (int) Math.min(len, remaining));
            if (n > 0) {
                remaining -= n;
            }
            return n;
        }

        @Override
        public void close() throws IOException {
            in.close();
        }
    }
}
