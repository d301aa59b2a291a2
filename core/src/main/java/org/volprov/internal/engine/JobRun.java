package org.volprov.internal.engine;

import java.time.Instant;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.function.Consumer;
import java.util.function.Supplier;
import java.util.function.UnaryOperator;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.slf4j.MDC;
import org.volprov.Cancellation;
import org.volprov.ErrorCode;
import org.volprov.ImageRef;
import org.volprov.Job;
import org.volprov.JobEvent;
import org.volprov.JobKind;
import org.volprov.JobState;
import org.volprov.ProvisionRequest;
import org.volprov.ProvisioningException;
import org.volprov.Stage;
import org.volprov.cache.CacheLease;
import org.volprov.cache.CacheSink;
import org.volprov.image.ImageFormat;
import org.volprov.image.ImageInfo;
import org.volprov.internal.qcow2.FormatProbe;
import org.volprov.volume.VolumeGuard;

/**
 * One job's run through the stages ({@link #execute}). Its snapshot changes only on the job's own
 * thread. Every write to the volume (creating it, writing it, rolling it back) first passes the
 * job's {@link JobLease}: it waits while the lease is in doubt, and a lost lease stops the job
 * without a rollback and without a terminal write, as the job and its volume are another engine's
 * then.
 */
final class JobRun implements Runnable {
    private static final Logger LOG = LoggerFactory.getLogger(JobRun.class);

    /** Where a job came from, which decides what becomes of it when the engine closes before it starts. */
    enum Origin {
        /** Submitted to this engine: cancelled. */
        SUBMITTED,
        /** Claimed from the fleet's queue: released back to it. */
        CLAIMED,
        /** Taken over from an engine whose lease ran out: left for the next engine to recover. */
        RECOVERED
    }

    private final JobParts parts;
    private final EngineSettings settings;
    private final VolumeGuard.Lock volumeLock;
    private final JobLease lease;
    private final Cancellation cancellation;
    private final Origin origin;
    private final Consumer<JobRun> finished;
    private final JobTracker tracker;
    private final ImageFetch images;
    private final JobVolume volume;
    final CompletableFuture<Job> future = new CompletableFuture<>();
    /** False once the job is known not to be this engine's to end in the store (its lease was lost or is unknown). */
    private boolean recordEnd = true;
    /** When the job times out; null until it starts running. */
    private volatile Instant deadline;

    /** @param finished told when the run ends, before its future completes */
    JobRun(JobParts parts, Job job, VolumeGuard.Lock volumeLock, JobLease lease, Origin origin,
            Consumer<JobRun> finished) {
        this.parts = parts;
        this.settings = parts.settings();
        this.volumeLock = volumeLock;
        this.lease = lease;
        this.origin = origin;
        this.finished = finished;
        this.cancellation = new Cancellation(settings.clock(), null);
        this.tracker = new JobTracker(parts, job, lease);
        this.images = new ImageFetch(parts, tracker, cancellation);
        this.volume = new JobVolume(settings, tracker, lease, volumeLock, cancellation);
        // The timeout counts from when the job starts running, not from its submission.
        cancellation.fence(ErrorCode.TIMED_OUT, () -> {
            Instant d = deadline;
            return d != null && settings.clock().instant().isAfter(d) ? "the job ran past its deadline " + d : null;
        });
        // Stops the download, the converter and the write at once, before the volume sees another byte.
        lease.onLost(() -> cancellation.cancel(ErrorCode.INTERRUPTED, lease.lostReason()));
        // A lock lost to another process stops the job at its next checkpoint, which comes before
        // every write; the watchdog's polling also stops what runs without checkpoints (qemu-img).
        cancellation.fence(ErrorCode.VOLUME_BUSY, () -> volumeLock.lost()
                .map(why -> volume.lostLockMessage(why, "the job stopped before its next write")).orElse(null));
    }

    String id() {
        return tracker.job().id();
    }

    Job snapshot() {
        return tracker.job();
    }

    Cancellation cancellation() {
        return cancellation;
    }

    Origin origin() {
        return origin;
    }

    JobLease lease() {
        return lease;
    }

    /** Lets go of a job that never ran, without a write: its record stays as the store has it. */
    void abandon() {
        volumeLock.close();
        future.complete(tracker.job());
    }

    @Override
    public void run() {
        Job job = tracker.job();
        MDC.put("jobId", job.id());
        job.request().correlation().ifPresent(c -> MDC.put("correlationId", c));
        try {
            deadline = tracker.now().plus(settings.jobTimeout());
            tracker.set(job.running(tracker.now()));
            tracker.save(JobEvent.Kind.STATE);
            LOG.debug("job started: {} -> {}", job.request().imageUri(), job.request().volumeName());
            try {
                execute();
                tracker.set(tracker.job().finished(JobState.COMPLETED, null, null, tracker.now()));
                LOG.info("job {} completed: {} ({})", job.id(), job.kind() == JobKind.PREFETCH ? "prefetch of "
                        + job.request().imageUri() : "volume " + job.request().volumeName(),
                        tracker.job().cacheHit() ? "cache hit" : "downloaded");
            } catch (ProvisioningException e) {
                fail(e.code(), e.getMessage(), e);
            } catch (RuntimeException | Error e) {
                fail(ErrorCode.BACKEND_FAILURE, "unexpected failure: " + e, e);
            }
            if (recordEnd) {
                parts.records().end(tracker.job(), lease);
            } else {
                parts.records().noEnd(job.id());
            }
            parts.events().publish(JobEvent.Kind.STATE, tracker.job());
        } finally {
            volumeLock.close();
            finished.accept(this);
            future.complete(tracker.job());
            MDC.remove("jobId");
            MDC.remove("correlationId");
        }
    }

