package org.volprov.image;

import java.nio.file.Path;
import java.util.function.LongConsumer;
import org.volprov.Cancellation;
import org.volprov.ProvisioningException;

/**
 * Reads image metadata and turns an image into raw bytes on a volume. Thread-safe.
 */
public interface ImageConverter {

    /**
     * Inspects {@code image} of the given format ({@code AUTO} detects it from the first bytes).
     *
     * @throws ProvisioningException {@code UNSUPPORTED_IMAGE} for a corrupt image, an unknown
     *     format, a format other than the requested one, a backing file, an external data file or
     *     encryption
     */
    ImageInfo inspect(Path image, ImageFormat format);

    /**
     * Inspects {@code image} for a volume of {@code volumeSizeBytes}, as the engine does before it
     * makes the volume: like {@link #inspect(Path, ImageFormat)}, and an image whose virtual size
     * exceeds the volume is refused before any costly check of its content. Stops promptly when
     * {@code cancellation} is cancelled.
     *
     * <p>The default inspects, then compares the sizes. A converter whose inspection runs costly
     * checks (qemu-img's {@code check}) overrides it to compare first.
     *
     * @throws ProvisioningException {@code VOLUME_TOO_SMALL}, those of
     *     {@link #inspect(Path, ImageFormat)}, or the cancellation's code
     */
    default ImageInfo inspect(Path image, ImageFormat format, long volumeSizeBytes, Cancellation cancellation) {
        cancellation.checkpoint();
        return inspect(image, format).requireFits(volumeSizeBytes);
    }

    /**
     * Writes the raw content of {@code image} onto the existing {@code target} (never creating it).
     * When {@code targetIsZero}, zero regions of the image may be skipped.
     *
     * @param progress receives the bytes of the virtual size done so far
     * @param cancellation stops the conversion promptly when cancelled
     * @throws ProvisioningException {@code BACKEND_FAILURE} when the conversion fails, or the
     *     cancellation's code
     */
    void convertToRaw(Path image, ImageInfo info, Path target, boolean targetIsZero, LongConsumer progress,
            Cancellation cancellation);
}
