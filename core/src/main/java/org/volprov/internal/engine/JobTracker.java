package org.volprov.internal.engine;

import java.time.Instant;
import org.volprov.Job;
import org.volprov.JobEvent;
import org.volprov.Progress;
import org.volprov.Stage;
import org.volprov.Ticker;

/**
 * A running job's snapshot, and what reaches the store and the listeners as it changes: stages as
 * they start, progress at most once a second or per percent (on the engine's {@link Ticker}). The
 * snapshot changes only on the job's own thread; others read it. Thread-safe for readers.
 */
final class JobTracker {
    private static final long PROGRESS_INTERVAL_NANOS = 1_000_000_000L;

    private final JobParts parts;
    private final Ticker ticker;
    private final JobRecords.Writer record;
    private volatile Job job;
    private long lastProgressNanos;
    private long lastProgressBytes;

    JobTracker(JobParts parts, Job job, JobLease lease) {
        this.parts = parts;
        this.ticker = parts.settings().ticker();
        this.record = parts.records().writer(lease);
        this.job = job;
    }

    Job job() {
        return job;
    }

    /** Replaces the snapshot, without a write; the next write carries it. */
    void set(Job next) {
        job = next;
    }

    Instant now() {
        return parts.settings().clock().instant();
    }

    /** Starts {@code stage} of {@code total} bytes (0: not counted). */
    void stage(Stage stage, long total) {
        job = job.withProgress(new Progress(stage, 0, total), now());
        lastProgressNanos = ticker.nanos();
        lastProgressBytes = 0;
        save(JobEvent.Kind.STAGE);
    }

    /** {@code done} of {@code total} bytes of {@code stage}; written when due, ignored once another stage began. */
    void progress(Stage stage, long done, long total) {
        long now = ticker.nanos();
        boolean due = done >= total || now - lastProgressNanos >= PROGRESS_INTERVAL_NANOS
                || (total > 0 && (done - lastProgressBytes) * 100 >= total);
        if (!due || stage != job.stage() || done == job.progress().bytesDone()) {
            return;
        }
        lastProgressNanos = now;
        lastProgressBytes = done;
        job = job.withProgress(new Progress(stage, Math.min(done, total), total), now());
        save(JobEvent.Kind.PROGRESS);
    }

    /** Writes the snapshot to the store and tells the listeners ({@code kind} null: store only). */
    void save(JobEvent.Kind kind) {
        record.save(job, kind == JobEvent.Kind.PROGRESS);
        if (kind != null) {
            parts.events().publish(kind, job);
        }
    }
}
