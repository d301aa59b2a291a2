package org.volprov.cache;

import java.util.List;
import java.util.Objects;

/**
 * What {@link ImageCache#verify} found: one result per entry checked, in the order checked.
 *
 * @param results never null
 */
public record CacheVerification(List<Result> results) {
    public CacheVerification {
        results = List.copyOf(results);
    }

    /** What became of one entry. */
    public enum Outcome {
        /** Its content still hashes to its digest. */
        OK,
        /** Its content was damaged (or its file gone), and the entry is removed. */
        DROPPED,
        /**
         * Its content was damaged, but a lease holds it: it is no longer counted on and is removed as
         * soon as this cache's leases on it close (a lease of another process is not waited for).
         */
        DROP_PENDING,
        /** There was no such entry (or it was evicted before its turn). */
        NOT_CACHED
    }

    /**
     * @param sha256 the entry's digest
     * @param outcome what became of it
     * @param reason why, for a person; empty for {@link Outcome#OK}
     */
    public record Result(String sha256, Outcome outcome, String reason) {
        public Result {
            Objects.requireNonNull(sha256, "sha256");
            Objects.requireNonNull(outcome, "outcome");
            Objects.requireNonNull(reason, "reason");
        }
    }

    /** The digests found sound. */
    public List<String> ok() {
        return results.stream().filter(r -> r.outcome() == Outcome.OK).map(Result::sha256).toList();
    }

    /** The entries found damaged: dropped, or to be dropped once unleased. */
    public List<Result> dropped() {
        return results.stream()
                .filter(r -> r.outcome() == Outcome.DROPPED || r.outcome() == Outcome.DROP_PENDING).toList();
    }
}
