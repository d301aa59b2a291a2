package org.volprov.image;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.function.LongConsumer;
import org.volprov.Cancellation;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;
import org.volprov.internal.IoFailure;
import org.volprov.internal.qcow2.ChannelSink;
import org.volprov.internal.qcow2.FormatProbe;
import org.volprov.internal.qcow2.GuestSink;
import org.volprov.internal.qcow2.Qcow2Image;
import org.volprov.support.DaemonThreads;

/**
 * The default {@link ImageConverter}: a qcow2 decoder in plain Java, no {@code qemu-img} needed.
 * Reads qcow2 versions 2 and 3 with clusters of 512 B to 2 MiB, unallocated, zero and compressed
 * clusters (deflate, and zstd for {@code compression_type=zstd}), extended L2 entries, internal
 * snapshots (the active disk is converted) and images left dirty. Refuses, with
 * {@code UNSUPPORTED_IMAGE} and a message that says what to do, backing files, external data files,
 * encryption, unknown incompatible features and anything corrupt: every field is checked against
 * the image's size before it is used, and a compressed cluster never inflates past one cluster.
 *
 * <p>{@link #inspect} reads the header and every table (no data) so that a corrupt image is refused
 * before a volume is made; {@link #convertToRaw} writes the disk onto the target in guest order,
 * merging reads of adjacent clusters, inflating compressed clusters on {@code parallelism} threads
 * of its own (started for the conversion and ended with it), and skipping zero ranges when the
 * target reads as zero. Raw images are copied, their zero blocks skipped likewise.
 *
 * <p>Thread-safe: conversions run independently. {@link QemuImgConverter} is the alternative that
 * runs {@code qemu-img}.
 */
public final class Qcow2Converter implements ImageConverter {
    private static final int RAW_BUFFER = 1 << 20;

    private final int parallelism;

    /** Inflates on as many threads as the machine has processors. */
    public Qcow2Converter() {
        this(Runtime.getRuntime().availableProcessors());
    }

    /** @param parallelism threads that inflate compressed clusters, at least 1 */
    public Qcow2Converter(int parallelism) {
        if (parallelism < 1) {
            throw new IllegalArgumentException("parallelism must be at least 1, was " + parallelism);
        }
        this.parallelism = parallelism;
    }

    /**
     * Threads that inflate compressed clusters: of {@link #convert}, and of the engine's decoder
     * when this is the engine's converter (one pool of this size for all its jobs).
     */
    public int parallelism() {
        return parallelism;
    }

    @Override
    public ImageInfo inspect(Path image, ImageFormat requested) {
        try (FileChannel in = openImage(image)) {
            long size = in.size();
            ImageFormat format = FormatProbe.check(requested, FormatProbe.detect(FormatProbe.head(in)));
            if (format == ImageFormat.RAW) {
                return new ImageInfo(ImageFormat.RAW, size, size);
            }
            Qcow2Image qcow2 = Qcow2Image.open(in);
            qcow2.validateTables(Cancellation.none());
            return new ImageInfo(ImageFormat.QCOW2, qcow2.header().virtualSize(), size);
        } catch (IOException e) {
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "cannot read image " + image + ": " + e, e);
        }
    }

    @Override
    public void convertToRaw(Path image, ImageInfo info, Path target, boolean targetIsZero, LongConsumer progress,
            Cancellation cancellation) {
        cancellation.checkpoint();
        try (FileChannel in = openImage(image); FileChannel out = openTarget(target)) {
            GuestSink sink = new ChannelSink(out, info.virtualSize(), targetIsZero);
            if (info.format() == ImageFormat.RAW) {
                copyRaw(in, info.virtualSize(), sink, progress, cancellation);
            } else {
                Qcow2Image qcow2 = Qcow2Image.open(in);
                if (qcow2.header().virtualSize() != info.virtualSize()) {
                    throw new ProvisioningException(ErrorCode.UNSUPPORTED_IMAGE, "the image changed since it was"
                            + " inspected: its virtual size is " + qcow2.header().virtualSize() + ", not "
                            + info.virtualSize());
                }
                decode(qcow2, sink, progress, cancellation);
            }
            progress.accept(info.virtualSize());
        } catch (IOException e) {
            throw IoFailure.of("converting " + image + " onto " + target, e);
        }
    }

    private void decode(Qcow2Image qcow2, GuestSink sink, LongConsumer progress, Cancellation cancellation)
            throws IOException {
        if (parallelism == 1 || qcow2.header().virtualSize() == 0) {
            qcow2.decode(sink, null, 1, progress, cancellation);
            return;
        }
        ExecutorService pool = Executors.newFixedThreadPool(parallelism, DaemonThreads.named("volprov-qcow2"));
        try {
            qcow2.decode(sink, pool, parallelism, progress, cancellation);
        } finally {
            pool.shutdownNow();
        }
    }

    private static void copyRaw(FileChannel in, long length, GuestSink sink, LongConsumer progress,
            Cancellation cancellation) throws IOException {
        ByteBuffer buf = ByteBuffer.allocateDirect(RAW_BUFFER);
        ByteBuffer zeros = ByteBuffer.allocateDirect(RAW_BUFFER);
        for (long done = 0; done < length; ) {
            cancellation.checkpoint();
            buf.clear().limit((int) Math.min(RAW_BUFFER, length - done));
            while (buf.hasRemaining()) {
                if (in.read(buf, done + buf.position()) < 0) {
                    throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "the raw image ended at "
                            + (done + buf.position()) + " of " + length + " bytes");
                }
            }
            buf.flip();
            int n = buf.remaining();
            if (buf.mismatch(zeros.duplicate().limit(n)) == -1) {
                sink.zero(done, n);
            } else {
                sink.data(done, buf);
            }
            done += n;
            progress.accept(done);
        }
    }

    private static FileChannel openImage(Path image) throws IOException {
        return FileChannel.open(image, StandardOpenOption.READ);
    }

    private static FileChannel openTarget(Path target) {
        try {
            // WRITE without CREATE: the target (a pool file or a device node) must exist already.
            return FileChannel.open(target, StandardOpenOption.WRITE);
        } catch (NoSuchFileException e) {
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "conversion target " + target + " does not exist", e);
        } catch (IOException e) {
            throw IoFailure.of("opening conversion target " + target, e);
        }
    }

    @Override
    public String toString() {
        return "Qcow2Converter[parallelism=" + parallelism + "]";
    }
}
