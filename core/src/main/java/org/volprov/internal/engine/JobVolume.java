package org.volprov.internal.engine;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Optional;
import org.volprov.Cancellation;
import org.volprov.ErrorCode;
import org.volprov.Job;
import org.volprov.ProvisioningException;
import org.volprov.Stage;
import org.volprov.image.ImageInfo;
import org.volprov.internal.IoFailure;
import org.volprov.volume.VolumeGuard;
import org.volprov.volume.VolumeInfo;
import org.volprov.volume.VolumeWriter;

/**
 * A job's volume: found or made ({@link #prepare}), opened for writing ({@link #open}), filled by a
 * {@link VolumeFill} and finished ({@link #write}), or rolled back ({@link #rollback}). Every write
 * first passes the job's lease ({@link FencedWriter}). Used by the job's thread; a streaming fill's
 * tee may open it from the download, which runs on that thread too.
 */
final class JobVolume implements AutoCloseable {
    private final EngineSettings settings;
    private final JobTracker tracker;
    private final JobLease lease;
    private final VolumeGuard.Lock volumeLock;
    private final Cancellation cancellation;
    private VolumeInfo info;
    private VolumeWriter writer;
    private VolumeFill fill;
    private boolean reused;
    private boolean wroteExisting;

    /** What a rollback left the job to do. */
    enum Rollback {
        /** Done as far as it could be: the job ends here, its message says what became of the volume. */
        DONE,
        /** The store could not say whether the job is still this engine's: its end is left to recovery. */
        LEFT_TO_RECOVERY,
        /** The job is another engine's: nothing was touched, and nothing may be written. */
        LOST
    }

    JobVolume(EngineSettings settings, JobTracker tracker, JobLease lease, VolumeGuard.Lock volumeLock,
            Cancellation cancellation) {
        this.settings = settings;
        this.tracker = tracker;
        this.lease = lease;
        this.volumeLock = volumeLock;
        this.cancellation = cancellation;
    }

    /**
     * Finds the volume, or makes it: an existing one is reused when its size fits the request (up to
     * the tolerance), one that an earlier run of this job made is this job's still. Recorded at
     * once, so that recovery after a crash knows whether this job made it. Once per job.
     *
     * @throws ProvisioningException {@code VOLUME_CONFLICT} for an existing volume of another size
     */
    VolumeInfo prepare() {
        if (info != null) {
            return info;
        }
        Job job = tracker.job();
        String name = job.request().volumeName();
        long size = job.request().volumeSizeBytes();
        Optional<VolumeInfo> existing = settings.backend().find(name);
        if (existing.isPresent()) {
            VolumeInfo v = existing.get();
            if (job.createdVolume()) {
                // An earlier run of this same job made it; it is still this job's to fill or delete.
                info = v;
                return v;
            }
            // What create would make for this request (a partition ends on a sector), plus the tolerance.
            long fits = Math.max(size, settings.backend().capacityFor(size));
            long tolerance = settings.sizeToleranceBytes();
            long largest = fits > Long.MAX_VALUE - tolerance ? Long.MAX_VALUE : fits + tolerance;
            if (v.capacityBytes() < size || v.capacityBytes() > largest) {
                throw new ProvisioningException(ErrorCode.VOLUME_CONFLICT, "volume " + name + " exists with "
                        + v.capacityBytes() + " bytes; the request asks for " + size + " bytes (reused only up to "
                        + largest + " bytes); delete it or ask for its size");
            }
            tracker.set(job.withVolume(v.path(), false, tracker.now()));
            reused = true;
            tracker.save(null);
            info = v;
            return v;
        }
        lease.awaitHeld(cancellation);
        VolumeInfo v = settings.backend().create(name, size);
        tracker.set(job.withVolume(v.path(), true, tracker.now()));
        tracker.save(null); // recorded at once: after a crash, recovery must know this job made the volume
        info = v;
        return v;
    }

    /** Prepares the volume when that has not happened yet, and opens it for writing; once per job. */
    VolumeWriter open() {
        if (writer == null) {
            writer = new FencedWriter(settings.backend().openWriter(prepare()), lease, cancellation,
                    () -> tracker.stage(Stage.FINALIZING, 0));
            wroteExisting = reused;
        }
        return writer;
    }

    /**
     * A writer at offset 0 again, for a fill that starts over (the image was replaced during its
     * download): the open one when nothing moved it, else a new one in its place, the old one
     * closed (an unfinished upload is aborted).
     */
    VolumeWriter restart() {
        if (writer != null && writer.position() != 0) {
            writer.close();
            writer = null;
        }
        return open();
    }

