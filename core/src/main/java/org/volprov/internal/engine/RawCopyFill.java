package org.volprov.internal.engine;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.function.LongConsumer;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;
import org.volprov.image.ImageInfo;
import org.volprov.volume.VolumeWriter;

/** Copies a raw image onto the volume; on a volume that reads as zeros, zero blocks are skipped, not written. */
final class RawCopyFill implements VolumeFill {
    private final int bufferSize;

    RawCopyFill(int bufferSize) {
        this.bufferSize = bufferSize;
    }

    @Override
    public void fill(Path image, ImageInfo info, JobVolume volume) throws IOException {
        copy(image, info.virtualSize(), volume, volume::written);
    }

    /** Copies the first {@code length} bytes of {@code src} onto the volume, reporting the bytes done. */
    void copy(Path src, long length, JobVolume volume, LongConsumer progress) throws IOException {
        VolumeWriter w = volume.writer();
        boolean targetZeroed = volume.readsAsZeros();
        ByteBuffer buf = ByteBuffer.allocateDirect(bufferSize);
        ByteBuffer zeros = ByteBuffer.allocateDirect(bufferSize);
        try (FileChannel in = FileChannel.open(src, StandardOpenOption.READ)) {
            long done = 0;
            while (done < length) {
                volume.cancellation().checkpoint();
                buf.clear().limit((int) Math.min(buf.capacity(), length - done));
                while (buf.hasRemaining()) {
                    if (in.read(buf, done + buf.position()) < 0) {
                        throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "image " + src + " ended at "
                                + (done + buf.position()) + " of " + length + " bytes");
                    }
                }
                buf.flip();
                int n = buf.remaining();
                if (targetZeroed && buf.mismatch(zeros.duplicate().limit(n)) == -1) {
                    w.skip(n);
                } else {
                    w.write(buf);
                }
                done += n;
                progress.accept(done);
            }
        }
    }
}
