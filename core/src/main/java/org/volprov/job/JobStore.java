package org.volprov.job;

import java.time.Duration;
import java.util.Collection;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import org.volprov.Job;
import org.volprov.JobFilter;
import org.volprov.Provisioner;
import org.volprov.ProvisioningException;

/**
 * Where job records live. Every state, stage and progress change of the engine reaches it.
 *
 * <p><b>Holders and leases.</b> Every job that has not ended is held by one running engine, named by
 * its engine id ({@link Provisioner.Builder#engineId}), under a lease that the engine
 * {@link #renew}s while it holds the job. Writes are fenced by holder: {@link #update} by an engine
 * that no longer holds the job changes nothing. When a holder's lease runs out (its process died,
 * or lost the store for longer than the lease), the job is {@link #abandoned} and another engine
 * of the same host may {@link #takeOver} it, atomically: of two engines trying at once, one gets it.
 * Lease times are read from the store's clock, so engines that share a store keep their clocks in
 * step (NTP), and a lease is much longer than their drift.
 *
 * <p>Each store acts for one host: the jobs it {@link #insert}s are that host's, and
 * {@link #abandoned} and {@link #takeOver} see only that host's jobs.
 *
 * <p>Thread-safe. Returns snapshots; arguments are never null. Storage failures are
 * {@link ProvisioningException} {@code BACKEND_FAILURE}; a refusal is an answer ({@code false},
 * empty), not an exception, except where a method says otherwise.
 */
public interface JobStore extends AutoCloseable {

    /**
     * Records a new job of this store's host, held by {@code engine} for {@code lease} from now.
     * {@code BACKEND_FAILURE} when the id is taken.
     */
    void insert(Job job, String engine, Duration lease);

    /**
     * Replaces the job's record with {@code job} when {@code engine} holds it. A terminal
     * {@code job} ends the hold. False, and nothing changed, when {@code engine} does not hold it:
     * another engine took it over, or it ended already (rewriting the identical terminal snapshot
     * is accepted, so that a retried write succeeds). {@code BACKEND_FAILURE} for an unknown job.
     */
    boolean update(Job job, String engine);

    Optional<Job> find(String id);

    /** The jobs passing {@code filter}, newest first, at most {@code filter.limit()}. */
    List<Job> list(JobFilter filter);

    /**
     * Extends {@code engine}'s lease on each of {@code jobIds} to {@code lease} from now, and returns
     * the ids it still holds; the others were taken over, or ended, or are unknown.
     */
    Set<String> renew(Collection<String> jobIds, String engine, Duration lease);

    /**
     * This host's jobs that have not ended and whose holder's lease ran out, oldest first, at most
     * {@code max}: submitted jobs, and queued jobs that were started. (A queued job that never
     * started is {@link JobQueue#claim claimed} instead.)
     */
    List<Job> abandoned(int max);

    /**
     * Makes {@code engine} the holder of job {@code jobId} for {@code lease} from now, if the job is
     * this host's, has not ended, and its holder's lease ran out; returns the job as it is then.
     * Atomic: two engines never both take one job over, and the earlier holder can no longer
     * write or renew it.
     */
    Optional<Job> takeOver(String jobId, String engine, Duration lease);

    /** Releases connections; idempotent. */
    @Override
    default void close() {
    }
}
