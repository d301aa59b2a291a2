package org.volprov;

import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executor;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.volprov.cache.DiskImageCache;
import org.volprov.embedded.InMemoryJobStore;
import org.volprov.embedded.Qcow2Converter;
import org.volprov.embedded.QemuImgConverter;
import org.volprov.internal.OncePerKey;
import org.volprov.internal.Retrier;

/**
 * The provisioning engine: turns {@link ProvisionRequest}s into ready volumes.
 *
 * <p>{@link #submit} returns a job id at once; the job runs on the engine's executor, at most
 * {@code maxConcurrentJobs} at a time, with up to {@code queueCapacity} more waiting. A submit beyond
 * that fails at once with {@code QUEUE_FULL}; a second job for a volume that has one fails at once
 * with {@code VOLUME_BUSY}. Every state, stage and progress change reaches the {@link JobStore} and
 * the listeners.
 *
 * <p>With {@link Builder#queue}, the engine also takes work from a {@link JobQueue} shared by a
 * fleet: whenever it has a free slot it claims the next job queued for its host, runs it like a
 * submitted one, and renews the job's lease until the job ends.
 *
 * <p>Thread-safe. The parts handed to the builder stay the caller's: {@link #close()} does not
 * close them, except those the builder made itself (the default job store, a cache opened from
 * {@link Builder#cacheDirectory}).
 */
