package org.volprov;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.function.LongConsumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.slf4j.MDC;
import org.volprov.cache.CacheKey;
import org.volprov.cache.CacheLease;
import org.volprov.image.ImageFormat;
import org.volprov.image.ImageInfo;
import org.volprov.internal.Download;
import org.volprov.internal.IoFailure;
import org.volprov.internal.qcow2.FormatProbe;
import org.volprov.internal.qcow2.HeaderCheck;
import org.volprov.source.ObjectInfo;
import org.volprov.support.Retrier;
import org.volprov.volume.VolumeGuard;
import org.volprov.volume.VolumeInfo;
import org.volprov.volume.VolumeWriter;
/**
 * One job's run through the stages. Its snapshot changes only on the job's own thread. Every write
 * to the volume (creating it, writing it, rolling it back) first passes the job's {@link JobLease}:
 * it waits while the lease is in doubt, and a lost lease stops the job without a rollback and
 * without a terminal write, as the job and its volume are another engine's then.
 */
final class JobRun implements Runnable {
    private static final Logger LOG = LoggerFactory.getLogger(JobRun.class);
    private static final long PROGRESS_INTERVAL_NANOS = 1_000_000_000L;
    private static final int STORE_ATTEMPTS = 3;
    static final long STORE_RETRY_NANOS = 5_000_000_000L;
    /** How often a job starts over when its object is replaced during the download, before it fails. */
    static final int MAX_IMAGE_RESTARTS = 3;

    /** Where a job came from, which decides what becomes of it when the engine closes before it starts. */
    enum Origin {
        /** Submitted to this engine: cancelled. */
        SUBMITTED,
        /** Claimed from the fleet's queue: released back to it. */
        CLAIMED,
        /** Taken over from an engine whose lease ran out: left for the next engine to recover. */
        RECOVERED
    }

    private final Provisioner engine;
    private final Provisioner.Settings s;
    private final VolumeGuard.Lock volumeLock;
    private final JobLease lease;
    private final Retrier retrier;
    private final Cancellation cancellation;
    private final Origin origin;
    final CompletableFuture<Job> future = new CompletableFuture<>();
    volatile boolean started;
    private volatile Job job;
    /** False once the job is known not to be this engine's to end in the store (its lease was lost or is unknown). */
    private boolean recordEnd = true;
    private boolean wroteExistingVolume;
    private boolean reusedVolume;
    private long lastProgressNanos;
    private long lastProgressBytes;
    private boolean storeFailing;
    private long storeRetryAtNanos;

    JobRun(Provisioner engine, Job job, VolumeGuard.Lock volumeLock, JobLease lease, Retrier retrier, Origin origin) {
        this.engine = engine;
        this.s = engine.settings;
        this.job = job;
        this.volumeLock = volumeLock;
        this.lease = lease;
        this.retrier = retrier;
        this.origin = origin;
        this.cancellation = new Cancellation(s.clock, null);
        // Stops the download, the converter and the write at once, before the volume sees another byte.
        lease.onLost(() -> cancellation.cancel(ErrorCode.INTERRUPTED, lease.lostReason()));
        // A lock lost to another process stops the job at its next checkpoint, which comes before
        // every write; the watchdog's polling also stops what runs without checkpoints (qemu-img).
        cancellation.fence(ErrorCode.VOLUME_BUSY, () -> volumeLock.lost()
                .map(why -> lostLockMessage(why, "the job stopped before its next write")).orElse(null));
    }

    private String lostLockMessage(String why, String outcome) {
        return "lost the lock on volume " + job.request().volumeName() + " to another process (" + why + "); "
                + outcome;
    }

    String id() {
        return job.id();
    }

    Job snapshot() {
        return job;
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
        future.complete(job);
    }

    @Override
    public void run() {
        MDC.put("jobId", job.id());
        job.request().correlation().ifPresent(c -> MDC.put("correlationId", c));
        try {
            Instant now = s.clock.instant();
            cancellation.deadline(now.plus(s.jobTimeout));
            job = job.running(now);
            save(JobEvent.Kind.STATE);
            LOG.debug("job started: {} -> {}", job.request().imageUri(), job.request().volumeName());
            try {
                execute();
                job = job.finished(JobState.COMPLETED, null, null, s.clock.instant());
                LOG.info("job {} completed: volume {} ({})", job.id(), job.request().volumeName(),
                        job.cacheHit() ? "cache hit" : "downloaded");
            } catch (ProvisioningException e) {
                fail(e.code(), e.getMessage(), e);
            } catch (RuntimeException | Error e) {
                fail(ErrorCode.BACKEND_FAILURE, "unexpected failure: " + e, e);
            }
            if (recordEnd) {
                saveTerminal();
            } else {
                engine.leases.drop(job.id());
            }
            engine.publish(JobEvent.Kind.STATE, job);
        } finally {
            volumeLock.close();
            engine.finished(this);
            future.complete(job);
            MDC.remove("jobId");
            MDC.remove("correlationId");
        }
    }

