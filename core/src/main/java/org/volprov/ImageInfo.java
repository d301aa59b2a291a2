package org.volprov;

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
}
