package org.volprov.internal.engine;

import java.time.Instant;
import java.util.List;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.volprov.ErrorCode;
import org.volprov.Job;
import org.volprov.JobEvent;
import org.volprov.JobFilter;
import org.volprov.JobKind;
import org.volprov.JobState;
import org.volprov.Provisioner;
import org.volprov.ProvisioningException;
import org.volprov.image.QemuImgConverter;
import org.volprov.volume.VolumeGuard;

/**
 * Takes over the jobs of this host whose engine's lease ran out (the engine died, or lost the
 * store for longer than its lease), and ends or resumes them by the {@link Provisioner.RecoveryMode}.
 * Runs at start ({@link #atStart}) and then every third of the lease ({@link #tick}), on the engine's
 * store thread.
 *
 * <p>For each such job, in this order: the volume guard is taken (busy: another live job holds
 * the volume, and the job is left alone); the job is taken over in the store, atomically (another
 * engine got it first, or its holder renewed meanwhile: it is left alone); then the request is
 * checked as {@link Provisioner#submit} checks it, and the job is resumed or ended.
 */
final class Recovery {
    private static final Logger LOG = LoggerFactory.getLogger(Recovery.class);
    /** Jobs looked at per pass, at most. */
    static final int BATCH = 100;

    private final EngineSettings settings;
    private final JobParts parts;
    private final Dispatcher dispatcher;
    private final LeaseKeeper leases;
    private final UnrecordedEnds ends;
    // Only the store thread reads and writes these (and start, before that thread runs).
    private boolean orphansLookedFor;
    private boolean failing;
    private Instant recoveredAt;

    Recovery(JobParts parts, Dispatcher dispatcher, LeaseKeeper leases, UnrecordedEnds ends) {
        this.settings = parts.settings();
        this.parts = parts;
        this.dispatcher = dispatcher;
        this.leases = leases;
        this.ends = ends;
    }

    /** At the engine's start: the ends an earlier process kept go in first, so a job that ended is never recovered as unfinished. */
    void atStart() {
        recoveredAt = settings.clock().instant();
        try {
            if (parts.records().writeKept(true)) {
                pass();
            }
        } catch (RuntimeException e) {
            failing = true;
            LOG.warn("cannot recover jobs from the job store at start; trying again every {}: {}",
                    settings.recoveryInterval(), e.getMessage());
        }
    }

    /**
     * The store thread's task: writes the kept ends (at most once per retry interval), then, every
     * third of the lease, recovers the jobs of engines whose lease ran out. A recovery pass always
     * writes the kept ends first, and runs only when they all went in: a job that ended here, or on
     * a dead engine that kept its end in the shared state directory, is never recovered as
     * unfinished.
     */
    void tick() {
        try {
            Instant now = settings.clock().instant();
            boolean due = !dispatcher.isClosed() && !now.isBefore(recoveredAt.plus(settings.recoveryInterval()));
            if (!parts.records().writeKept(due)) {
                return; // the store is down; tried again at the next tick that is due
            }
            if (due) {
                recoveredAt = now;
                pass();
                if (failing) {
                    failing = false;
                    LOG.info("recovering jobs from the job store works again");
                }
            }
        } catch (RuntimeException e) {
            if (!failing) {
                failing = true;
                LOG.warn("cannot recover jobs from the job store; trying again every {}: {}", settings.recoveryInterval(),
                        e.getMessage());
            }
        }
    }

    /** One pass. Storage failures propagate: the caller logs them and tries again at the next pass. */
    private void pass() {
        int room = settings.recoveryMode() == Provisioner.RecoveryMode.RESUME ? Math.min(BATCH, dispatcher.freeSlots())
                : BATCH;
        if (room <= 0) {
            return;
        }
        List<Job> abandoned = settings.jobStore().abandoned(room);
        if (!orphansLookedFor || !abandoned.isEmpty()) {
            // Before a volume is touched: a dead engine's qemu-img would go on writing into it.
            QemuImgConverter.endOrphans();
            orphansLookedFor = true;
        }
        for (Job candidate : abandoned) {
            if (dispatcher.find(candidate.id()).isPresent() || ends.get(candidate.id()).isPresent()) {
                continue; // this engine's own, its lease in doubt: the lease keeper settles it
            }
            try {
                recover(candidate);
            } catch (RuntimeException e) {
                LOG.warn("cannot recover job {} now; trying again later: {}", candidate.id(), e.getMessage());
                LOG.debug("recovery failure", e);
            }
        }
    }

