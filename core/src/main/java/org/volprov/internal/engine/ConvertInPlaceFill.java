package org.volprov.internal.engine;

import java.io.IOException;
import java.nio.file.Path;
import org.volprov.image.ImageConverter;
import org.volprov.image.ImageInfo;
import org.volprov.volume.VolumeWriter;

/**
 * Converts a qcow2 image straight onto the volume's local path (a pool file or a block device),
 * with a converter other than the default (qemu-img, configured explicitly).
 */
final class ConvertInPlaceFill implements VolumeFill {
    private final ImageConverter converter;

    ConvertInPlaceFill(ImageConverter converter) {
        this.converter = converter;
    }

    @Override
    public void fill(Path image, ImageInfo info, JobVolume volume) throws IOException {
        VolumeWriter w = volume.writer();
        // qemu-img writes on its own: a lost lease kills it, but it cannot pause for a doubt.
        volume.awaitHeld();
        converter.convertToRaw(image, info, w.localPath().orElseThrow(), volume.readsAsZeros(), volume::written,
                volume.cancellation());
        w.skip(info.virtualSize());
    }
}
