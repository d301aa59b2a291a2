package org.volprov;

import java.time.Instant;
import java.util.List;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.volprov.image.QemuImgConverter;
import org.volprov.volume.VolumeGuard;
/**
 * Takes over the jobs of this host whose engine's lease ran out (the engine died, or lost the
 * store for longer than its lease), and ends or resumes them by the {@link Provisioner.RecoveryMode}.
 * Runs at start and then every third of the lease, on the engine's store thread.
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

    private final Provisioner engine;
    private final Provisioner.Settings s;
    private boolean orphansLookedFor;

    Recovery(Provisioner engine) {
        this.engine = engine;
        this.s = engine.settings;
    }

    /** One pass. Storage failures propagate: the caller logs them and tries again at the next pass. */
    void pass() {
        int room = s.recoveryMode == Provisioner.RecoveryMode.RESUME ? Math.min(BATCH, engine.freeSlots()) : BATCH;
        if (room <= 0) {
            return;
        }
        List<Job> abandoned = s.jobStore.abandoned(room);
        if (!orphansLookedFor || !abandoned.isEmpty()) {
            // Before a volume is touched: a dead engine's qemu-img would go on writing into it.
            QemuImgConverter.endOrphans();
            orphansLookedFor = true;
        }
        for (Job candidate : abandoned) {
            if (engine.holds(candidate.id())) {
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
        Optional<VolumeGuard.Lock> guard = s.volumeGuard.tryLock(candidate.request().volumeName());
        if (guard.isEmpty()) {
            LOG.info("job {} of an engine whose lease ran out is left alone: another job holds volume {}",
                    candidate.id(), candidate.request().volumeName());
            return;
        }
        boolean handedOn = false;
        try {
            Instant sentAt = s.clock.instant();
            Optional<Job> taken = s.jobStore.takeOver(candidate.id(), s.engineId, engine.leases.lease());
            if (taken.isEmpty()) {
                return; // another engine took it first, or its holder renewed meanwhile
            }
            JobLease lease = engine.leases.hold(candidate.id(), sentAt);
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
                engine.validate(job.request());
            } catch (ProvisioningException e) {
                end(job, lease, ErrorCode.INVALID_REQUEST, e.getMessage(), false);
                return false;
            }
            return engine.runTaken(job, guard, lease, JobRun.Origin.CLAIMED);
        }
        Optional<Job> newer = newerJobOnTheVolume(job);
        if (newer.isPresent()) {
            end(job, lease, ErrorCode.INTERRUPTED, "the engine running this job stopped before the job ended, and job "
                    + newer.get().id() + " for volume " + job.request().volumeName() + " came after it; the volume is"
                    + " that job's and was left as it is", false);
            return false;
        }
        try {
            engine.validate(job.request());
        } catch (ProvisioningException e) {
            end(job, lease, ErrorCode.INVALID_REQUEST, e.getMessage(), true);
            return false;
        }
        if (s.recoveryMode == Provisioner.RecoveryMode.RESUME) {
            LOG.info("job {} left unfinished by an engine whose lease ran out is resumed", job.id());
            return engine.runTaken(job, guard, lease, JobRun.Origin.RECOVERED);
        }
        end(job, lease, ErrorCode.INTERRUPTED, "the engine running this job stopped before the job ended", true);
        return false;
    }

    /** A later job for the same volume that reached it: resuming or rolling back this one would undo that one's work. */
    private Optional<Job> newerJobOnTheVolume(Job job) {
        return s.jobStore.list(JobFilter.all().withVolumeName(job.request().volumeName()).withLimit(20)).stream()
                .filter(j -> !j.id().equals(job.id()) && j.createdAt().isAfter(job.createdAt())
                        && (j.volumePath() != null || j.state() == JobState.RUNNING))
                .findFirst();
    }

    /** Ends a taken job without running it; with {@code rollback}, deletes the volume it created. */
    private void end(Job job, JobLease lease, ErrorCode code, String message, boolean rollback) {
        StringBuilder m = new StringBuilder(message);
        if (rollback && job.createdVolume()) {
            try {
                s.backend.delete(job.request().volumeName());
                m.append("; the volume it created was deleted");
            } catch (RuntimeException e) {
                m.append("; deleting the volume it created failed: ").append(e.getMessage());
            }
        } else if (rollback && job.volumePath() != null) {
            m.append("; the volume existed before the job and was left in place: it may hold partial data");
        }
        Job ended = job.finished(JobState.FAILED, code, m.toString(), s.clock.instant());
        LOG.info("job {} ended FAILED: [{}] {}", job.id(), code, m);
        engine.recordEnd(ended, lease);
        engine.publish(JobEvent.Kind.STATE, ended);
    }
}