public final class Provisioner implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(Provisioner.class);

    final Settings settings;
    /** Images whose checksum sibling the source refused; warned about once each. */
    final OncePerKey<ImageRef> refusedChecksumSiblings = new OncePerKey<>(10_000);
    private final Retrier retrier;
    private final List<JobListener> listeners = new CopyOnWriteArrayList<>();
    private final Object lock = new Object();
    private final ArrayDeque<JobRun> queue = new ArrayDeque<>();
    private final Map<String, JobRun> active = new LinkedHashMap<>();
    private final ExecutorService ownedExecutor;
    private final Executor executor;
    private final ScheduledExecutorService watchdog;
    private final ScheduledExecutorService queueWorker;
    private final AtomicBoolean closed = new AtomicBoolean();
    private boolean queueFailing; // only the queue worker's thread reads and writes it
    /** Ends of jobs the store did not take while it was down, by job id; written again by the watchdog. */
    private final Map<String, Job> unrecordedEnds = new ConcurrentHashMap<>();
    private long endsRetryAtNanos; // guarded by unrecordedEnds
    private int running;
    private int reserved;

    private Provisioner(Builder b) {
        this.settings = new Settings(b);
        this.retrier = new Retrier(settings.retryPolicy, settings.clock, settings.sleeper);
        this.listeners.addAll(b.listeners);
        if (b.executor == null) {
            AtomicInteger n = new AtomicInteger();
            this.ownedExecutor = Executors.newFixedThreadPool(settings.maxConcurrentJobs, r -> {
                Thread t = new Thread(r, "volprov-job-" + n.incrementAndGet());
                t.setDaemon(true);
                return t;
            });
            this.executor = ownedExecutor;
        } else {
            this.ownedExecutor = null;
            this.executor = b.executor;
        }
        this.watchdog = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "volprov-watchdog");
            t.setDaemon(true);
            return t;
        });
        long tick = settings.watchdogInterval.toMillis();
        watchdog.scheduleWithFixedDelay(this::checkDeadlines, tick, tick, TimeUnit.MILLISECONDS);
        // Before recovery touches a volume: a dead engine's qemu-img would go on writing into it.
        QemuImgConverter.endOrphans();
        recover();
        if (settings.queue != null) {
            // Its own thread: a slow or unreachable database must not delay the deadline checks.
            this.queueWorker = Executors.newSingleThreadScheduledExecutor(r -> {
                Thread t = new Thread(r, "volprov-queue");
                t.setDaemon(true);
                return t;
            });
            long poll = settings.queuePoll.toMillis();
            queueWorker.scheduleWithFixedDelay(this::pollQueue, 0, poll, TimeUnit.MILLISECONDS);
        } else {
            this.queueWorker = null;
        }
    }

    public static Builder builder() {
        return new Builder();
    }

    /**
     * Accepts a request and returns its job id at once.
     *
     * @throws ProvisioningException {@code INVALID_REQUEST} naming the field, {@code VOLUME_BUSY},
     *     {@code QUEUE_FULL}; nothing is created then
     * @throws IllegalStateException when the provisioner is closed
     */
    public String submit(ProvisionRequest request) {
        Objects.requireNonNull(request, "request");
        if (request.volumeSizeBytes() > settings.maxVolumeBytes) {
            throw ProvisioningException.invalid("volumeSizeBytes", "must be at most " + settings.maxVolumeBytes
                    + " bytes (the configured maximum)");
        }
        ImageRef.parse(request.imageUri(), settings.source.endpoint());
        Job job = Job.pending(UUID.randomUUID().toString(), request, settings.clock.instant());
        return enqueue(job, false, false);
    }

    /**
     * @param recovered the job is in the store already (recovered at start, or claimed)
     * @param claimed the job was claimed from the queue: its lease is renewed while it is active
     */
    private String enqueue(Job job, boolean recovered, boolean claimed) {
        VolumeGuard.Lock volumeLock = settings.volumeGuard.tryLock(job.request().volumeName()).orElseThrow(
                () -> new ProvisioningException(ErrorCode.VOLUME_BUSY,
                        "volume " + job.request().volumeName() + " has a job running or queued already"));
        try {
            synchronized (lock) {
                if (closed.get()) {
                    throw new IllegalStateException("the provisioner is closed");
                }
                if (running + queue.size() + reserved >= settings.maxConcurrentJobs + settings.queueCapacity) {
                    throw new ProvisioningException(ErrorCode.QUEUE_FULL, "the provisioner has " + running
                            + " jobs running and " + queue.size() + " waiting (capacity "
                            + settings.queueCapacity + "); submit again later");
                }
                reserved++;
            }
        } catch (RuntimeException e) {
            volumeLock.close();
            throw e;
        }
        JobRun run = new JobRun(this, job, volumeLock, retrier);
        if (claimed) {
            run.leaseRenewedAt = settings.clock.instant();
        }
        try {
            if (recovered) {
                settings.jobStore.update(job);
            } else {
                settings.jobStore.insert(job);
            }
        } catch (RuntimeException e) {
            synchronized (lock) {
                reserved--;
            }
            volumeLock.close();
            throw e;
        }
        if (!recovered) {
            publish(JobEvent.Kind.STATE, job);
        }
        synchronized (lock) {
            reserved--;
            queue.add(run);
            active.put(job.id(), run);
            dispatchLocked();
        }
        return job.id();
    }

    /** The job's latest snapshot, from the engine while it runs, else from the store. */
    public Optional<Job> status(String id) {
        JobRun run;
        synchronized (lock) {
            run = active.get(id);
        }
        if (run != null) {
            return Optional.of(run.snapshot());
        }
        Job unrecorded = unrecordedEnds.get(id);
        return unrecorded != null ? Optional.of(unrecorded) : settings.jobStore.find(id);
    }

    /**
     * Waits up to {@code timeout} for the job to end and returns its snapshot, terminal or not.
     *
     * @throws ProvisioningException {@code INVALID_REQUEST} for an unknown id
     */
    public Job await(String id, Duration timeout) {
        try {
            return completion(id).get(timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            return status(id).orElseThrow();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return status(id).orElseThrow();
        } catch (ExecutionException e) {
            throw new IllegalStateException(e.getCause());
        }
    }

    /** Completes with the job's terminal snapshot; never completes exceptionally. */
    public CompletableFuture<Job> completion(String id) {
        JobRun run;
        synchronized (lock) {
            run = active.get(id);
        }
        if (run != null) {
            return run.future.thenApply(j -> j);
        }
        Job job = status(id).orElseThrow(() -> ProvisioningException.invalid("jobId", "no job " + id));
        return CompletableFuture.completedFuture(job);
    }

    /**
     * Cancels a queued or running job: it ends {@code CANCELLED}, its download, converter and write
     * are stopped. Returns false when the job is not queued or running.
     */
    public boolean cancel(String id) {
        JobRun run;
        boolean wasQueued;
        synchronized (lock) {
            run = active.get(id);
            if (run == null) {
                return false;
            }
            wasQueued = queue.remove(run);
            if (wasQueued) {
                active.remove(id);
            }
        }
        if (wasQueued) {
            run.finishUnstarted(JobState.CANCELLED, ErrorCode.CANCELLED, "cancelled before it started");
        } else {
            run.cancellation().cancel(ErrorCode.CANCELLED, "cancelled by the caller");
        }
        return true;
    }

    /** Jobs from the store that pass {@code filter}, newest first. */
    public List<Job> list(JobFilter filter) {
        return settings.jobStore.list(filter);
    }

    /** Adds a listener for every job's events. */
    public void addListener(JobListener listener) {
        listeners.add(Objects.requireNonNull(listener, "listener"));
    }

    public void removeListener(JobListener listener) {
        listeners.remove(listener);
    }

    /** The cache's counters. */
    public CacheStats cacheStats() {
        return settings.cache.stats();
    }

    /** How many jobs wait for a slot. */
    public int queueDepth() {
        synchronized (lock) {
            return queue.size();
        }
    }

    /** How many jobs run now. */
    public int runningJobs() {
        synchronized (lock) {
            return running;
        }
    }

    /**
     * Stops taking work; then, by the configured {@link ShutdownMode}, waits up to the grace period
     * for running and queued jobs before cancelling what is left, or cancels at once. Idempotent.
     */
    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) {
            return;
        }
        List<JobRun> all;
        synchronized (lock) {
            all = new ArrayList<>(active.values());
        }
        if (settings.shutdownMode == ShutdownMode.AWAIT) {
            long deadline = System.nanoTime() + settings.shutdownGrace.toNanos();
            for (JobRun run : all) {
                long left = deadline - System.nanoTime();
                try {
                    run.future.get(Math.max(0, left), TimeUnit.NANOSECONDS);
                } catch (TimeoutException | ExecutionException e) {
                    break;
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    break;
                }
            }
        }
        List<JobRun> queued;
        synchronized (lock) {
            queued = new ArrayList<>(queue);
            queue.clear();
            queued.forEach(r -> active.remove(r.id()));
            all = new ArrayList<>(active.values());
        }
        for (JobRun r : queued) {
            if (r.claimed()) {
                // Back to the fleet's queue rather than cancelled: another start of this host runs it.
                r.abandon();
                releaseQuietly(r.id());
            } else {
                r.finishUnstarted(JobState.CANCELLED, ErrorCode.CANCELLED,
                        "the provisioner closed before the job started");
            }
        }
        for (JobRun r : all) {
            r.cancellation().cancel(ErrorCode.CANCELLED, "the provisioner is closing");
        }
        for (JobRun r : all) {
            try {
                r.future.get(30, TimeUnit.SECONDS);
            } catch (TimeoutException | ExecutionException e) {
                LOG.warn("job {} did not stop within 30 s of being cancelled", r.id());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        watchdog.shutdownNow();
        if (queueWorker != null) {
            queueWorker.shutdownNow();
        }
        recordEnds(true);
        if (!unrecordedEnds.isEmpty()) {
            LOG.error("the job store did not take the end of jobs {}: they ended, but the store holds them as "
                    + "running, and the next start recovers them as unfinished", unrecordedEnds.keySet());
        }
        if (ownedExecutor != null) {
            ownedExecutor.shutdownNow();
        }
        if (settings.ownsJobStore) {
            settings.jobStore.close();
        }
        if (settings.ownsCache) {
            settings.cache.close();
        }
    }

    // ---- engine internals, used by JobRun ----

    void publish(JobEvent.Kind kind, Job job) {
        JobEvent event = new JobEvent(kind, job);
        for (JobListener l : listeners) {
            try {
                l.onEvent(event);
            } catch (RuntimeException e) {
                LOG.warn("listener {} failed on {} of job {}: {}", l, kind, job.id(), e.toString());
                LOG.debug("listener failure", e);
            }
        }
    }

    void finished(JobRun run) {
        synchronized (lock) {
            if (active.remove(run.id()) != null && run.started) {
                running--;
            }
            dispatchLocked();
        }
    }

    private void dispatchLocked() {
        while (running < settings.maxConcurrentJobs && !queue.isEmpty()) {
            JobRun run = queue.poll();
            running++;
            run.started = true;
            try {
                executor.execute(run);
            } catch (RejectedExecutionException e) {
                running--;
                active.remove(run.id());
                run.finishUnstarted(JobState.FAILED, ErrorCode.BACKEND_FAILURE, "the executor refused the job: " + e);
            }
        }
    }

    /** Keeps {@code job}'s end to write when the store answers again. */
    void recordLater(Job job) {
        unrecordedEnds.put(job.id(), job);
    }

    /** Whether the store holds a terminal state for {@code id}; false when it cannot say. */
    boolean endedInStore(String id) {
        try {
            return settings.jobStore.find(id).map(j -> j.state().terminal()).orElse(false);
        } catch (RuntimeException e) {
            return false;
        }
    }

    /**
     * Writes the ends the store did not take, at most once per {@link JobRun#STORE_RETRY_NANOS}
     * unless {@code now}. Stops at the first failure: the store is still down.
     */
    private void recordEnds(boolean now) {
        if (unrecordedEnds.isEmpty()) {
            return;
        }
        synchronized (unrecordedEnds) {
            long t = System.nanoTime();
            if (!now && t - endsRetryAtNanos < 0) {
                return;
            }
            endsRetryAtNanos = t + JobRun.STORE_RETRY_NANOS;
            for (Job job : List.copyOf(unrecordedEnds.values())) {
                try {
                    settings.jobStore.update(job);
                    LOG.info("recorded the end of job {} ({}) now that the job store answers", job.id(), job.state());
                } catch (RuntimeException e) {
                    if (!endedInStore(job.id())) {
                        return;
                    }
                }
                unrecordedEnds.remove(job.id());
            }
        }
    }

    private void checkDeadlines() {
        recordEnds(false);
        List<JobRun> runs;
        synchronized (lock) {
            runs = new ArrayList<>(active.values());
        }
        for (JobRun r : runs) {
            if (r.started) {
                r.cancellation().isCancelled(); // fires the timeout when the deadline has passed
            }
        }
    }

    private void recover() {
        List<Job> unfinished;
        try {
            unfinished = settings.jobStore.unfinished();
        } catch (RuntimeException e) {
            LOG.warn("cannot read unfinished jobs from the job store; none recovered", e);
            return;
        }
        for (Job job : unfinished) {
            if (settings.recoveryMode == RecoveryMode.RESUME) {
                try {
                    enqueue(job.withProgress(Progress.of(Stage.QUEUED), settings.clock.instant()), true, false);
                    LOG.info("job {} left unfinished by an earlier process is resumed", job.id());
                    continue;
                } catch (ProvisioningException e) {
                    LOG.warn("job {} cannot be resumed: {}", job.id(), e.getMessage());
                }
            }
            JobRun.failInterrupted(this, job);
        }
    }

    // ---- fleet queue: runs on the queue worker's thread ----

    private void pollQueue() {
        try {
            renewLeases();
            // A job is claimed only for a free slot, so claimed jobs never wait behind submitted ones.
            while (!closed.get() && hasFreeSlot()) {
                Optional<Job> next = settings.queue.claim(settings.queue.host(), settings.queueLease);
                if (next.isEmpty()) {
                    break;
                }
                take(next.get());
            }
            if (queueFailing) {
                queueFailing = false;
                LOG.info("the job queue answers again");
            }
        } catch (RuntimeException e) {
            if (!queueFailing) {
                queueFailing = true;
                LOG.warn("cannot reach the job queue; trying again every {}: {}", settings.queuePoll, e.getMessage());
            }
        }
    }

    private boolean hasFreeSlot() {
        synchronized (lock) {
            return running + queue.size() + reserved < settings.maxConcurrentJobs;
        }
    }

    private void renewLeases() {
        List<JobRun> claimed;
        synchronized (lock) {
            claimed = active.values().stream().filter(JobRun::claimed).toList();
        }
        Instant now = settings.clock.instant();
        Duration every = settings.queueLease.dividedBy(3);
        for (JobRun r : claimed) {
            if (now.isBefore(r.leaseRenewedAt.plus(every))) {
                continue;
            }
            if (settings.queue.renew(r.id(), settings.queue.host(), settings.queueLease)) {
                r.leaseRenewedAt = now;
            } else if (!r.future.isDone()) {
                r.cancellation().cancel(ErrorCode.INTERRUPTED, "the job queue no longer holds this job for host "
                        + settings.queue.host() + ": it ended or was released elsewhere");
            }
        }
    }

    private void take(Job job) {
        synchronized (lock) {
            JobRun mine = active.get(job.id());
            if (mine != null) {
                // This engine runs it already; its lease ran out while the queue was unreachable.
                mine.leaseRenewedAt = settings.clock.instant();
                return;
            }
        }
        if (job.state() == JobState.RUNNING && settings.recoveryMode == RecoveryMode.FAIL) {
            JobRun.failInterrupted(this, job);
            return;
        }
        try {
            enqueue(job.withProgress(Progress.of(Stage.QUEUED), settings.clock.instant()), true, true);
        } catch (ProvisioningException e) {
            if (e.code() == ErrorCode.VOLUME_BUSY) {
                Job failed = job.finished(JobState.FAILED, ErrorCode.VOLUME_BUSY, e.getMessage(), settings.clock.instant());
                settings.jobStore.update(failed);
                publish(JobEvent.Kind.STATE, failed);
            } else if (e.code() == ErrorCode.QUEUE_FULL) {
                releaseQuietly(job.id()); // a submit took the slot meanwhile
            } else {
                throw e;
            }
        } catch (IllegalStateException closing) {
            releaseQuietly(job.id());
        }
    }

    private void releaseQuietly(String id) {
        try {
            settings.queue.release(id, settings.queue.host());
        } catch (RuntimeException e) {
            LOG.warn("cannot give job {} back to the queue; it is claimable again when its lease runs out: {}", id,
                    e.getMessage());
        }
    }

    /** What happens to jobs an earlier process left unfinished, when the engine starts. */
    public enum RecoveryMode {
        /** They end {@code FAILED} with {@code INTERRUPTED}; volumes they created are deleted. */
        FAIL,
        /** They run again from the start, reusing what the cache already holds. */
        RESUME
    }

    /** What {@link #close()} does with running jobs. */
    public enum ShutdownMode {
        /** Waits up to the grace period for them, then cancels the rest. */
        AWAIT,
        /** Cancels them at once. */
        CANCEL
    }

    /** The validated settings, immutable. */
    static final class Settings {
        final ImageSource source;
        final ImageCache cache;
        final boolean ownsCache;
        final VolumeBackend backend;
        final JobStore jobStore;
        final boolean ownsJobStore;
        final ImageConverter converter;
        final VolumeGuard volumeGuard;
        final int maxConcurrentJobs;
        final int queueCapacity;
        final Duration jobTimeout;
        final RetryPolicy retryPolicy;
        final Clock clock;
        final Sleeper sleeper;
        final RecoveryMode recoveryMode;
        final ShutdownMode shutdownMode;
        final Duration shutdownGrace;
        final long maxVolumeBytes;
        final long sizeToleranceBytes;
        final Duration watchdogInterval;
        final Path workDirectory;
        final int bufferSize;
        final int downloadParallelism;
        final long downloadPartSize;
        final boolean requirePublishedChecksum;
        final JobQueue queue;
        final Duration queuePoll;
        final Duration queueLease;

        Settings(Builder b) {
            this.source = require(b.source, "source");
            this.backend = require(b.backend, "backend");
            if (b.queue != null && b.jobStore != null && b.queue != b.jobStore) {
                throw new IllegalStateException("queue and jobStore must be the same store when both are set");
            }
            this.queue = b.queue;
            this.queuePoll = b.queuePoll;
            this.queueLease = b.queueLease;
            JobStore given = b.queue != null ? b.queue : b.jobStore;
            this.ownsJobStore = given == null;
            this.jobStore = given == null ? new InMemoryJobStore() : given;
            this.converter = b.converter == null ? new Qcow2Converter() : b.converter;
            this.volumeGuard = b.volumeGuard == null ? new InProcessVolumeGuard() : b.volumeGuard;
            this.maxConcurrentJobs = b.maxConcurrentJobs;
            this.queueCapacity = b.queueCapacity;
            this.jobTimeout = b.jobTimeout;
            this.retryPolicy = b.retryPolicy;
            this.clock = b.clock;
            this.sleeper = b.sleeper;
            this.recoveryMode = b.recoveryMode;
            this.shutdownMode = b.shutdownMode;
            this.shutdownGrace = b.shutdownGrace;
            this.maxVolumeBytes = b.maxVolumeBytes;
            this.sizeToleranceBytes = b.sizeToleranceBytes;
            this.watchdogInterval = b.watchdogInterval;
            this.workDirectory = b.workDirectory == null ? Path.of(System.getProperty("java.io.tmpdir")) : b.workDirectory;
            this.bufferSize = b.bufferSize;
            this.downloadParallelism = b.downloadParallelism;
            this.downloadPartSize = b.downloadPartSize;
            this.requirePublishedChecksum = b.requirePublishedChecksum;
            if (b.cache == null && b.cacheDirectory == null) {
                throw new IllegalStateException("cache or cacheDirectory must be set");
            }
            // Opened last, so that a missing option cannot leave an open cache behind.
            this.ownsCache = b.cache == null;
            this.cache = b.cache != null ? b.cache
                    : DiskImageCache.builder().directory(b.cacheDirectory).maxBytes(b.cacheMaxBytes).build();
        }

        private static <T> T require(T value, String option) {
            if (value == null) {
                throw new IllegalStateException(option + " must be set");
            }
            return value;
        }
    }

    /**
     * Builds a {@link Provisioner}. The image source, the cache (or a cache directory) and the volume
     * backend are required; every other option has a default. Each setter checks its argument and names the option when it refuses.
     */
    public static final class Builder {
        private ImageSource source;
        private ImageCache cache;
        private Path cacheDirectory;
        private long cacheMaxBytes;
        private VolumeBackend backend;
        private JobStore jobStore;
        private ImageConverter converter;
        private VolumeGuard volumeGuard;
        private int maxConcurrentJobs = 2;
        private int queueCapacity = 32;
        private Duration jobTimeout = Duration.ofMinutes(30);
        private RetryPolicy retryPolicy = RetryPolicy.DEFAULT;
        private Clock clock = Clock.systemUTC();
        private Sleeper sleeper = Sleeper.SYSTEM;
        private Executor executor;
        private RecoveryMode recoveryMode = RecoveryMode.FAIL;
        private ShutdownMode shutdownMode = ShutdownMode.AWAIT;
        private Duration shutdownGrace = Duration.ofSeconds(30);
        private long maxVolumeBytes = 16L << 40;
        private long sizeToleranceBytes = 0;
        private Duration watchdogInterval = Duration.ofMillis(500);
        private Path workDirectory;
        private int bufferSize = 1 << 20;
        private int downloadParallelism = 1;
        private long downloadPartSize = 32L << 20;
        private boolean requirePublishedChecksum;
        private JobQueue queue;
        private Duration queuePoll;
        private Duration queueLease;
        private final List<JobListener> listeners = new ArrayList<>();

        private Builder() {
        }

        /** Where images come from. Required. */
        public Builder source(ImageSource source) {
            this.source = Objects.requireNonNull(source, "source");
            return this;
        }

        /** Where verified images are kept; this or {@link #cacheDirectory} is required. */
        public Builder cache(ImageCache cache) {
            this.cache = Objects.requireNonNull(cache, "cache");
            return this;
        }

        /**
         * Keeps verified images in a {@link DiskImageCache} in {@code directory}, holding at most
         * {@code maxBytes}; the engine opens it and closes it with itself. Ignored when
         * {@link #cache} is set.
         */
        public Builder cacheDirectory(Path directory, long maxBytes) {
            this.cacheDirectory = Objects.requireNonNull(directory, "cacheDirectory");
            if (maxBytes <= 0) {
                throw new IllegalArgumentException("cacheMaxBytes must be greater than 0");
            }
            this.cacheMaxBytes = maxBytes;
            return this;
        }

        /** Where volumes are made. Required. */
        public Builder backend(VolumeBackend backend) {
            this.backend = Objects.requireNonNull(backend, "backend");
            return this;
        }

        /** Where job records live; default: in memory, lost with the process. */
        public Builder jobStore(JobStore jobStore) {
            this.jobStore = Objects.requireNonNull(jobStore, "jobStore");
            return this;
        }

        /**
         * Inspects and converts images; default: {@link Qcow2Converter}, the qcow2 decoder in Java
         * (no qemu-img needed). {@link org.volprov.embedded.QemuImgConverter} runs qemu-img instead.
         */
        public Builder converter(ImageConverter converter) {
            this.converter = Objects.requireNonNull(converter, "converter");
            return this;
        }

        /** Keeps two jobs off one volume; default: within this process. */
        public Builder volumeGuard(VolumeGuard volumeGuard) {
            this.volumeGuard = Objects.requireNonNull(volumeGuard, "volumeGuard");
            return this;
        }

        /** Jobs running at once; default 2, as a hypervisor's disks saturate early. */
        public Builder maxConcurrentJobs(int n) {
            if (n < 1 || n > 256) {
                throw new IllegalArgumentException("maxConcurrentJobs must be between 1 and 256, not " + n);
            }
            this.maxConcurrentJobs = n;
            return this;
        }

        /** Jobs waiting for a slot before submits fail with QUEUE_FULL; default 32. */
        public Builder queueCapacity(int n) {
            if (n < 0 || n > 100_000) {
                throw new IllegalArgumentException("queueCapacity must be between 0 and 100000, not " + n);
            }
            this.queueCapacity = n;
            return this;
        }

        /** How long a job may run, counted from when it starts; default 30 minutes. */
        public Builder jobTimeout(Duration timeout) {
            if (timeout == null || timeout.isNegative() || timeout.isZero()) {
                throw new IllegalArgumentException("jobTimeout must be positive");
            }
            this.jobTimeout = timeout;
            return this;
        }

        /** How transient source failures are retried; default {@link RetryPolicy#DEFAULT}. */
        public Builder retryPolicy(RetryPolicy policy) {
            this.retryPolicy = Objects.requireNonNull(policy, "retryPolicy");
            return this;
        }

        /** The clock for timestamps, deadlines and retry budgets; default UTC system clock. */
        public Builder clock(Clock clock) {
            this.clock = Objects.requireNonNull(clock, "clock");
            return this;
        }

        /** How the engine waits between retries; default real sleeping. */
        public Builder sleeper(Sleeper sleeper) {
            this.sleeper = Objects.requireNonNull(sleeper, "sleeper");
            return this;
        }

        /**
         * Runs jobs; default a pool of {@code maxConcurrentJobs} daemon threads owned by the engine.
         * A given executor is not shut down by {@link Provisioner#close()}.
         */
        public Builder executor(Executor executor) {
            this.executor = Objects.requireNonNull(executor, "executor");
            return this;
        }

        /** What to do at start with jobs an earlier process left unfinished; default FAIL. */
        public Builder recoveryMode(RecoveryMode mode) {
            this.recoveryMode = Objects.requireNonNull(mode, "recoveryMode");
            return this;
        }

        /** What close() does with running jobs, and how long AWAIT waits; default AWAIT, 30 s. */
        public Builder shutdown(ShutdownMode mode, Duration grace) {
            this.shutdownMode = Objects.requireNonNull(mode, "shutdownMode");
            if (grace == null || grace.isNegative()) {
                throw new IllegalArgumentException("shutdownGrace must not be negative");
            }
            this.shutdownGrace = grace;
            return this;
        }

        /** The largest volume a request may ask for; default 16 TiB. */
        public Builder maxVolumeBytes(long bytes) {
            if (bytes <= 0 || bytes > ProvisionRequest.ABSOLUTE_MAX_VOLUME_BYTES) {
                throw new IllegalArgumentException("maxVolumeBytes must be between 1 and "
                        + ProvisionRequest.ABSOLUTE_MAX_VOLUME_BYTES);
            }
            this.maxVolumeBytes = bytes;
            return this;
        }

        /**
         * How much larger than requested an existing volume may be and still be reused; default 0
         * (reused only at exactly the requested size). A smaller one is never reused.
         */
        public Builder sizeToleranceBytes(long bytes) {
            if (bytes < 0) {
                throw new IllegalArgumentException("sizeToleranceBytes must not be negative");
            }
            this.sizeToleranceBytes = bytes;
            return this;
        }

        /** How often running jobs' deadlines are checked; default 500 ms. */
        public Builder watchdogInterval(Duration interval) {
            if (interval == null || interval.toMillis() < 1) {
                throw new IllegalArgumentException("watchdogInterval must be at least 1 ms");
            }
            this.watchdogInterval = interval;
            return this;
        }

        /**
         * Where a qcow2 image is converted to raw before a streamed upload, for backends without a
         * local path; default the JVM's temporary directory.
         */
        public Builder workDirectory(Path dir) {
            this.workDirectory = Objects.requireNonNull(dir, "workDirectory");
            return this;
        }

        /** The copy buffer for downloads and raw writes; default 1 MiB. */
        public Builder bufferSize(int bytes) {
            if (bytes < 4096 || bytes > (64 << 20)) {
                throw new IllegalArgumentException("bufferSize must be between 4 KiB and 64 MiB");
            }
            this.bufferSize = bytes;
            return this;
        }

        /**
         * Parallel ranged download: {@code parallelism} parts of {@code partSize} bytes in flight
         * (memory: parallelism x partSize); default 1, a single stream.
         */
        public Builder parallelDownload(int parallelism, long partSize) {
            if (parallelism < 1 || parallelism > 64) {
                throw new IllegalArgumentException("parallelism must be between 1 and 64");
            }
            if (partSize < (1 << 20) || partSize > (512L << 20)) {
                throw new IllegalArgumentException("partSize must be between 1 MiB and 512 MiB");
            }
            this.downloadParallelism = parallelism;
            this.downloadPartSize = partSize;
            return this;
        }

        /**
         * Whether every image must have a published checksum: a job whose image has no readable
         * {@code <key>.sha256} sibling (absent, refused by the source's policy, or holding no
         * digest) fails with {@code CHECKSUM_MISSING} before anything is downloaded. Default false:
         * such an image is digested while it downloads and cached under its object version, and a
         * sibling the source refuses (S3 answers 403 for a missing object when the policy grants
         * {@code GetObject} without {@code ListBucket}) counts as not published, with one warning
         * per image. For operators who publish a checksum for every image.
         */
        public Builder requirePublishedChecksum(boolean require) {
            this.requirePublishedChecksum = require;
            return this;
        }

        /**
         * Also takes work from a fleet's queue: every {@code pollInterval}, while a slot is free, the
         * engine claims the next job queued for {@code queue.host()} and holds it for {@code lease},
         * renewed every third of it until the job ends. A claimed job left {@code RUNNING} by a dead
         * engine is failed with {@code INTERRUPTED} or run again, by the {@link RecoveryMode}. The
         * queue is the engine's job store too; it stays the caller's to close.
         */
        public Builder queue(JobQueue queue, Duration pollInterval, Duration lease) {
            Objects.requireNonNull(queue, "queue");
            if (pollInterval == null || pollInterval.toMillis() < 1) {
                throw new IllegalArgumentException("queue pollInterval must be at least 1 ms");
            }
            if (lease == null || lease.compareTo(pollInterval.multipliedBy(3)) < 0) {
                throw new IllegalArgumentException("queue lease must be at least 3 poll intervals, so that it is "
                        + "renewed before it runs out");
            }
            this.queue = queue;
            this.queuePoll = pollInterval;
            this.queueLease = lease;
            return this;
        }

        /** Receives every job's events. */
        public Builder listener(JobListener listener) {
            listeners.add(Objects.requireNonNull(listener, "listener"));
            return this;
        }

        /**
         * Builds and starts the engine; jobs an earlier process left unfinished in the job store are
         * recovered by the {@link RecoveryMode}.
         *
         * @throws IllegalStateException naming a required option that was not set
         */
        public Provisioner build() {
            return new Provisioner(this);
        }
    }
}
