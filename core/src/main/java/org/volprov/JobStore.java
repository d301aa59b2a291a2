package org.volprov;

import java.util.List;
import java.util.Optional;

/**
 * Where job records live. Every state, stage and progress change of the engine reaches it.
 *
 * <p>Thread-safe. Returns snapshots; arguments are never null. A terminal job is never moved to
 * another state: such an update, or one of an unknown job, fails with
 * {@link ProvisioningException} {@code BACKEND_FAILURE}, as do storage failures.
 */
public interface JobStore extends AutoCloseable {

    /** Records a new job; {@code BACKEND_FAILURE} when the id is taken. */
    void insert(Job job);

    /** Replaces the job's record with {@code job}. */
    void update(Job job);

    Optional<Job> find(String id);

    /** The jobs passing {@code filter}, newest first, at most {@code filter.limit()}. */
    List<Job> list(JobFilter filter);

    /**
     * The jobs of this store's owner left {@code PENDING} or {@code RUNNING}, oldest first: after a
     * restart, the ones a previous process did not finish.
     */
    List<Job> unfinished();

    /** Releases connections; idempotent. */
    @Override
    default void close() {
    }
}
