/**
 * Turning an image into a volume's raw bytes: the {@link org.volprov.image.ImageConverter} extension
 * point, its value types and its two implementations.
 *
 * <ul>
 *   <li>{@link org.volprov.image.ImageConverter}: inspect an image, write its raw content onto a volume;</li>
 *   <li>{@link org.volprov.image.ImageFormat} and {@link org.volprov.image.ImageInfo}: what an image is;</li>
 *   <li>{@link org.volprov.image.Qcow2Converter}: the default, the qcow2 decoder in plain Java;</li>
 *   <li>{@link org.volprov.image.QemuImgConverter}: the alternative that runs {@code qemu-img}, bounded
 *       in time and memory.</li>
 * </ul>
 */
package org.volprov.image;
