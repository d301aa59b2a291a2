package org.volprov.redis;

/**
 * One host's cache as Redis sees it, summed over all its processes since the index was first
 * written (counters are not reset by a restart of a process, but are lost with Redis's data).
 *
 * @param hostId the host
 * @param alive whether the host's heartbeat is fresh (a process of it renewed within three lease times)
 * @param hits leases taken on existing entries
 * @param misses downloads started (room reserved)
 * @param admissions entries added
 * @param evictions entries removed to make room
 * @param entries entries held now
 * @param bytesInUse bytes held now
 */
public record SharedCacheStats(
        String hostId,
        boolean alive,
        long hits,
        long misses,
        long admissions,
        long evictions,
        long entries,
        long bytesInUse) {
}
