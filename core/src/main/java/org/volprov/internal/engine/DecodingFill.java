package org.volprov.internal.engine;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.Executor;
import java.util.concurrent.ThreadPoolExecutor;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;
import org.volprov.cache.CacheSink;
import org.volprov.image.ImageFormat;
import org.volprov.image.ImageInfo;
import org.volprov.internal.IoFailure;
import org.volprov.internal.qcow2.Qcow2Stream;
import org.volprov.internal.qcow2.StreamingFill;
import org.volprov.volume.VolumeInfo;
import org.volprov.volume.VolumeWriter;

/**
 * Fills the volume with core's decoder ({@link StreamingFill}: qcow2 and raw) while the image
 * downloads: each byte goes to the decoder before it goes to the cache, the volume is made and
 * opened once the header gives the virtual size, and {@link #fill} finishes from the verified
 * cache file (what the stream could not place, the tail, the flush). Where the download's bytes
 * did not all pass through it in order (a cache hit, another caller's download, a download resumed
 * from an earlier attempt's partial file), the same decoder is fed from the cache file instead.
 *
 * <p>The lease: a writer with a local path is written on the decoder's own channel, past the
 * {@link FencedWriter}; so the lease is passed before every chunk the decoder is given (a download
 * buffer or one read of the cache file), and a lost lease cancels the job, which stops the decoder
 * at its next checkpoint (one per cluster run). Upload streams are written through the fenced
 * writer, each write passing the lease.
 *
 * <p>A download that starts over ({@code IMAGE_CHANGED}) starts a new decoder on a writer at offset
 * 0 again; as the volume may hold the abandoned version's bytes then, it no longer counts as
 * reading as zero, so every byte of the new version is written, zeros and tail included.
 */
final class DecodingFill implements VolumeFill {
    private final ImageFormat requested;
    private final long volumeSizeBytes;
    private final ThreadPoolExecutor decoding;
    private final Executor flushing;
    private final int bufferSize;
    /** The decoder of this attempt; null before the first and after a drop. */
    private StreamingFill decoder;
    /** Whether a decoder opened the volume: it may hold bytes written by one that was dropped. */
    private boolean opened;

    DecodingFill(ImageFormat requested, long volumeSizeBytes, ThreadPoolExecutor decoding, Executor flushing,
            int bufferSize) {
        this.requested = requested;
        this.volumeSizeBytes = volumeSizeBytes;
        this.decoding = decoding;
        this.flushing = flushing;
        this.bufferSize = bufferSize;
    }

    @Override
    public CacheSink tee(CacheSink cache, JobVolume volume) {
        drop();
        if (cache.position() != 0) {
            return cache; // the first bytes passed in an earlier attempt: decoded from the file at the end
        }
        StreamingFill live = decoder(cache.size(), volume);
        decoder = live;
        return new CacheSink() {
            @Override
            public long position() {
                return cache.position();
            }

            @Override
            public long size() {
                return cache.size();
            }

            @Override
            public void write(ByteBuffer src) throws IOException {
                if (decoder == live) {
                    if (live.position() == cache.position()) {
                        feed(live, src, volume);
                    } else {
                        drop(); // bytes went to the cache unseen: decode from the file at the end
                    }
                }
                cache.write(src);
            }
        };
    }

    @Override
    public void fill(Path image, ImageInfo info, JobVolume volume) throws IOException {
        try (FileChannel file = FileChannel.open(image, StandardOpenOption.READ)) {
            long size = file.size();
            StreamingFill f = decoder;
            if (f == null || f.position() != size) {
                drop();
                f = decoder(size, volume);
                decoder = f;
                ByteBuffer buf = ByteBuffer.allocateDirect((int) Math.min(bufferSize, Math.max(1, size)));
                for (long at = 0; at < size; ) {
                    buf.clear().limit((int) Math.min(buf.capacity(), size - at));
                    while (buf.hasRemaining()) {
                        if (file.read(buf, at + buf.position()) < 0) {
                            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "image " + image + " ended at "
                                    + (at + buf.position()) + " of " + size + " bytes");
                        }
                    }
                    buf.flip();
                    at += buf.remaining();
                    feed(f, buf, volume);
                }
            }
            long decided = f.image().map(ImageInfo::virtualSize).orElse(info.virtualSize());
            if (decided != info.virtualSize()) {
                throw new ProvisioningException(ErrorCode.UNSUPPORTED_IMAGE, "the image's virtual size read "
                        + decided + " while it streamed and " + info.virtualSize() + " when it was inspected");
            }
            volume.awaitHeld();
            f.finish(file);
        }
    }

    /** The decoder tails, zeroes and flushes the volume in {@code finish}. */
    @Override
    public boolean completesVolume() {
        return true;
    }

    @Override
    public void abort() {
        drop();
    }

    private StreamingFill decoder(long objectSize, JobVolume volume) {
        return new StreamingFill(objectSize, requested, image -> open(image, volume), decoding,
                decoding.getMaximumPoolSize(), flushing, volume::written, volume.cancellation(),
                Qcow2Stream.Limits.defaults());
    }

    /** Called once per decoder, when the header told the image's virtual size. */
    private StreamingFill.Target open(ImageInfo image, JobVolume volume) {
        image.requireFits(volumeSizeBytes); // refused before the volume is made
        VolumeInfo v = volume.prepare();
        VolumeWriter w = volume.restart();
        boolean zero = v.readsAsZeros() && !opened;
        opened = true;
        return new StreamingFill.Target(w, v.capacityBytes(), zero);
    }

    private static void feed(StreamingFill f, ByteBuffer bytes, JobVolume volume) {
        volume.awaitHeld();
        try {
            f.feed(bytes);
        } catch (IOException e) {
            // Not the cache's failure, nor the source's: the download must not retry it.
            throw IoFailure.of("writing the volume", e);
        }
    }

    private void drop() {
        if (decoder != null) {
            decoder.abort();
            decoder = null;
        }
    }
}