    private void recover(Job candidate) {
        Optional<VolumeGuard.Lock> guard = VolumeLocks.tryLock(settings.volumeGuard(), candidate.request());
        if (guard.isEmpty()) {
            LOG.info("job {} of an engine whose lease ran out is left alone: another job holds volume {}",
                    candidate.id(), candidate.request().volumeName());
            return;
        }
        boolean handedOn = false;
        try {
            Instant sentAt = settings.clock().instant();
            Optional<Job> taken = settings.jobStore().takeOver(candidate.id(), settings.engineId(), leases.lease());
            if (taken.isEmpty()) {
                return; // another engine took it first, or its holder renewed meanwhile
            }
            JobLease lease = leases.hold(candidate.id(), sentAt);
            handedOn = adopt(taken.get(), guard.get(), lease, false);
        } finally {
            if (!handedOn) {
                guard.get().close();
            }
        }
    }

    /**
     * Resumes or ends a job this engine now holds, claimed from the queue or taken over; true when it
     * was handed to the engine to run (which then owns {@code guard}).
     */
    boolean adopt(Job job, VolumeGuard.Lock guard, JobLease lease, boolean claimed) {
        if (job.state() == JobState.PENDING && claimed) {
            // A queued job that never started: run it, as if it had been submitted here.
            try {
                settings.validate(job.request());
            } catch (ProvisioningException e) {
                end(job, lease, ErrorCode.INVALID_REQUEST, e.getMessage(), false);
                return false;
            }
            return dispatcher.runTaken(job, guard, lease, JobRun.Origin.CLAIMED);
        }
        Optional<Job> newer = newerJobOnTheVolume(job);
        if (newer.isPresent()) {
            end(job, lease, ErrorCode.INTERRUPTED, "the engine running this job stopped before the job ended, and job "
                    + newer.get().id() + " for volume " + job.request().volumeName() + " came after it; the volume is"
                    + " that job's and was left as it is", false);
            return false;
        }
        try {
            settings.validate(job.request());
        } catch (ProvisioningException e) {
            end(job, lease, ErrorCode.INVALID_REQUEST, e.getMessage(), true);
            return false;
        }
        if (settings.recoveryMode() == Provisioner.RecoveryMode.RESUME) {
            LOG.info("job {} left unfinished by an engine whose lease ran out is resumed", job.id());
            return dispatcher.runTaken(job, guard, lease, JobRun.Origin.RECOVERED);
        }
        end(job, lease, ErrorCode.INTERRUPTED, "the engine running this job stopped before the job ended", true);
        return false;
    }

    /** A later job for the same volume that reached it: resuming or rolling back this one would undo that one's work. */
    private Optional<Job> newerJobOnTheVolume(Job job) {
        if (job.kind() == JobKind.PREFETCH) {
            return Optional.empty();
        }
        return settings.jobStore().list(JobFilter.all().withVolumeName(job.request().volumeName()).withLimit(20)).stream()
                .filter(j -> !j.id().equals(job.id()) && j.createdAt().isAfter(job.createdAt())
                        && (j.volumePath() != null || j.state() == JobState.RUNNING))
                .findFirst();
    }

    /** Ends a taken job without running it; with {@code rollback}, deletes the volume it created. */
    private void end(Job job, JobLease lease, ErrorCode code, String message, boolean rollback) {
        StringBuilder m = new StringBuilder(message);
        if (rollback && job.createdVolume()) {
            try {
                settings.backend().delete(job.request().volumeName());
                m.append("; the volume it created was deleted");
            } catch (RuntimeException e) {
                m.append("; deleting the volume it created failed: ").append(e.getMessage());
            }
        } else if (rollback && job.volumePath() != null) {
            m.append("; the volume existed before the job and was left in place: it may hold partial data");
        }
        Job ended = job.finished(JobState.FAILED, code, m.toString(), settings.clock().instant());
        LOG.info("job {} ended FAILED: [{}] {}", job.id(), code, m);
        parts.records().end(ended, lease);
        parts.events().publish(JobEvent.Kind.STATE, ended);
    }
}
