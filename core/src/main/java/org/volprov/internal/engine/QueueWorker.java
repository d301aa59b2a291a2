package org.volprov.internal.engine;

import java.time.Instant;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.volprov.ErrorCode;
import org.volprov.Job;
import org.volprov.JobEvent;
import org.volprov.JobState;
import org.volprov.job.JobQueue;
import org.volprov.volume.VolumeGuard;

/**
 * Takes work from a fleet's {@link JobQueue}: whenever the engine has a free slot, claims the next
 * job queued for its host and runs it like a submitted one, holding it under a lease from the time
 * the claim was sent. Runs on the engine's store thread.
 */
final class QueueWorker {
    private static final Logger LOG = LoggerFactory.getLogger(QueueWorker.class);

    private final EngineSettings settings;
    private final JobParts parts;
    private final Dispatcher dispatcher;
    private final Recovery recovery;
    private final LeaseKeeper leases;
    private boolean failing; // only the store thread reads and writes it

    QueueWorker(JobParts parts, Dispatcher dispatcher, Recovery recovery, LeaseKeeper leases) {
        this.settings = parts.settings();
        this.parts = parts;
        this.dispatcher = dispatcher;
        this.recovery = recovery;
        this.leases = leases;
    }

    /** The store thread's task: claims jobs while a slot is free. */
    void poll() {
        try {
            // A job is claimed only for a free slot, so claimed jobs never wait behind submitted ones.
            while (!dispatcher.isClosed() && dispatcher.hasFreeRunSlot()) {
                Instant sentAt = settings.clock().instant();
                Optional<Job> next = settings.queue().claim(settings.queue().host(), settings.engineId(), settings.jobLease());
                if (next.isEmpty()) {
                    break;
                }
                take(next.get(), sentAt);
            }
            if (failing) {
                failing = false;
                LOG.info("the job queue answers again");
            }
        } catch (RuntimeException e) {
            if (!failing) {
                failing = true;
                LOG.warn("cannot reach the job queue; trying again every {}: {}", settings.queuePoll(), e.getMessage());
            }
        }
    }

    private void take(Job job, Instant sentAt) {
        Optional<JobRun> mine = dispatcher.find(job.id());
        if (mine.isPresent()) {
            // This engine has it already, waiting for a slot; its lease ran out while the store was unreachable.
            mine.get().lease().confirmed(sentAt);
            return;
        }
        JobLease lease = leases.hold(job.id(), sentAt);
        Optional<VolumeGuard.Lock> guard = VolumeLocks.tryLock(settings.volumeGuard(), job.request());
        if (guard.isEmpty()) {
            // As submit refuses it: a queued job never started, so nothing of it is on the volume.
            Job failed = job.finished(JobState.FAILED, ErrorCode.VOLUME_BUSY, "volume " + job.request().volumeName()
                    + " has a job running or queued already", settings.clock().instant());
            parts.records().end(failed, lease);
            parts.events().publish(JobEvent.Kind.STATE, failed);
            return;
        }
        boolean handedOn = false;
        try {
            handedOn = recovery.adopt(job, guard.get(), lease, true);
        } finally {
            if (!handedOn) {
                guard.get().close();
            }
        }
    }
}
