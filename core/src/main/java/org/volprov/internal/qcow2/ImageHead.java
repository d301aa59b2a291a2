package org.volprov.internal.qcow2;

import java.nio.ByteBuffer;
import org.volprov.image.ImageFormat;

/**
 * An image's first bytes, gathered until they decide it: the format (qcow2, raw, or another known
 * format, refused) against the requested one, and for qcow2 the header and its extensions
 * ({@link Qcow2Header#parse}). At most one cluster (2 MiB) is held; usually the first 512 bytes
 * decide. Used by one thread.
 */
final class ImageHead {
    private final long fileSize;
    private final ImageFormat requested;
    private ByteBuffer head = ByteBuffer.allocate(FormatProbe.HEAD_BYTES);
    private ImageFormat format;
    private Qcow2Header header;

    ImageHead(long fileSize, ImageFormat requested) {
        this.fileSize = fileSize;
        this.requested = requested;
    }

    /** Bytes gathered so far (the image's first bytes). */
    long gathered() {
        return head.position();
    }

    /**
     * Takes bytes from {@code src} (consumed) until the image is decided; true once it is.
     *
     * @throws org.volprov.ProvisioningException {@code UNSUPPORTED_IMAGE} when the bytes so far refuse it
     */
    boolean take(ByteBuffer src) {
        while (src.hasRemaining() && format == null) {
            if (!head.hasRemaining()) {
                int grown = Math.min(head.capacity() * 4, 1 << Qcow2Header.MAX_CLUSTER_BITS);
                if (grown == head.capacity()) {
                    throw Refusal.corrupt("the header cannot be read");
                }
                head = ByteBuffer.allocate(grown).put(head.flip());
            }
            int n = Math.min(src.remaining(), head.remaining());
            head.put(src.slice(src.position(), n));
            src.position(src.position() + n);
            decide();
        }
        return format != null;
    }

    /**
     * Decides the image from everything gathered, which must be the whole image.
     *
     * @throws org.volprov.ProvisioningException {@code UNSUPPORTED_IMAGE} when it is refused
     */
    void decideWhole() {
        if (format == null && head.position() != fileSize) {
            throw new IllegalStateException("gathered " + head.position() + " of the image's " + fileSize + " bytes");
        }
        decide();
        if (format == null) {
            throw Refusal.corrupt("the header cannot be read");
        }
    }

    /** The format, once decided; else null. */
    ImageFormat format() {
        return format;
    }

    /** A qcow2 image's header, once decided; else null. */
    Qcow2Header header() {
        return header;
    }

    /** The bytes gathered, from the image's first byte (a view; not to be kept past the next {@link #take}). */
    ByteBuffer bytes() {
        return head.duplicate().flip();
    }

    private void decide() {
        if (format != null || head.position() < FormatProbe.HEAD_BYTES && head.position() < fileSize) {
            return;
        }
        ByteBuffer seen = bytes();
        ImageFormat f = FormatProbe.check(requested, FormatProbe.detect(seen));
        if (f == ImageFormat.QCOW2) {
            header = Qcow2Header.parse(seen, fileSize).orElse(null);
            if (header == null) {
                return;
            }
        }
        format = f;
    }
}
