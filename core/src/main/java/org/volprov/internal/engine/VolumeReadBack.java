package org.volprov.internal.engine;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.ReadableByteChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.Executor;
import org.volprov.Cancellation;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;
import org.volprov.Stage;
import org.volprov.cache.CacheLease;
import org.volprov.image.ImageFormat;
import org.volprov.image.ImageInfo;
import org.volprov.internal.IoFailure;
import org.volprov.internal.qcow2.GuestSink;
import org.volprov.internal.qcow2.Qcow2Image;
import org.volprov.volume.VolumeInfo;

/**
 * The engine's {@code verifyWrittenVolume} check, after the volume is written and flushed: the
 * volume, read back through its backend, holds the decoded image in its first virtual-size bytes
 * and zeros after them, or the job fails with {@link ErrorCode#VOLUME_VERIFY_FAILED}.
 *
 * <p>What the image should decode to is worked out apart from the write: a raw image is its cache
 * entry, whose SHA-256 the cache verified; a qcow2 image is decoded once more by the decoder in core,
 * into a hash, whichever converter wrote the volume. So a fault of the converter, of the copy, of
 * the backend or of the storage under it shows, and so does a cache file changed since it was
 * verified. The decode runs on another thread while the job's thread reads the volume. Used by the
 * job's thread.
 */
final class VolumeReadBack {
    private static final int BUFFER = 1 << 20;
    private static final ByteBuffer ZEROS = ByteBuffer.allocateDirect(BUFFER).asReadOnlyBuffer();

    private final EngineSettings settings;
    private final JobTracker tracker;
    private final Cancellation cancellation;
    private final Executor decoder;

    /** @param decoder runs the image's decode while the volume is read */
    VolumeReadBack(EngineSettings settings, JobTracker tracker, Cancellation cancellation, Executor decoder) {
        this.settings = settings;
        this.tracker = tracker;
        this.cancellation = cancellation;
        this.decoder = decoder;
    }

    /**
     * Reads {@code volume} back and compares it with {@code image}.
     *
     * @throws ProvisioningException {@code VOLUME_VERIFY_FAILED} when it differs, {@code BACKEND_FAILURE}
     *     when it cannot be read, or the cancellation's code
     */
    void check(VolumeInfo volume, CacheLease image, ImageInfo info) {
        CompletableFuture<String> expected = info.format() == ImageFormat.RAW
                ? CompletableFuture.completedFuture(image.sha256())
                : CompletableFuture.supplyAsync(() -> decodedDigest(image.path(), info), decoder);
        String actual;
        try {
            actual = readBack(volume, info.virtualSize());
        } catch (RuntimeException e) {
            // The decode stops at its next checkpoint when the job was cancelled, and ends by itself otherwise.
            expected.exceptionally(t -> null).join();
            throw e;
        }
        String decoded = join(expected);
        if (!actual.equals(decoded)) {
            throw failed(volume, "its first " + info.virtualSize() + " bytes hash to " + actual
                    + ", the decoded image to " + decoded);
        }
    }

    /** The SHA-256 of the volume's first {@code virtual} bytes, once every byte after them read as zero. */
    private String readBack(VolumeInfo volume, long virtual) {
        long capacity = volume.capacityBytes();
        MessageDigest digest = sha256();
        ByteBuffer buf = ByteBuffer.allocateDirect(BUFFER);
        long done = 0;
        try (ReadableByteChannel in = settings.backend().openReader(volume)) {
            while (done < capacity) {
                cancellation.checkpoint();
                buf.clear().limit((int) Math.min(BUFFER, capacity - done));
                while (buf.hasRemaining()) {
                    if (in.read(buf) < 0) {
                        throw failed(volume, "it ended at byte " + (done + buf.position()) + " of its " + capacity);
                    }
                }
                buf.flip();
                int imagePart = (int) Math.max(0, Math.min(buf.remaining(), virtual - done));
                if (imagePart > 0) {
                    digest.update(buf.duplicate().limit(imagePart));
                }
                ByteBuffer tail = buf.position(imagePart).slice();
                int nonZero = tail.mismatch(ZEROS.duplicate().limit(tail.remaining()));
                if (nonZero >= 0) {
                    throw failed(volume, "byte " + (done + imagePart + nonZero) + ", past the image's " + virtual
                            + " bytes, is not zero");
                }
                done += buf.limit();
                tracker.progress(Stage.FINALIZING, done, capacity);
            }
        } catch (IOException e) {
            throw IoFailure.of("reading volume " + volume.name() + " back", e);
        }
        return HexFormat.of().formatHex(digest.digest());
    }

    private static String join(CompletableFuture<String> decoded) {
        try {
            return decoded.join();
        } catch (CompletionException e) {
            if (e.getCause() instanceof RuntimeException r) {
                throw r;
            }
            throw e;
        }
    }

    private ProvisioningException failed(VolumeInfo volume, String what) {
        return new ProvisioningException(ErrorCode.VOLUME_VERIFY_FAILED, "volume " + volume.name()
                + " read back after its write does not hold the image: " + what + "; the write path or the storage"
                + " under the volume lost or changed bytes (check the pool's device and its kernel log)");
    }

    /** The SHA-256 of the disk a qcow2 image holds, every byte of its virtual size in guest order, zeros included. */
    private String decodedDigest(Path image, ImageInfo info) {
        MessageDigest digest = sha256();
        GuestSink hashing = new GuestSink() {
            @Override
            public Order order() {
                return Order.GUEST;
            }

            @Override
            public void data(long guestOffset, ByteBuffer bytes) {
                digest.update(bytes);
            }

            @Override
            public void zero(long guestOffset, long length) {
                for (long left = length; left > 0; left -= BUFFER) {
                    digest.update(ZEROS.duplicate().limit((int) Math.min(BUFFER, left)));
                }
            }
        };
        try (FileChannel in = FileChannel.open(image, StandardOpenOption.READ)) {
            Qcow2Image qcow2 = Qcow2Image.open(in);
            if (qcow2.header().virtualSize() != info.virtualSize()) {
                throw new ProvisioningException(ErrorCode.UNSUPPORTED_IMAGE, "the image changed since it was"
                        + " inspected: its virtual size is " + qcow2.header().virtualSize() + ", not "
                        + info.virtualSize());
            }
            qcow2.decode(hashing, null, 1, done -> { }, cancellation);
        } catch (IOException e) {
            throw IoFailure.of("decoding " + image + " to check the volume", e);
        }
        return HexFormat.of().formatHex(digest.digest());
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every Java platform has SHA-256", e);
        }
    }
}
