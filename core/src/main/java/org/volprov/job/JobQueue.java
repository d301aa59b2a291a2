package org.volprov.job;

import java.time.Duration;
import java.util.Optional;
import org.volprov.Job;
import org.volprov.ProvisioningException;

/**
 * A {@link JobStore} that is also a work queue shared by the engines of a fleet: any process may
 * {@link #enqueue} a job for a named host, and an engine of that host {@link #claim}s it, holds it
 * under the store's lease like any job it runs (renewed with {@link #renew}, writes fenced by
 * holder), and writes its states with {@link #update} as usual.
 *
 * <p>A queued job that never started and whose holder's lease ran out (or that was
 * {@link #release}d) can be claimed again; a queued job that started and whose holder's lease ran
 * out is {@link JobStore#abandoned}, and recovered like a submitted one.
 *
 * <p>Thread-safe. Arguments are never null. Storage failures are {@link ProvisioningException}
 * {@code BACKEND_FAILURE}.
 */
public interface JobQueue extends JobStore {

    /** The host this store acts for: a host id, shared by every engine of that host. */
    String host();

    /**
     * Records {@code job}, which must be {@code PENDING}, for an engine of {@code host} to claim.
     * {@code BACKEND_FAILURE} when the id is taken; {@code INVALID_REQUEST} when the job is not pending.
     */
    void enqueue(Job job, String host);

    /**
     * Takes the oldest {@code PENDING} job queued for {@code host} that nobody holds (never claimed,
     * released, or whose holder's lease ran out) and makes {@code engine} its holder for
     * {@code lease}. Two callers never get the same job while its lease runs.
     */
    Optional<Job> claim(String host, String engine, Duration lease);

    /**
     * Gives up {@code engine}'s hold on a queued job that has not started: it can be claimed again
     * at once. Does nothing when {@code engine} does not hold it.
     */
    void release(String jobId, String engine);
}
