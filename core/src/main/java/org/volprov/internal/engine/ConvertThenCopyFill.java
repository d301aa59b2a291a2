package org.volprov.internal.engine;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import org.volprov.image.ImageConverter;
import org.volprov.image.ImageInfo;

/**
 * Converts a qcow2 image to a temporary raw file in the work directory, then copies that onto the
 * volume: for backends that take a stream and have no local path, with a converter that writes
 * only to a path (qemu-img, configured explicitly; the default converter streams through
 * {@link DecodingFill} instead). Each half is half the progress.
 */
final class ConvertThenCopyFill implements VolumeFill {
    private final ImageConverter converter;
    private final Path workDirectory;
    private final RawCopyFill copy;

    ConvertThenCopyFill(ImageConverter converter, Path workDirectory, RawCopyFill copy) {
        this.converter = converter;
        this.workDirectory = workDirectory;
        this.copy = copy;
    }

    @Override
    public void fill(Path image, ImageInfo info, JobVolume volume) throws IOException {
        long virtual = info.virtualSize();
        Path raw = Files.createTempFile(workDirectory, "volprov-", ".raw");
        try {
            try (RandomAccessFile f = new RandomAccessFile(raw.toFile(), "rw")) {
                f.setLength(virtual);
            }
            converter.convertToRaw(image, info, raw, true, d -> volume.written(d / 2), volume.cancellation());
            copy.copy(raw, virtual, volume, d -> volume.written(virtual / 2 + d / 2));
        } finally {
            Files.deleteIfExists(raw);
        }
    }
}
