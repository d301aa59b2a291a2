package org.volprov.internal.engine;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.volprov.Job;

/**
 * Writes the engine's job records to the job store: a running job's snapshots ({@link Writer}),
 * and every job's end ({@link #end}), whether the job ran here or was ended by recovery or the
 * queue worker. A failing store does not stop a job; the retries follow one rule, paced by
 * {@link Spacing} on the engine's ticker: progress is written at most once per interval while the
 * store fails; an end is tried a few times at once, then kept ({@link UnrecordedEnds}, on disk with
 * a state directory) and written again from the store thread at most once per interval
 * ({@link #writeKept}). Thread-safe, except each {@link Writer}, which its job's thread uses.
 */
final class JobRecords {
    private static final Logger LOG = LoggerFactory.getLogger(JobRecords.class);
    /** Tries of an end before it is left to the store thread. */
    private static final int END_ATTEMPTS = 3;

    private final EngineSettings settings;
    private final LeaseKeeper leases;
    private final UnrecordedEnds ends;
    private final Spacing keptEnds; // the store thread's, and close()'s once that thread has stopped

    JobRecords(EngineSettings settings, LeaseKeeper leases, UnrecordedEnds ends) {
        this.settings = settings;
        this.leases = leases;
        this.ends = ends;
        this.keptEnds = new Spacing(settings.ticker());
    }

    /** A writer for the running job held under {@code lease}. */
    Writer writer(JobLease lease) {
        return new Writer(lease);
    }

    /**
     * Writes the end of a job this engine holds under {@code lease}, trying again a few times while
     * the store is down. From its first failure the end is kept, and written later from the store
     * thread if these tries fail too.
     */
    void end(Job end, JobLease lease) {
        boolean kept = false;
        for (int attempt = 1; ; attempt++) {
            try {
                if (!settings.jobStore().update(end, settings.engineId())) {
                    LOG.warn("the job store refused the end of job {} ({}): another engine holds the job, or it ended"
                            + " already", end.id(), end.state());
                }
                if (kept) {
                    ends.recorded(end.id());
                } else {
                    leases.drop(end.id());
                }
                return;
            } catch (RuntimeException e) {
                if (!kept) {
                    ends.keep(end, lease);
                    kept = true;
                }
                if (attempt >= END_ATTEMPTS) {
                    LOG.warn("cannot record the end of job {} ({}) yet; the engine tries again while it runs: {}",
                            end.id(), end.state(), e.getMessage());
                    return;
                }
                try {
                    settings.sleeper().sleep(settings.retryPolicy().backoff(attempt, 0.5).plusMillis(100));
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    return;
                }
            }
        }
    }

    /** A job ends without a write of its end (it is another engine's, or left to recovery): its lease is let go. */
    void noEnd(String jobId) {
        leases.drop(jobId);
    }

    /**
     * Writes the kept ends; unless {@code now}, at most once per retry interval. False when the
     * store did not take them all (it is down).
     */
    boolean writeKept(boolean now) {
        if (!now && !keptEnds.due()) {
            return true;
        }
        keptEnds.defer();
        return ends.writeAll();
    }

    /** Writes one job's snapshots as it runs; used by that job's thread. */
    final class Writer {
        private final JobLease lease;
        private final Spacing spacing = new Spacing(settings.ticker());
        private boolean failing;

        private Writer(JobLease lease) {
            this.lease = lease;
        }

        /**
         * Writes {@code job}. A failing store does not stop the job; the next write carries the
         * latest state. While the store fails, {@code progress} writes are skipped until the retry
         * interval has passed. A store that says another engine holds the job loses its lease.
         */
        void save(Job job, boolean progress) {
            if ((failing && progress && !spacing.due()) || lease.isLost()) {
                return;
            }
            try {
                if (!settings.jobStore().update(job, settings.engineId())) {
                    lease.lost("the job store says engine " + settings.engineId() + " no longer holds job " + job.id()
                            + ": another engine took it over, or it ended there");
                }
                if (failing) {
                    failing = false;
                    LOG.info("the job store accepts writes again");
                }
            } catch (RuntimeException e) {
                spacing.defer();
                if (!failing) {
                    failing = true;
                    LOG.warn("cannot record job {} in the job store; the job goes on: {}", job.id(), e.getMessage());
                }
            }
        }
    }
}