    /** The job's flow: the image into the cache, checked, the volume made, written and finished. */
    private void execute() {
        ProvisionRequest request = tracker.job().request();
        tracker.stage(Stage.RESOLVING, 0);
        ImageRef ref = ImageRef.parse(request.imageUri(), settings.source().endpoint());
        if (request.kind() == JobKind.PREFETCH) {
            prefetch(ref, request);
            return;
        }
        Optional<VolumeFill> streaming = VolumeFill.beforeFetch(request, parts);
        streaming.ifPresent(volume::fillWith);
        UnaryOperator<CacheSink> tee = streaming.<UnaryOperator<CacheSink>>map(f -> sink -> f.tee(sink, volume))
                .orElse(UnaryOperator.identity());
        try (JobVolume target = volume; CacheLease image = images.fetch(ref, tee)) {
            tracker.set(tracker.job().withImage(image.sha256(), image.hit(), tracker.now()));
            tracker.stage(Stage.INSPECTING, 0);
            // A format other than the requested one is the request's fault, not the image's: it stays cached.
            ImageFormat format = FormatProbe.check(request.format(), FormatProbe.detect(image.path()));
            ImageInfo img = usable(image, () -> settings.converter().inspect(image.path(), format,
                    request.volumeSizeBytes(), cancellation));
            cancellation.checkpoint();
            tracker.stage(Stage.CREATING_VOLUME, 0);
            target.prepare();
            cancellation.checkpoint();
            usable(image, () -> {
                target.write(image.path(), img);
                if (settings.verifyWrittenVolume()) {
                    new VolumeReadBack(settings, tracker, cancellation, parts.downloads())
                            .check(target.prepare(), image, img);
                }
                return null;
            });
        }
    }

    /**
     * A prefetch's flow: the image into the cache and checked as a provision checks it before it
     * makes a volume (an image a provision would refuse is dropped now); the volume is never touched.
     */
    private void prefetch(ImageRef ref, ProvisionRequest request) {
        try (CacheLease image = images.fetch(ref, UnaryOperator.identity())) {
            tracker.set(tracker.job().withImage(image.sha256(), image.hit(), tracker.now()));
            tracker.stage(Stage.INSPECTING, 0);
            ImageFormat format = FormatProbe.check(request.format(), FormatProbe.detect(image.path()));
            // No volume bounds the image yet: the largest size lets every other check run.
            usable(image, () -> settings.converter().inspect(image.path(), format, Long.MAX_VALUE, cancellation));
        }
    }

    /**
     * Runs a step that reads the cached image; when it finds the image unusable (a corrupt table
     * the header did not show), the entry is discarded so that it holds no cache budget.
     */
    private static <T> T usable(CacheLease image, Supplier<T> step) {
        try {
            return step.get();
        } catch (ProvisioningException e) {
            if (e.code() == ErrorCode.UNSUPPORTED_IMAGE) {
                image.discard();
            }
            throw e;
        }
    }

    /** Ends the job FAILED or CANCELLED, after the volume's rollback; the one path of every failure. */
    private void fail(ErrorCode code, String message, Throwable cause) {
        ErrorCode finalCode = cancellation.code() != null ? cancellation.code() : code;
        StringBuilder m = new StringBuilder(finalCode == code ? message : cancelledMessage(finalCode));
        boolean lockLost = volumeLock.lost().isPresent();
        JobVolume.Rollback outcome = volume.rollback(m, lockLost, cause);
        if (outcome == JobVolume.Rollback.LOST) {
            lost();
            return;
        }
        recordEnd = outcome == JobVolume.Rollback.DONE;
        JobState state = finalCode == ErrorCode.CANCELLED ? JobState.CANCELLED : JobState.FAILED;
        Job job = tracker.job().finished(state, finalCode, m.toString(), tracker.now());
        tracker.set(job);
        if (finalCode == ErrorCode.BACKEND_FAILURE || lockLost) {
            LOG.warn("job {} failed: [{}] {}", job.id(), finalCode, m, cause);
        } else {
            LOG.info("job {} ended {}: [{}] {}", job.id(), state, finalCode, m);
            LOG.debug("job {} failure detail", job.id(), cause);
        }
    }

    /** The job is another engine's now: this engine stops, touches nothing more and writes nothing. */
    private void lost() {
        recordEnd = false;
        String m = "this engine stopped the job: " + lease.lostReason() + "; nothing was rolled back, as the engine"
                + " that holds the job now owns its volume";
        tracker.set(tracker.job().finished(JobState.FAILED, ErrorCode.INTERRUPTED, m, tracker.now()));
        LOG.warn("job {}: {}", id(), m);
    }

    private String cancelledMessage(ErrorCode code) {
        return switch (code) {
            case TIMED_OUT -> "the job ran longer than its timeout of " + settings.jobTimeout();
            case CANCELLED -> "the job was cancelled";
            default -> cancellation.message();
        };
    }

    /** Ends a job that never ran (cancelled while queued, refused by the executor, closed). */
    void finishUnstarted(JobState state, ErrorCode code, String message) {
        try {
            tracker.set(tracker.job().finished(state, code, message, tracker.now()));
            parts.records().end(tracker.job(), lease);
            parts.events().publish(JobEvent.Kind.STATE, tracker.job());
        } finally {
            volumeLock.close();
            future.complete(tracker.job());
        }
    }
}