    private void execute() {
        ProvisionRequest request = job.request();
        stage(Stage.RESOLVING, 0);
        ImageRef ref = ImageRef.parse(request.imageUri(), s.source.endpoint());
        try (CacheLease image = fetch(ref)) {
            job = job.withImage(image.sha256(), image.hit(), s.clock.instant());
            stage(Stage.VERIFYING, 0);
            // A format other than the requested one is the request's fault, not the image's: it stays cached.
            ImageFormat format = FormatProbe.check(request.format(), FormatProbe.detect(image.path()));
            ImageInfo img = usable(image, () -> s.converter.inspect(image.path(), format,
                    request.volumeSizeBytes(), cancellation));
            cancellation.checkpoint();
            stage(Stage.CREATING_VOLUME, 0);
            VolumeInfo volume = prepareVolume();
            cancellation.checkpoint();
            usable(image, () -> {
                write(image, img, volume);
                return null;
            });
        }
    }

    /**
     * Runs a step that reads the cached image; when it finds the image unusable (a corrupt table
     * the header did not show), the entry is discarded so that it holds no cache budget.
     */
    private static <T> T usable(CacheLease image, java.util.function.Supplier<T> step) {
        try {
            return step.get();
        } catch (ProvisioningException e) {
            if (e.code() == ErrorCode.UNSUPPORTED_IMAGE) {
                image.discard();
            }
            throw e;
        }
    }

    /**
     * A lease on the image: a cache hit, or a download of the object version {@code stat} named.
     * When the object changes during the download ({@code IMAGE_CHANGED}: the source refused a read
     * conditional on that version), the cache has kept nothing of it, and the job starts over from a
     * fresh {@code stat} and checksum, at most {@link #MAX_IMAGE_RESTARTS} times.
     */
    private CacheLease fetch(ImageRef ref) {
        for (int restarts = 0; ; restarts++) {
            ObjectInfo info = retrier.call("reading " + ref, () -> s.source.stat(ref), cancellation);
            Optional<String> published = publishedChecksum(ref);
            CacheKey key = new CacheKey(ref, info.etag(), info.size(), published);
            Optional<CacheLease> hit = s.cache.lookup(key);
            if (hit.isPresent()) {
                return hit.get();
            }
            stage(Stage.DOWNLOADING, info.size());
            Download download = new Download(s.source, ref, info.etag(), retrier, s.clock, cancellation,
                    done -> progress(Stage.DOWNLOADING, done, info.size()), s.bufferSize, s.downloadParallelism,
                    s.downloadPartSize);
            try {
                // The image is judged from its first bytes: an unusable one stops the download and is not cached.
                return s.cache.admit(key, HeaderCheck.before(download, job.request().format()), cancellation);
            } catch (ProvisioningException e) {
                if (e.code() != ErrorCode.IMAGE_CHANGED) {
                    throw e;
                }
                if (restarts == MAX_IMAGE_RESTARTS) {
                    throw new ProvisioningException(ErrorCode.IMAGE_CHANGED, ref + " kept changing while it was"
                            + " downloaded: it was replaced during each of " + (restarts + 1) + " downloads, and nothing"
                            + " of it was kept (last: " + e.getMessage() + "); publish images atomically and do not"
                            + " replace one while hosts may be reading it (upload each version under a new key, or"
                            + " replace it in one PUT or copy), then submit again", e);
                }
                LOG.info("job {}: {} changed during its download; starting over from a fresh stat: {}", job.id(), ref,
                        e.getMessage());
                cancellation.checkpoint();
                stage(Stage.RESOLVING, 0);
            }
        }
    }

