package org.volprov.cache;

/**
 * Counters of a cache since it was opened, and its current use.
 *
 * @param hits lookups or admissions served without a download by the caller
 * @param misses admissions that ran a download
 * @param admissions entries added
 * @param evictions entries removed to make room
 * @param checksumFailures downloads refused because their digest differed
 * @param entries entries held now
 * @param bytesInUse bytes held now
 * @param bytesDownloaded bytes written by fillers
 * @param lostEntries entries dropped because their file was found gone (the image is fetched again)
 */
public record CacheStats(
        long hits,
        long misses,
        long admissions,
        long evictions,
        long checksumFailures,
        long entries,
        long bytesInUse,
        long bytesDownloaded,
        long lostEntries) {
}
