package org.volprov.it;

import java.nio.file.Path;
import org.volprov.image.ImageFormat;

/**
 * An image file of the suite and what a volume provisioned from it must hold.
 *
 * @param name a short name for messages
 * @param file the image as uploaded
 * @param format its format
 * @param fileSha256 SHA-256 of the file: what its {@code .sha256} sibling publishes
 * @param virtualSize the disk size the image describes
 * @param rawSha256 SHA-256 of {@code qemu-img convert -O raw} of the file, over the virtual size
 */
record TestImage(String name, Path file, ImageFormat format, String fileSha256, long virtualSize, String rawSha256) {
}