    /** The fill that was chosen before the download ({@link VolumeFill#beforeFetch}), told of a rollback like any. */
    void fillWith(VolumeFill chosen) {
        fill = chosen;
    }
    /** The open writer. */
    VolumeWriter writer() {
        if (writer == null) {
            throw new IllegalStateException("the volume is not open");
        }
        return writer;
    }

    boolean readsAsZeros() {
        return prepare().readsAsZeros();
    }

    Cancellation cancellation() {
        return cancellation;
    }

    /** Waits while the job's lease is in doubt; for writes the writer does not make itself (a converter process). */
    void awaitHeld() {
        lease.awaitHeld(cancellation);
    }

    /** {@code done} bytes of the volume are written. */
    void written(long done) {
        tracker.progress(Stage.WRITING, done, prepare().capacityBytes());
    }

    /**
     * Writes {@code image} onto the volume with the fill chosen before the download, else the one
     * {@link VolumeFill#choose} picks now, then the rest of the volume past the image, and makes it
     * durable (unless the fill did both itself).
     *
     * @throws ProvisioningException {@code BACKEND_FAILURE} when a write fails, {@code VOLUME_BUSY}
     *     when the volume's lock was lost meanwhile, or the cancellation's code
     */
    void write(Path image, ImageInfo img) {
        long capacity = prepare().capacityBytes();
        long virtual = img.virtualSize();
        boolean zeroed = readsAsZeros();
        tracker.stage(Stage.WRITING, capacity);
        try {
            VolumeWriter w = open();
            if (fill == null) {
                fill = VolumeFill.choose(img, this, settings);
            }
            fill.fill(image, img, this);
            if (!fill.completesVolume()) {
                long tail = capacity - virtual;
                cancellation.checkpoint();
                if (tail > 0) {
                    // A reused volume or a thick LV may hold an earlier tenant's bytes past the image.
                    if (zeroed) {
                        w.skip(tail);
                    } else {
                        w.writeZeros(tail);
                    }
                }
                tracker.progress(Stage.WRITING, capacity, capacity);
                cancellation.checkpoint();
                w.finish(); // the writer starts FINALIZING
            }
            // Lost while the writes were flushed: the other process may be writing the volume now.
            Optional<String> lost = volumeLock.lost();
            if (lost.isPresent()) {
                throw new ProvisioningException(ErrorCode.VOLUME_BUSY, lostLockMessage(lost.get(),
                        "the job had written the image, but the volume may hold the other process's writes"));
            }
        } catch (IOException e) {
            throw IoFailure.of("writing volume " + prepare().name(), e);
        }
    }

    String lostLockMessage(String why, String outcome) {
        return "lost the lock on volume " + tracker.job().request().volumeName() + " to another process (" + why
                + "); " + outcome;
    }

    /**
     * Undoes what the job did to the volume, as far as it is the job's to undo, and appends what
     * became of it to {@code message}: a volume this job made is deleted, one that existed before is
     * left in place, and nothing is touched when the volume or the job may be another's now.
     *
     * @param lockLost whether the volume's lock was lost to another process
     * @param cause gets a failed deletion as a suppressed exception
     */
    Rollback rollback(StringBuilder message, boolean lockLost, Throwable cause) {
        if (fill != null) {
            fill.abort();
        }
        if (lease.isLost()) {
            return Rollback.LOST;
        }
        Job job = tracker.job();
        String name = job.request().volumeName();
        if (lockLost && (job.createdVolume() || reused)) {
            // The process that took the lock owns the volume now, and may be writing it.
            message.append("; the volume ").append(name).append(" was left in place, not deleted: the process that")
                    .append(" holds its lock now owns it");
        } else if (job.createdVolume()) {
            if (!lease.awaitResolved()) {
                if (lease.isLost()) {
                    return Rollback.LOST;
                }
                // Whoever holds the job next (this engine or another) recovers it, and deletes the volume in FAIL mode.
                message.append("; the job store could not confirm that this engine still holds the job, so the volume ")
                        .append(name).append(" it created was left in place and the job to recovery");
                return Rollback.LEFT_TO_RECOVERY;
            }
            try {
                settings.backend().delete(name);
                message.append("; the volume ").append(name).append(" this job created was deleted");
            } catch (RuntimeException e) {
                cause.addSuppressed(e);
                message.append("; deleting the volume ").append(name).append(" this job created failed: ")
                        .append(e.getMessage());
            }
        } else if (reused) {
            message.append("; the volume ").append(name).append(" existed before this job and was left in place")
                    .append(wroteExisting ? ": it may hold partial data" : " unchanged");
        }
        return Rollback.DONE;
    }

    /** Releases the writer; an unfinished write is aborted. */
    @Override
    public void close() {
        if (writer != null) {
            writer.close();
        }
    }
}
