package org.volprov.benchmarks;

import java.io.InputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Instant;
import java.util.HexFormat;
import java.util.Optional;
import java.util.SplittableRandom;
import org.volprov.ImageRef;
import org.volprov.source.ImageSource;
import org.volprov.source.ObjectInfo;

/**
 * An object served from memory: a 16 MiB random block repeated up to {@code size} bytes. It feeds
 * the engine's download loop without a network, so that a benchmark of what comes after the
 * download (hashing, writing) measures only that.
 */
final class MemoryImageSource implements ImageSource {
    /** The one version there is: the content never changes. */
    static final String ETAG = "memory";
    private static final int BLOCK = 16 << 20;

    private final byte[] block = new byte[BLOCK];
    private final long size;
    private final String sha256;

    MemoryImageSource(long size) {
        this.size = size;
        new SplittableRandom(4).nextBytes(block);
        MessageDigest md = newDigest();
        try (InputStream in = open(null, ETAG, 0, size)) {
            byte[] buf = new byte[1 << 20];
            for (int n; (n = in.read(buf)) > 0; ) {
                md.update(buf, 0, n);
            }
        } catch (java.io.IOException e) {
            throw new IllegalStateException(e);
        }
        this.sha256 = HexFormat.of().formatHex(md.digest());
    }

    long size() {
        return size;
    }

    /** The content's SHA-256, lower-case hex. */
    String sha256() {
        return sha256;
    }

    @Override
    public ObjectInfo stat(ImageRef ref) {
        return new ObjectInfo(size, ETAG, Instant.EPOCH);
    }

    @Override
    public Optional<String> publishedChecksum(ImageRef ref) {
        return Optional.of(sha256);
    }

    @Override
    public InputStream open(ImageRef ref, String etag, long offset, long length) {
        return new InputStream() {
            private long pos = offset;
            private final long end = offset + length;

            @Override
            public int read() {
                return pos < end ? block[(int) (pos++ % BLOCK)] & 0xff : -1;
            }

            @Override
            public int read(byte[] b, int off, int len) {
                if (pos >= end) {
                    return -1;
                }
                int at = (int) (pos % BLOCK);
                int n = (int) Math.min(Math.min(len, BLOCK - at), end - pos);
                System.arraycopy(block, at, b, off, n);
                pos += n;
                return n;
            }
        };
    }

    static MessageDigest newDigest() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
