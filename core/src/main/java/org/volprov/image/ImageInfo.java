package org.volprov.image;

import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;

/**
 * What the converter found in an image.
 *
 * @param format the image's format, never {@code AUTO}
 * @param virtualSize the size of the disk the image describes
 * @param fileSize the size of the image file
 */
public record ImageInfo(ImageFormat format, long virtualSize, long fileSize) {
    public ImageInfo {
        if (format == null || format == ImageFormat.AUTO) {
            throw new IllegalArgumentException("format must be QCOW2 or RAW");
        }
        if (virtualSize < 0 || fileSize < 0) {
            throw new IllegalArgumentException("sizes must not be negative");
        }
    }

    /**
     * This, when the image fits a volume of {@code volumeSizeBytes}.
     *
     * @throws ProvisioningException {@code VOLUME_TOO_SMALL} when its virtual size is larger
     */
    public ImageInfo requireFits(long volumeSizeBytes) {
        if (virtualSize > volumeSizeBytes) {
            throw new ProvisioningException(ErrorCode.VOLUME_TOO_SMALL, "the image's virtual size is " + virtualSize
                    + " bytes but the volume is " + volumeSizeBytes + " bytes; ask for a volume of at least "
                    + virtualSize + " bytes");
        }
        return this;
    }
}