    /**
     * The published checksum. A sibling the source refuses, of an object it has just let us stat,
     * counts as not published: a policy that grants {@code GetObject} without {@code ListBucket}
     * makes S3 answer 403, not 404, for a missing object. With {@code requirePublishedChecksum}, an
     * image without a readable checksum fails the job instead.
     */
    private Optional<String> publishedChecksum(ImageRef ref) {
        ImageRef sibling = ref.checksumSibling();
        Optional<String> published;
        try {
            published = retrier.call("reading " + sibling, () -> s.source.publishedChecksum(ref), cancellation);
        } catch (ProvisioningException e) {
            if (e.code() != ErrorCode.ACCESS_DENIED) {
                throw e;
            }
            if (s.requirePublishedChecksum) {
                throw new ProvisioningException(ErrorCode.CHECKSUM_MISSING, "the source refused " + sibling + " and the"
                        + " engine requires a published checksum (requirePublishedChecksum): publish " + sibling
                        + " and let the source's credentials read it (S3 answers 403, not 404, for a missing object"
                        + " when the policy does not grant s3:ListBucket); the source said: " + e.getMessage(), e);
            }
            if (engine.refusedChecksumSiblings.first(ref)) {
                LOG.warn("the source refused {} although it serves {}; taking the image as having no published"
                        + " checksum (S3 answers 403, not 404, for a missing object when the policy does not grant"
                        + " s3:ListBucket); requirePublishedChecksum(true) fails such jobs instead; the source said: {}",
                        sibling, ref, e.getMessage());
            }
            return Optional.empty();
        }
        if (published.isEmpty() && s.requirePublishedChecksum) {
            throw new ProvisioningException(ErrorCode.CHECKSUM_MISSING, "no SHA-256 is published for " + ref + ": "
                    + sibling + " is absent or holds no digest, and the engine requires one"
                    + " (requirePublishedChecksum); publish it as a bare digest or a sha256sum line");
        }
        return published;
    }

    private VolumeInfo prepareVolume() {
        String name = job.request().volumeName();
        long size = job.request().volumeSizeBytes();
        Optional<VolumeInfo> existing = s.backend.find(name);
        if (existing.isPresent()) {
            VolumeInfo v = existing.get();
            if (job.createdVolume()) {
                // An earlier run of this same job made it; it is still this job's to fill or delete.
                return v;
            }
            // What create would make for this request (a partition ends on a sector), plus the tolerance.
            long fits = Math.max(size, s.backend.capacityFor(size));
            long largest = fits > Long.MAX_VALUE - s.sizeToleranceBytes ? Long.MAX_VALUE : fits + s.sizeToleranceBytes;
            if (v.capacityBytes() < size || v.capacityBytes() > largest) {
                throw new ProvisioningException(ErrorCode.VOLUME_CONFLICT, "volume " + name + " exists with "
                        + v.capacityBytes() + " bytes; the request asks for " + size + " bytes (reused only up to "
                        + largest + " bytes); delete it or ask for its size");
            }
            job = job.withVolume(v.path(), false, s.clock.instant());
            reusedVolume = true;
            save(null);
            return v;
        }
        lease.awaitHeld(cancellation);
        VolumeInfo v = s.backend.create(name, size);
        job = job.withVolume(v.path(), true, s.clock.instant());
        save(null); // recorded at once: after a crash, recovery must know this job made the volume
        return v;
    }

    private void write(CacheLease image, ImageInfo img, VolumeInfo volume) {
        long capacity = volume.capacityBytes();
        long virtual = img.virtualSize();
        boolean zeroed = volume.readsAsZeros();
        stage(Stage.WRITING, capacity);
        LongConsumer progress = done -> progress(Stage.WRITING, done, capacity);
        try (VolumeWriter w = new FencedWriter(s.backend.openWriter(volume), lease, cancellation)) {
            wroteExistingVolume = reusedVolume;
            if (img.format() == ImageFormat.QCOW2 && w.localPath().isPresent()) {
                // qemu-img writes on its own: a lost lease kills it, but it cannot pause for a doubt.
                lease.awaitHeld(cancellation);
                s.converter.convertToRaw(image.path(), img, w.localPath().get(), zeroed, progress, cancellation);
                w.skip(virtual);
            } else if (img.format() == ImageFormat.QCOW2) {
                Path raw = Files.createTempFile(s.workDirectory, "volprov-", ".raw");
                try {
                    try (RandomAccessFile f = new RandomAccessFile(raw.toFile(), "rw")) {
                        f.setLength(virtual);
                    }
                    s.converter.convertToRaw(image.path(), img, raw, true, d -> progress.accept(d / 2), cancellation);
                    copyRaw(raw, virtual, w, zeroed, d -> progress.accept(virtual / 2 + d / 2));
                } finally {
                    Files.deleteIfExists(raw);
                }
            } else {
                copyRaw(image.path(), virtual, w, zeroed, progress);
            }
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
            progress(Stage.WRITING, capacity, capacity);
            cancellation.checkpoint();
            stage(Stage.FINALIZING, 0);
            w.finish();
            // Lost while the writes were flushed: the other process may be writing the volume now.
            Optional<String> lost = volumeLock.lost();
            if (lost.isPresent()) {
                throw new ProvisioningException(ErrorCode.VOLUME_BUSY, lostLockMessage(lost.get(),
                        "the job had written the image, but the volume may hold the other process's writes"));
            }
        } catch (IOException e) {
            throw IoFailure.of("writing volume " + volume.name(), e);
        }
    }

