package org.volprov.internal.engine;

import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.volprov.Job;
import org.volprov.Provisioner;
import org.volprov.ProvisioningException;
import org.volprov.job.JobStore;

/**
 * Ends of jobs that the job store did not take (it was down), kept until it does: in memory, for
 * {@link Provisioner#status}, and in the {@link EndJournal} when the engine has a state directory,
 * for the next start. Their leases stay with the {@link LeaseKeeper}, so that no other engine
 * recovers a job that ended here while its end waits. Written again from the engine's store thread,
 * never from the watchdog. Thread-safe.
 */
final class UnrecordedEnds {
    private static final Logger LOG = LoggerFactory.getLogger(UnrecordedEnds.class);

    private final JobStore store;
    private final String engineId;
    private final EndJournal journal; // null: no state directory, ends are kept in memory only
    private final LeaseKeeper keeper;
    private final Map<String, Job> ends = new ConcurrentHashMap<>();

    UnrecordedEnds(JobStore store, String engineId, EndJournal journal, LeaseKeeper keeper) {
        this.store = store;
        this.engineId = engineId;
        this.journal = journal;
        this.keeper = keeper;
    }

    /** Keeps {@code end}, held under {@code lease}, until the store takes it. */
    void keep(Job end, JobLease lease) {
        ends.put(end.id(), end);
        if (journal != null) {
            try {
                journal.keep(engineId, end);
            } catch (ProvisioningException e) {
                LOG.error("{}; the end is kept in memory only, and is lost if the process exits before the job store"
                        + " takes it", e.getMessage());
            }
        }
        lease.onLost(() -> {
            if (ends.remove(end.id()) != null) {
                LOG.error("job {} ended {} on engine {}, but another engine took it over before the job store took"
                        + " that end; the job is that engine's now", end.id(), end.state(), engineId);
                forgetFile(end.id());
            }
        });
    }

    /** The store took the end of {@code jobId} (or holds another): nothing more to keep. */
    void recorded(String jobId) {
        ends.remove(jobId);
        forgetFile(jobId);
        keeper.drop(jobId);
    }

    Optional<Job> get(String jobId) {
        return Optional.ofNullable(ends.get(jobId));
    }

    /** Whether kept ends outlive the process (the engine has a state directory). */
    boolean journaled() {
        return journal != null;
    }

    Set<String> ids() {
        return Set.copyOf(ends.keySet());
    }

    /**
     * Writes the kept ends to the store: this engine's, then those the journal holds from other
     * engines of the host (a process that exited before the store took them). Each is written only
     * while the engine it names still holds the job, so an end never overwrites another end, nor a
     * job another engine took over. Stops at the first storage failure and returns false.
     */
    boolean writeAll() {
        for (Job end : List.copyOf(ends.values())) {
            try {
                if (store.update(end, engineId)) {
                    LOG.info("recorded the end of job {} ({}) now that the job store answers", end.id(), end.state());
                } else {
                    LOG.warn("the job store refused the end of job {} ({}): it holds another end for it, or another"
                            + " engine holds the job", end.id(), end.state());
                }
            } catch (RuntimeException e) {
                if (!unknown(end.id())) {
                    return false;
                }
            }
            recorded(end.id());
        }
        if (journal == null) {
            return true;
        }
        for (EndJournal.Entry e : journal.entries()) {
            if (ends.containsKey(e.end().id())) {
                continue; // this engine's own, written above or kept since
            }
            try {
                boolean taken = store.update(e.end(), e.engine());
                LOG.info("job {}: the end ({}) that engine {} kept on disk {}", e.end().id(), e.end().state(),
                        e.engine(), taken ? "is recorded now" : "was refused: the store holds another end or holder");
            } catch (RuntimeException x) {
                if (!unknown(e.end().id())) {
                    return false;
                }
            }
            journal.forget(e.end().id());
        }
        return true;
    }

    /** Whether the store answers that it has no such job (pruned, or another store's): its end has nowhere to go. */
    private boolean unknown(String jobId) {
        try {
            if (store.find(jobId).isEmpty()) {
                LOG.warn("the job store has no job {}; its kept end is dropped", jobId);
                return true;
            }
            return false;
        } catch (RuntimeException e) {
            return false;
        }
    }

    private void forgetFile(String jobId) {
        if (journal != null) {
            journal.forget(jobId);
        }
    }
}
