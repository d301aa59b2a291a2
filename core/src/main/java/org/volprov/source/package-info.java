/**
 * Where images come from: the {@link org.volprov.source.ImageSource} extension point, its value
 * types, and what an object-store adapter shares.
 *
 * <ul>
 *   <li>{@link org.volprov.source.ImageSource}: {@code stat}, the published checksum, and ranged reads
 *       conditional on the entity tag that {@code stat} returned;</li>
 *   <li>{@link org.volprov.source.ObjectInfo}: what a source says about an object;</li>
 *   <li>{@link org.volprov.source.PublishedChecksum}: the parser of {@code <key>.sha256} siblings;</li>
 *   <li>{@link org.volprov.source.LocalDirectoryImageSource}: the embedded default, a directory of
 *       {@code <bucket>/<key>} files;</li>
 *   <li>{@link org.volprov.source.ObjectStoreConfig}: the configuration both object-store adapters
 *       share (endpoint, region, keys, trust, timeouts);</li>
 *   <li>{@link org.volprov.source.ObjectStoreReads}: the checks around a ranged read and a sibling
 *       read that both adapters make;</li>
 *   <li>{@link org.volprov.source.ObjectStoreReplies}: how an S3-compatible reply (status, headers,
 *       lengths, entity tags) becomes an {@link org.volprov.ErrorCode}, shared by the S3 and MinIO
 *       adapters.</li>
 * </ul>
 */
package org.volprov.source;