    private void copyRaw(Path src, long length, VolumeWriter w, boolean targetZeroed, LongConsumer progress)
            throws IOException {
        ByteBuffer buf = ByteBuffer.allocateDirect(s.bufferSize);
        ByteBuffer zeros = ByteBuffer.allocateDirect(s.bufferSize);
        try (FileChannel in = FileChannel.open(src, StandardOpenOption.READ)) {
            long done = 0;
            while (done < length) {
                cancellation.checkpoint();
                buf.clear().limit((int) Math.min(buf.capacity(), length - done));
                while (buf.hasRemaining()) {
                    if (in.read(buf, done + buf.position()) < 0) {
                        throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "image " + src + " ended at "
                                + (done + buf.position()) + " of " + length + " bytes");
                    }
                }
                buf.flip();
                int n = buf.remaining();
                if (targetZeroed && buf.mismatch(zeros.duplicate().limit(n)) == -1) {
                    w.skip(n);
                } else {
                    w.write(buf);
                }
                done += n;
                progress.accept(done);
            }
        }
    }

    private void fail(ErrorCode code, String message, Throwable cause) {
        ErrorCode finalCode = cancellation.code() != null ? cancellation.code() : code;
        StringBuilder m = new StringBuilder(finalCode == code ? message : cancelledMessage(finalCode));
        String name = job.request().volumeName();
        if (lease.isLost()) {
            lost();
            return;
        }
        boolean lockLost = volumeLock.lost().isPresent();
        if (lockLost && (job.createdVolume() || reusedVolume)) {
            // The process that took the lock owns the volume now, and may be writing it.
            m.append("; the volume ").append(name).append(" was left in place, not deleted: the process that holds")
                    .append(" its lock now owns it");
        } else if (job.createdVolume()) {
            if (!lease.awaitResolved()) {
                if (lease.isLost()) {
                    lost();
                    return;
                }
                // The store could not say whether the job is still this engine's: whoever holds it next
                // (this engine or another) recovers it, and deletes the volume in FAIL mode.
                recordEnd = false;
                m.append("; the job store could not confirm that this engine still holds the job, so the volume ")
                        .append(name).append(" it created was left in place and the job to recovery");
            } else {
                try {
                    s.backend.delete(name);
                    m.append("; the volume ").append(name).append(" this job created was deleted");
                } catch (RuntimeException e) {
                    cause.addSuppressed(e);
                    m.append("; deleting the volume ").append(name).append(" this job created failed: ")
                            .append(e.getMessage());
                }
            }
        } else if (reusedVolume) {
            m.append("; the volume ").append(name).append(" existed before this job and was left in place")
                    .append(wroteExistingVolume ? ": it may hold partial data" : " unchanged");
        }
        JobState state = finalCode == ErrorCode.CANCELLED ? JobState.CANCELLED : JobState.FAILED;
        job = job.finished(state, finalCode, m.toString(), s.clock.instant());
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
        job = job.finished(JobState.FAILED, ErrorCode.INTERRUPTED, m, s.clock.instant());
        LOG.warn("job {}: {}", job.id(), m);
    }

    private String cancelledMessage(ErrorCode code) {
        return switch (code) {
            case TIMED_OUT -> "the job ran longer than its timeout of " + s.jobTimeout;
            case CANCELLED -> "the job was cancelled";
            default -> cancellation.message();
        };
    }

    /** Ends a job that never ran (cancelled while queued, refused by the executor, closed). */
    void finishUnstarted(JobState state, ErrorCode code, String message) {
        try {
            job = job.finished(state, code, message, s.clock.instant());
            saveTerminal();
            engine.publish(JobEvent.Kind.STATE, job);
        } finally {
            volumeLock.close();
            future.complete(job);
        }
    }

    private void stage(Stage stage, long total) {
        job = job.withProgress(new Progress(stage, 0, total), s.clock.instant());
        lastProgressNanos = System.nanoTime();
        lastProgressBytes = 0;
        save(JobEvent.Kind.STAGE);
    }

    private void progress(Stage stage, long done, long total) {
        long now = System.nanoTime();
        boolean due = done >= total || now - lastProgressNanos >= PROGRESS_INTERVAL_NANOS
                || (total > 0 && (done - lastProgressBytes) * 100 >= total);
        if (!due || stage != job.stage() || done == job.progress().bytesDone()) {
            return;
        }
        lastProgressNanos = now;
        lastProgressBytes = done;
        job = job.withProgress(new Progress(stage, Math.min(done, total), total), s.clock.instant());
        save(JobEvent.Kind.PROGRESS);
    }

    /**
     * Writes the snapshot to the store and tells the listeners ({@code kind} null: store only). A
     * failing store does not stop the job; the next write carries the latest state. While it fails,
     * progress is written at most once per {@link #STORE_RETRY_NANOS}: a store that is down may take
     * seconds to say so, and the job must not crawl at that pace. A store that says another engine
     * holds the job stops it.
     */
    private void save(JobEvent.Kind kind) {
        long now = System.nanoTime();
        boolean skip = storeFailing && kind == JobEvent.Kind.PROGRESS && now - storeRetryAtNanos < 0;
        if (!skip && !lease.isLost()) {
            try {
                if (!s.jobStore.update(job, s.engineId)) {
                    lease.lost("the job store says engine " + s.engineId + " no longer holds job " + job.id()
                            + ": another engine took it over, or it ended there");
                }
                if (storeFailing) {
                    storeFailing = false;
                    LOG.info("the job store accepts writes again");
                }
            } catch (RuntimeException e) {
                storeRetryAtNanos = System.nanoTime() + STORE_RETRY_NANOS;
                if (!storeFailing) {
                    storeFailing = true;
                    LOG.warn("cannot record job {} in the job store; the job goes on: {}", job.id(), e.getMessage());
                }
            }
        }
        if (kind != null) {
            engine.publish(kind, job);
        }
    }

    /**
     * Writes the terminal snapshot, retrying a few times while the store is down. From its first
     * failure the end is kept by the engine (on disk, with a state directory), which writes it
     * later from its store thread if these tries fail too.
     */
    private void saveTerminal() {
        boolean kept = false;
        for (int attempt = 1; ; attempt++) {
            try {
                if (!s.jobStore.update(job, s.engineId)) {
                    LOG.warn("the job store refused the end of job {} ({}): another engine holds the job, or it ended"
                            + " already", job.id(), job.state());
                }
                if (kept) {
                    engine.ends.recorded(job.id());
                } else {
                    engine.leases.drop(job.id());
                }
                return;
            } catch (RuntimeException e) {
                if (!kept) {
                    engine.ends.keep(job, lease);
                    kept = true;
                }
                if (attempt >= STORE_ATTEMPTS) {
                    LOG.warn("cannot record the end of job {} ({}) yet; the engine tries again while it runs: {}",
                            job.id(), job.state(), e.getMessage());
                    return;
                }
                try {
                    s.sleeper.sleep(s.retryPolicy.backoff(attempt, 0.5).plusMillis(100));
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    return;
                }
            }
        }
    }

    /** The backend's writer, each write of which first passes the job's lease. */
    private static final class FencedWriter implements VolumeWriter {
        private final VolumeWriter w;
        private final JobLease lease;
        private final Cancellation cancellation;

        FencedWriter(VolumeWriter w, JobLease lease, Cancellation cancellation) {
            this.w = w;
            this.lease = lease;
            this.cancellation = cancellation;
        }

        @Override
        public Optional<Path> localPath() {
            return w.localPath();
        }

        @Override
        public long position() {
            return w.position();
        }

        @Override
        public void write(ByteBuffer src) throws IOException {
            lease.awaitHeld(cancellation);
            w.write(src);
        }

        @Override
        public void writeZeros(long length) throws IOException {
            lease.awaitHeld(cancellation);
            w.writeZeros(length);
        }

        @Override
        public void skip(long length) throws IOException {
            w.skip(length);
        }

        @Override
        public void finish() throws IOException {
            lease.awaitHeld(cancellation);
            w.finish();
        }

        @Override
        public void close() {
            w.close();
        }
    }
}
