package org.volprov.cache;

import java.time.Instant;
import java.util.List;
import java.util.Objects;
import java.util.OptionalInt;

/**
 * One image held by an {@link ImageCache}, as {@link ImageCache#list()} reports it.
 *
 * @param sha256 the entry's digest, lower-case hex
 * @param size its size in bytes
 * @param sources the object versions known to have this content, each {@code bucket/key@etag#size};
 *     empty when none was recorded (the entry was admitted by an earlier version, or the record was lost)
 * @param lastUsed when the entry was last admitted or leased (after a restart: its file's modification time)
 * @param leases open leases on it taken through this cache
 * @param leasesElsewhere open leases held by other processes sharing the directory, where the index
 *     can see them; empty when it cannot (a shared index whose store is unreachable)
 */
public record CachedImage(String sha256, long size, List<String> sources, Instant lastUsed, int leases,
        OptionalInt leasesElsewhere) {
    public CachedImage {
        Objects.requireNonNull(sha256, "sha256");
        sources = List.copyOf(sources);
        Objects.requireNonNull(lastUsed, "lastUsed");
        Objects.requireNonNull(leasesElsewhere, "leasesElsewhere");
        if (size < 0 || leases < 0) {
            throw new IllegalArgumentException("size and leases must not be negative");
        }
    }

    /** Whether any lease, here or (as far as is known) elsewhere, holds the entry. */
    public boolean leased() {
        return leases > 0 || leasesElsewhere.orElse(0) > 0;
    }
}
