package org.volprov;

import java.time.Duration;
import java.util.Optional;

/**
 * A {@link JobStore} that is also a work queue shared by the engines of a fleet: any process may
 * {@link #enqueue} a job for a named host, and that host's engine {@link #claim}s it, holds it by a
 * lease it {@link #renew}s while the job runs, and writes its states with {@link #update} as usual.
 * A job whose lease ran out (its engine died) can be claimed again.
 *
 * <p>Each store acts for one host, {@link #host()}: the jobs it {@link #insert}s are that host's, and
 * an {@link #update} of a job that another host holds fails with {@code BACKEND_FAILURE}. A host id
 * names one engine; two engines must not share one.
 *
 * <p>{@link #unfinished()} leaves queued jobs out: a queued job is recovered by its lease running
 * out, not by a restart.
 *
 * <p>Lease times are read from the store's clock, so the hosts of a fleet keep their clocks in step
 * (NTP) and a lease is much longer than their drift.
 *
 * <p>Thread-safe. Arguments are never null. Storage failures are {@link ProvisioningException}
 * {@code BACKEND_FAILURE}.
 */
public interface JobQueue extends JobStore {

    /** The host this store acts for. */
    String host();

    /**
     * Records {@code job}, which must be {@code PENDING}, for {@code host}'s engine to claim.
     * {@code BACKEND_FAILURE} when the id is taken; {@code INVALID_REQUEST} when the job is not pending.
     */
    void enqueue(Job job, String host);

    /**
     * Takes the oldest job queued for {@code host} that nobody holds (never claimed, released, or
     * whose lease ran out) and holds it for {@code lease}. The job is returned as it was left:
     * {@code PENDING}, or {@code RUNNING} when an earlier holder died while running it. Two callers
     * never get the same job while its lease runs.
     */
    Optional<Job> claim(String host, Duration lease);

    /**
     * Extends {@code host}'s hold on the job to {@code lease} from now. False when {@code host} no
     * longer holds it: it ended, was released, or is not a queued job of {@code host}.
     */
    boolean renew(String jobId, String host, Duration lease);

    /** Gives up {@code host}'s hold: the job can be claimed again at once. Does nothing when not held. */
    void release(String jobId, String host);
}
