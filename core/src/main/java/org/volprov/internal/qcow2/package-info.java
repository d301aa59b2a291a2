/**
 * The qcow2 decoder behind {@link org.volprov.image.Qcow2Converter}; not API.
 *
 * <ul>
 *   <li>{@link org.volprov.internal.qcow2.Qcow2Header}: the header and its extensions, validated,
 *       decidable from a prefix of the file (a download's first bytes);</li>
 *   <li>{@link org.volprov.internal.qcow2.HeaderCheck}: that judgement on a download, before the
 *       rest is fetched;</li>
 *   <li>{@link org.volprov.internal.qcow2.Qcow2Image}: random access over a finished file, decoding
 *       in guest order (the warm path);</li>
 *   <li>{@link org.volprov.internal.qcow2.Qcow2Stream}: a push decoder fed the file's bytes in file
 *       order, finishing from the complete file what it could not decode live;</li>
 *   <li>{@link org.volprov.internal.qcow2.StreamingFill}: a volume filled from an image while it
 *       downloads (qcow2 through the push decoder, raw straight through), finished from the
 *       verified cache file;</li>
 *   <li>{@link org.volprov.internal.qcow2.GuestSink}: where the disk goes, positional or in guest
 *       order; {@link org.volprov.internal.qcow2.ChannelSink} writes a file or block device.</li>
 * </ul>
 *
 * <p>Package-private: the mapping rules ({@code Mapping}), the codecs ({@code Codec}: deflate
 * through {@link java.util.zip.Inflater}, zstd through zstd-jni), the decompression pool and the
 * bounded, ordered output stage. Every failure the image causes is a
 * {@link org.volprov.ProvisioningException} with {@code UNSUPPORTED_IMAGE}; I/O failures are
 * {@link java.io.IOException}s for the caller to translate.
 */
package org.volprov.internal.qcow2;
