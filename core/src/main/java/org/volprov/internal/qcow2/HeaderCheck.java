package org.volprov.internal.qcow2;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Objects;
import org.volprov.cache.CacheSink;
import org.volprov.cache.ImageFiller;
import org.volprov.image.ImageFormat;

/**
 * Judges an image from its first bytes while it downloads, before the rest is fetched: the format
 * (qcow2, raw, or another known format, refused) against the requested one, and for qcow2 the
 * header and its extensions ({@link Qcow2Header#parse}: backing file, external data file,
 * encryption, unknown features, fields out of range). A refusal is thrown from the sink's
 * {@code write} before the deciding bytes reach the cache, so the download stops there and the
 * cache keeps nothing. At most one cluster (2 MiB) is held to decide; usually the first 512 bytes.
 *
 * <p>A download that starts past the first bytes (resumed by an earlier attempt) is not judged
 * here; the converter's inspection still is.
 */
public final class HeaderCheck implements ImageFiller {
    private final ImageFiller filler;
    private final ImageFormat requested;

    private HeaderCheck(ImageFiller filler, ImageFormat requested) {
        this.filler = filler;
        this.requested = requested;
    }

    /** {@code filler}, with its image judged from its first bytes as they arrive. */
    public static ImageFiller before(ImageFiller filler, ImageFormat requested) {
        return new HeaderCheck(Objects.requireNonNull(filler, "filler"), Objects.requireNonNull(requested, "requested"));
    }

    @Override
    public void fill(CacheSink sink) throws IOException {
        filler.fill(sink.position() == 0 ? new Checking(sink) : sink);
    }

    private final class Checking implements CacheSink {
        private final CacheSink sink;
        private ImageHead head;

        Checking(CacheSink sink) {
            this.sink = sink;
            this.head = new ImageHead(sink.size(), requested);
        }

        @Override
        public long position() {
            return sink.position();
        }

        @Override
        public long size() {
            return sink.size();
        }

        @Override
        public void write(ByteBuffer src) throws IOException {
            if (head != null) {
                judge(src.duplicate());
            }
            sink.write(src);
        }

        private void judge(ByteBuffer src) {
            if (head.gathered() != sink.position()) {
                head = null; // bytes went past unseen (cannot happen from 0): leave it to the converter
                return;
            }
            if (head.take(src)) {
                head = null;
            }
        }
    }
}
