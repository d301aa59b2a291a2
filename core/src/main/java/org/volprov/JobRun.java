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
import org.volprov.internal.Download;
import org.volprov.internal.IoFailure;
import org.volprov.internal.Retrier;

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
        ObjectInfo info = retrier.call("reading " + ref, () -> s.source.stat(ref), cancellation);
        Optional<String> published = retrier.call("reading " + ref.checksumSibling(),
                () -> s.source.publishedChecksum(ref), cancellation);
        CacheKey key = new CacheKey(ref, info.etag(), info.size(), published);

        CacheLease lease = s.cache.lookup(key).orElse(null);
        if (lease == null) {
            stage(Stage.DOWNLOADING, info.size());
            Download download = new Download(s.source, ref, retrier, s.clock, cancellation,
                    done -> progress(Stage.DOWNLOADING, done, info.size()), s.bufferSize, s.downloadParallelism,
                    s.downloadPartSize);
            lease = s.cache.admit(key, download, cancellation);
        }
        try (CacheLease image = lease) {
            job = job.withImage(image.sha256(), image.hit(), s.clock.instant());
            stage(Stage.VERIFYING, 0);
            ImageInfo img = s.converter.inspect(image.path(), request.format());
            if (img.virtualSize() > request.volumeSizeBytes()) {
                throw new ProvisioningException(ErrorCode.VOLUME_TOO_SMALL, "the image's virtual size is "
                        + img.virtualSize() + " bytes but the volume is " + request.volumeSizeBytes()
                        + " bytes; ask for a volume of at least " + img.virtualSize() + " bytes");
            }
            cancellation.checkpoint();
            stage(Stage.CREATING_VOLUME, 0);
            VolumeInfo volume = prepareVolume();
            cancellation.checkpoint();
            write(image, img, volume);
        }
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
            if (v.capacityBytes() < size || v.capacityBytes() - size > s.sizeToleranceBytes) {
                throw new ProvisioningException(ErrorCode.VOLUME_CONFLICT, "volume " + name + " exists with "
                        + v.capacityBytes() + " bytes; the request asks for " + size + " bytes (reused only up to "
                        + s.sizeToleranceBytes + " bytes larger); delete it or ask for its size");
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
        if (job.createdVolume()) {
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
        if (finalCode == ErrorCode.BACKEND_FAILURE) {
            LOG.warn("job {} failed: {}", job.id(), m, cause);
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
        return code == ErrorCode.TIMED_OUT ? "the job ran longer than its timeout of " + s.jobTimeout
                : "the job was cancelled";
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
