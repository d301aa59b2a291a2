package org.volprov.internal.engine;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.volprov.job.JobStore;

/**
 * Keeps this engine's leases on the jobs it holds (running, waiting for a slot, or ended with an end
 * the store did not take yet): renews them all every third of the lease, when the engine's lease
 * thread calls {@link #renewIfDue} (a thread of its own, so that neither a busy job nor a slow
 * deadline check can make them run out), and tells each {@link JobLease} what the store answered.
 * Thread-safe.
 */
final class LeaseKeeper {
    private static final Logger LOG = LoggerFactory.getLogger(LeaseKeeper.class);

    private final JobStore store;
    private final String engineId;
    private final Duration lease;
    private final Duration every;
    private final Clock clock;
    private final long tickMillis;
    private final Map<String, JobLease> held = new ConcurrentHashMap<>();
    private Instant lastRenewal; // only the keeper's thread reads and writes it
    private boolean failing; // only the keeper's thread reads and writes it

    LeaseKeeper(JobStore store, String engineId, Duration lease, Clock clock, long tickMillis) {
        this.store = store;
        this.engineId = engineId;
        this.lease = lease;
        this.every = lease.dividedBy(3);
        this.clock = clock;
        this.tickMillis = tickMillis;
        this.lastRenewal = clock.instant();
    }

    /** The engine's lease length. */
    Duration lease() {
        return lease;
    }

    /** Starts keeping the lease the store granted on {@code jobId} for a request sent at {@code sentAt}. */
    JobLease hold(String jobId, Instant sentAt) {
        JobLease l = new JobLease(jobId, sentAt, clock, lease, tickMillis);
        held.put(jobId, l);
        return l;
    }

    /** Whether the engine keeps a lease on {@code jobId}. */
    boolean holds(String jobId) {
        return held.containsKey(jobId);
    }

    /** Stops renewing {@code jobId}'s lease: the job ended in the store, or is given up. */
    void drop(String jobId) {
        held.remove(jobId);
    }

    /** Renews the held leases when a third of the lease has passed since the last renewal; the lease thread's task. */
    void renewIfDue() {
        try {
            if (held.isEmpty() || clock.instant().isBefore(lastRenewal.plus(every))) {
                return;
            }
            renew();
        } catch (RuntimeException | Error e) {
            LOG.warn("renewing leases failed unexpectedly", e);
        }
    }

    private void renew() {
        List<JobLease> leases = new ArrayList<>(held.values());
        List<String> ids = leases.stream().map(JobLease::jobId).toList();
        Instant sentAt = clock.instant();
        Set<String> still;
        try {
            still = store.renew(ids, engineId, lease);
        } catch (RuntimeException e) {
            // Tried again at the next tick; a job whose lease falls in doubt meanwhile stops writing.
            if (!failing) {
                failing = true;
                LOG.warn("cannot renew the leases of {} jobs of engine {}; their writes pause once the lease of {}"
                        + " has passed without a renewal: {}", ids.size(), engineId, lease, e.getMessage());
            }
            return;
        }
        if (failing) {
            failing = false;
            LOG.info("the job store renews the leases of engine {} again", engineId);
        }
        lastRenewal = sentAt;
        for (JobLease l : leases) {
            if (still.contains(l.jobId())) {
                l.confirmed(sentAt);
            } else if (held.get(l.jobId()) == l) {
                // Marked lost before it is dropped: whoever sees it dropped sees it lost.
                l.lost("the job store says engine " + engineId + " no longer holds job " + l.jobId()
                        + ": its lease ran out and another engine took the job over, or the job ended");
                held.remove(l.jobId(), l);
            }
        }
    }

    /** Jobs whose lease is in doubt stop waiting for the store: the engine is closing. */
    void giveUpDoubts() {
        held.values().forEach(JobLease::giveUp);
    }
}
