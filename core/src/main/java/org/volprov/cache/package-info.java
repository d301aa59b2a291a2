/**
 * The embedded image cache and its building blocks.
 *
 * <ul>
 *   <li>{@link org.volprov.cache.DiskImageCache}: the {@link org.volprov.cache.ImageCache} on local disk,
 *       built with {@code DiskImageCache.builder()}.
 *   <li>package-private parts: {@code Admission} (single flight, room, install), {@code EntryLease}
 *       (a held entry), {@code CacheFiles} (temp files, fsync, rename, metadata and alias files),
 *       {@code Fill} (the hashing sink), {@code CacheSweep} (the sweep at open),
 *       {@code IndexDirectory} (the directory as the index sees it), {@code CacheMaintenance}
 *       (evict, re-verify, and entries found unusable).
 *   <li>{@link org.volprov.cache.CacheIndex}: the seam for the index (entries, leases, LRU budget,
 *       aliases); the default is in memory on Caffeine, a shared one plugs in through
 *       {@code DiskImageCache.Builder#index}.
 *   <li>{@link org.volprov.cache.CachingImageSource}: memoizes {@code stat} and
 *       {@code publishedChecksum} of any {@link org.volprov.source.ImageSource}.
 * </ul>
 *
 * <h2>On-disk layout</h2>
 *
 * <p>One flat directory per cache; every file name is derived from a SHA-256, so nothing from a
 * request reaches a path:
 *
 * <pre>
 * &lt;dir&gt;/lock                 held (flock) by the open cache; a second open of the directory fails,
 *                          unless every cache opens it shared (several processes over one shared index)
 * &lt;dir&gt;/&lt;sha256&gt;             image bytes as downloaded (compressed qcow2 stays compressed), read-only
 * &lt;dir&gt;/&lt;sha256&gt;.meta        java.util.Properties: sha256, size
 * &lt;dir&gt;/&lt;sha256(id)&gt;.alias   java.util.Properties: identity (bucket/key@etag#size), sha256 of its content
 * &lt;dir&gt;/&lt;random hex&gt;.tmp      a download or a small file being written
 * </pre>
 *
 * <p>A download is written to a {@code .tmp} file while it is hashed, fsynced, compared with the
 * published digest, then its {@code .meta} is written durably (temp, fsync, rename) and the data
 * renamed to its digest; the directory is fsynced after each rename. An alias is written after the
 * entry, so that the next request for the same unchanged object without a published checksum is a
 * hit. At open, {@code .tmp} files and anything the layout never produces are removed, data whose
 * size differs from its {@code .meta} (or that has none) is removed, {@code .meta} and
 * {@code .alias} files whose data is gone are removed, and (with {@code verifyOnOpen}) every entry is
 * re-hashed. The LRU order after a restart starts from the data files' modification times
 * (admission order).
 *
 * <h2>A directory shared by several processes</h2>
 *
 * <p>With {@code DiskImageCache.Builder#sharedDirectory(staleTempAfter)}, a shared
 * {@link org.volprov.cache.CacheIndex} and a shared {@link org.volprov.cache.FillLock}, several
 * processes on one host use one directory: the lock file is taken shared, the sweep at open spares
 * temp files and lone {@code .meta} files younger than {@code staleTempAfter} (another process's
 * download or install in progress), and a download runs under the fill lock, so two processes
 * asking for one image make one download.
 */
package org.volprov.cache;
