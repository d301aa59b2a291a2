package org.volprov;

import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
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
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.volprov.cache.CacheStats;
import org.volprov.cache.DiskImageCache;
import org.volprov.cache.ImageCache;
import org.volprov.image.ImageConverter;
import org.volprov.image.Qcow2Converter;
import org.volprov.internal.OncePerKey;
import org.volprov.job.InMemoryJobStore;
import org.volprov.job.JobQueue;
import org.volprov.job.JobStore;
import org.volprov.source.ImageSource;
import org.volprov.support.LocalHost;
import org.volprov.support.Retrier;
import org.volprov.volume.VolumeBackend;
import org.volprov.volume.VolumeGuard;
/**
 * The provisioning engine: turns {@link ProvisionRequest}s into ready volumes.
 *
 * <p>{@link #submit} returns a job id at once; the job runs on the engine's executor, at most
 * {@code maxConcurrentJobs} at a time, with up to {@code queueCapacity} more waiting. A submit beyond
 * that fails at once with {@code QUEUE_FULL}; a second job for a volume that has one fails at once
 * with {@code VOLUME_BUSY}. Every state, stage and progress change reaches the {@link JobStore} and
 * the listeners.
 *
 * <p>Each running engine has its own id ({@link Builder#engineId}) and holds every job it runs
 * under a lease in the job store, renewed every third of {@link Builder#jobLease} from a thread of
 * its own. Several engines may share one store (processes of one host, engines in one JVM, a
 * restarted process whose predecessor still runs): each recovers only jobs whose engine's lease ran
 * out, at start and then every third of its lease. A job whose lease another engine took stops
 * before its next write, without a rollback; a job whose lease could not be renewed for the lease
 * time pauses its volume writes until the store answers.
 *
 * <p>With {@link Builder#queue}, the engine also takes work from a {@link JobQueue} shared by a
 * fleet: whenever it has a free slot it claims the next job queued for its host and runs it like a
 * submitted one.
 *
 * <p>Thread-safe. The parts handed to the builder stay the caller's: {@link #close()} does not
 * close them, except those the builder made itself (the default job store, a cache opened from
 * {@link Builder#cacheDirectory}).
 */
public final class Provisioner implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(Provisioner.class);
    private static final Pattern ENGINE_ID = Pattern.compile("\\p{Graph}{1,128}");

    final Settings settings;
    /** Images whose checksum sibling the source refused; warned about once each. */
    final OncePerKey<ImageRef> refusedChecksumSiblings = new OncePerKey<>(10_000);
    final LeaseKeeper leases;
    final UnrecordedEnds ends;
    private final Recovery recovery;
    private final Retrier retrier;
    private final List<JobListener> listeners = new CopyOnWriteArrayList<>();
    private final Object lock = new Object();
    private final ArrayDeque<JobRun> queue = new ArrayDeque<>();
    private final Map<String, JobRun> active = new LinkedHashMap<>();
    private final ExecutorService ownedExecutor;
    private final Executor executor;
    private final ScheduledExecutorService watchdog;
    private final ScheduledExecutorService storeWorker;
    private final AtomicBoolean closed = new AtomicBoolean();
    // Only the store worker's thread (and close(), once it has stopped) read and write these.
    private boolean queueFailing;
    private boolean recoveryFailing;
    private Instant recoveredAt;
    private long endsRetryAtNanos;
    private int running;
    private int reserved;

    private Provisioner(Builder b) {
        this.settings = new Settings(b);
        this.retrier = new Retrier(settings.retryPolicy, settings.clock, settings.sleeper);
        this.listeners.addAll(b.listeners);
        long tick = settings.watchdogInterval.toMillis();
        this.leases = new LeaseKeeper(settings.jobStore, settings.engineId, settings.jobLease, settings.clock, tick);
        EndJournal journal = settings.journal;
        if (journal == null && !settings.ownsJobStore) {
            LOG.warn("engine {} has no state directory: an end the job store does not take is kept in memory only, and"
                    + " is lost if the process exits first; set stateDirectory", settings.engineId);
        }
        this.ends = new UnrecordedEnds(settings.jobStore, settings.engineId, journal, leases);
        this.recovery = new Recovery(this);
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
        this.watchdog = daemonScheduler("volprov-watchdog");
        watchdog.scheduleWithFixedDelay(this::checkDeadlines, tick, tick, TimeUnit.MILLISECONDS);
        // The ends an earlier process kept go in first: a job that ended is never recovered as unfinished.
        recoveredAt = settings.clock.instant();
        try {
            if (ends.writeAll()) {
                recovery.pass();
            }
        } catch (RuntimeException e) {
            recoveryFailing = true;
            LOG.warn("cannot recover jobs from the job store at start; trying again every {}: {}",
                    settings.jobLease.dividedBy(3), e.getMessage());
        }
        // Its own thread: a slow or unreachable database must delay neither deadlines nor lease renewals.
        this.storeWorker = daemonScheduler("volprov-store");
        storeWorker.scheduleWithFixedDelay(this::keepStore, tick, tick, TimeUnit.MILLISECONDS);
        if (settings.queue != null) {
            long poll = settings.queuePoll.toMillis();
            storeWorker.scheduleWithFixedDelay(this::pollQueue, 0, poll, TimeUnit.MILLISECONDS);
        }
    }

    private static ScheduledExecutorService daemonScheduler(String name) {
        return Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, name);
            t.setDaemon(true);
            return t;
        });
    }

    public static Builder builder() {
        return new Builder();
    }

    /** This engine's id: the holder of the jobs it runs, in the job store. */
    public String engineId() {
        return settings.engineId;
    }

    /**
     * Runs every check {@link #submit} makes of a request, without submitting it: the checks the
     * request made when it was built, and those that depend on this engine (the largest volume,
     * the source's endpoint for http(s) URIs). For a host application's own API edge. Claimed and
     * recovered jobs go through the same check.
     *
     * @throws ProvisioningException {@code INVALID_REQUEST} naming the field
     */
    public void validate(ProvisionRequest request) {
        Objects.requireNonNull(request, "request");
        if (request.volumeSizeBytes() > settings.maxVolumeBytes) {
            throw ProvisioningException.invalid("volumeSizeBytes", "must be at most " + settings.maxVolumeBytes
                    + " bytes (the configured maximum)");
        }
        ImageRef.parse(request.imageUri(), settings.source.endpoint());
    }

    /**
     * Accepts a request and returns its job id at once.
     *
     * @throws ProvisioningException {@code INVALID_REQUEST} naming the field (see {@link #validate}),
     *     {@code VOLUME_BUSY}, {@code QUEUE_FULL}; nothing is created then
     * @throws IllegalStateException when the provisioner is closed
     */
    public String submit(ProvisionRequest request) {
        validate(request);
        Job job = Job.pending(UUID.randomUUID().toString(), request, settings.clock.instant());
        VolumeGuard.Lock volumeLock = settings.volumeGuard.tryLock(request.volumeName()).orElseThrow(
                () -> new ProvisioningException(ErrorCode.VOLUME_BUSY,
                        "volume " + request.volumeName() + " has a job running or queued already"));
        try {
            reserveSlot();
        } catch (RuntimeException e) {
            volumeLock.close();
            throw e;
        }
        JobLease lease;
        try {
            Instant sentAt = settings.clock.instant();
            settings.jobStore.insert(job, settings.engineId, settings.jobLease);
            lease = leases.hold(job.id(), sentAt);
        } catch (RuntimeException e) {
            unreserveSlot();
            volumeLock.close();
            throw e;
        }
        publish(JobEvent.Kind.STATE, job);
        queueRun(new JobRun(this, job, volumeLock, lease, retrier, JobRun.Origin.SUBMITTED));
        return job.id();
    }

    /**
     * Runs a job this engine took from the store (claimed, or recovered to resume), holding
     * {@code guard} and {@code lease}. False when it could not be taken on (the engine is full or
     * closing, or the lease was lost meanwhile); the caller then releases {@code guard}.
     */
    boolean runTaken(Job job, VolumeGuard.Lock guard, JobLease lease, JobRun.Origin origin) {
        try {
            reserveSlot();
        } catch (ProvisioningException | IllegalStateException e) {
            giveBack(job.id(), origin);
            return false;
        }
        Job queued = job.withProgress(Progress.of(Stage.QUEUED), settings.clock.instant());
        boolean held;
        try {
            held = settings.jobStore.update(queued, settings.engineId);
        } catch (RuntimeException e) {
            unreserveSlot();
            giveBack(job.id(), origin);
            throw e;
        }
        if (!held) {
            unreserveSlot();
            leases.drop(job.id());
            return false;
        }
        queueRun(new JobRun(this, queued, guard, lease, retrier, origin));
        return true;
    }

    /** Lets go of a taken job that will not run here: a claim goes back to the queue, a recovered job waits for its lease to run out. */
    private void giveBack(String id, JobRun.Origin origin) {
        leases.drop(id);
        if (origin == JobRun.Origin.CLAIMED) {
            try {
                settings.queue.release(id, settings.engineId);
            } catch (RuntimeException e) {
                LOG.warn("cannot give job {} back to the queue; it is claimable again when its lease runs out: {}", id,
                        e.getMessage());
            }
        }
    }

    private void reserveSlot() {
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
    }

    private void unreserveSlot() {
        synchronized (lock) {
            reserved--;
        }
    }

    private void queueRun(JobRun run) {
        synchronized (lock) {
            reserved--;
            queue.add(run);
            active.put(run.id(), run);
            dispatchLocked();
        }
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
        Optional<Job> unrecorded = ends.get(id);
        return unrecorded.isPresent() ? unrecorded : settings.jobStore.find(id);
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
     * for running and queued jobs before cancelling what is left, or cancels at once. Ends the job
     * store did not take are written a last time, and kept in the state directory for the next start
     * when it still does not take them. Idempotent.
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
            if (r.origin() == JobRun.Origin.SUBMITTED) {
                r.finishUnstarted(JobState.CANCELLED, ErrorCode.CANCELLED,
                        "the provisioner closed before the job started");
            } else {
                // Back to the store as it was: another engine of this host runs it.
                r.abandon();
                giveBack(r.id(), r.origin());
            }
        }
        for (JobRun r : all) {
            r.cancellation().cancel(ErrorCode.CANCELLED, "the provisioner is closing");
        }
        // A job whose lease is in doubt does not wait for the store any more: it is left to recovery.
        leases.giveUpDoubts();
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
        stopStoreWorker();
        try {
            ends.writeAll();
        } catch (RuntimeException e) {
            LOG.debug("writing the ends the store did not take failed", e);
        }
        if (!ends.ids().isEmpty()) {
            LOG.error("the job store did not take the end of jobs {}: {}", ends.ids(), ends.journaled()
                    ? "they are kept in the state directory, and written before recovery at the next start"
                    : "the store holds them as running, and the next start recovers them as unfinished");
        }
        leases.close();
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

    private void stopStoreWorker() {
        storeWorker.shutdown();
        try {
            if (!storeWorker.awaitTermination(10, TimeUnit.SECONDS)) {
                storeWorker.shutdownNow();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            storeWorker.shutdownNow();
        }
    }

    // ---- engine internals, used by JobRun and Recovery ----

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

    /** Slots free for more jobs, running or waiting. */
    int freeSlots() {
        synchronized (lock) {
            return settings.maxConcurrentJobs + settings.queueCapacity - running - queue.size() - reserved;
        }
    }

    /** Whether this engine runs job {@code id}, or keeps its end for the store. */
    boolean holds(String id) {
        synchronized (lock) {
            if (active.containsKey(id)) {
                return true;
            }
        }
        return ends.get(id).isPresent();
    }

    /**
     * Writes the end of a job this engine holds under {@code lease}; when the store does not take it
     * now, keeps it (on disk, with a state directory) and writes it later from the store thread.
     */
    void recordEnd(Job end, JobLease lease) {
        try {
            if (!settings.jobStore.update(end, settings.engineId)) {
                LOG.warn("the job store refused the end of job {} ({}): another engine holds the job, or it ended"
                        + " already", end.id(), end.state());
            }
            leases.drop(end.id());
        } catch (RuntimeException e) {
            LOG.warn("cannot record the end of job {} ({}) yet; the engine tries again while it runs: {}", end.id(),
                    end.state(), e.getMessage());
            ends.keep(end, lease);
        }
    }

    private void checkDeadlines() {
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

    // ---- the store thread: unrecorded ends, recovery, the fleet queue ----

    /**
     * Writes the ends the store did not take (at most once per {@link JobRun#STORE_RETRY_NANOS}),
     * then, every third of the lease, recovers the jobs of engines whose lease ran out. A recovery
     * pass always writes the kept ends first, and runs only when they all went in: a job that ended
     * here, or on a dead engine that kept its end in the shared state directory, is never
     * recovered as unfinished.
     */
    private void keepStore() {
        try {
            long t = System.nanoTime();
            Instant now = settings.clock.instant();
            boolean recoveryDue = !closed.get() && !now.isBefore(recoveredAt.plus(settings.jobLease.dividedBy(3)));
            if (recoveryDue || t - endsRetryAtNanos >= 0) {
                endsRetryAtNanos = t + JobRun.STORE_RETRY_NANOS;
                if (!ends.writeAll()) {
                    return; // the store is down; tried again at the next tick that is due
                }
            }
            if (recoveryDue) {
                recoveredAt = now;
                recovery.pass();
                if (recoveryFailing) {
                    recoveryFailing = false;
                    LOG.info("recovering jobs from the job store works again");
                }
            }
        } catch (RuntimeException e) {
            if (!recoveryFailing) {
                recoveryFailing = true;
                LOG.warn("cannot recover jobs from the job store; trying again every {}: {}",
                        settings.jobLease.dividedBy(3), e.getMessage());
            }
        }
    }

    private void pollQueue() {
        try {
            // A job is claimed only for a free slot, so claimed jobs never wait behind submitted ones.
            while (!closed.get() && hasFreeSlot()) {
                Instant sentAt = settings.clock.instant();
                Optional<Job> next = settings.queue.claim(settings.queue.host(), settings.engineId, settings.jobLease);
                if (next.isEmpty()) {
                    break;
                }
                take(next.get(), sentAt);
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

    private void take(Job job, Instant sentAt) {
        synchronized (lock) {
            JobRun mine = active.get(job.id());
            if (mine != null) {
                // This engine has it already, waiting for a slot; its lease ran out while the store was unreachable.
                mine.lease().confirmed(sentAt);
                return;
            }
        }
        JobLease lease = leases.hold(job.id(), sentAt);
        Optional<VolumeGuard.Lock> guard = settings.volumeGuard.tryLock(job.request().volumeName());
        if (guard.isEmpty()) {
            // As submit refuses it: a queued job never started, so nothing of it is on the volume.
            Job failed = job.finished(JobState.FAILED, ErrorCode.VOLUME_BUSY, "volume " + job.request().volumeName()
                    + " has a job running or queued already", settings.clock.instant());
            recordEnd(failed, lease);
            publish(JobEvent.Kind.STATE, failed);
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

    /** What happens to jobs an earlier engine left unfinished, once its lease has run out. */
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
        final String engineId;
        final Duration jobLease;
        /** Where ends the store did not take are kept; null when the engine has no state directory. */
        final EndJournal journal;

        Settings(Builder b) {
            this.source = require(b.source, "source");
            this.backend = require(b.backend, "backend");
            if (b.queue != null && b.jobStore != null && b.queue != b.jobStore) {
                throw new IllegalStateException("queue and jobStore must be the same store when both are set");
            }
            this.queue = b.queue;
            this.queuePoll = b.queuePoll;
            this.engineId = b.engineId != null ? b.engineId : LocalHost.name() + "-" + randomSuffix();
            this.jobLease = b.jobLease;
            if (jobLease.compareTo(b.watchdogInterval.multipliedBy(3)) < 0) {
                throw new IllegalStateException("jobLease must be at least 3 watchdog intervals, so that it is renewed"
                        + " before it runs out");
            }
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
            // An end kept for a store that dies with the process would be written nowhere.
            Path cacheDir = b.cache instanceof DiskImageCache disk ? disk.directory()
                    : b.cache == null ? b.cacheDirectory : null;
            Path state = b.stateDirectory != null ? b.stateDirectory
                    : !ownsJobStore && cacheDir != null ? cacheDir.resolve(DiskImageCache.STATE_DIRECTORY) : null;
            this.journal = state == null ? null : new EndJournal(state);
            // Opened last, so that a missing option cannot leave an open cache behind.
            this.ownsCache = b.cache == null;
            this.cache = b.cache != null ? b.cache
                    : DiskImageCache.builder().directory(b.cacheDirectory).maxBytes(b.cacheMaxBytes).build();
        }

        private static String randomSuffix() {
            byte[] b = new byte[4];
            new SecureRandom().nextBytes(b);
            return HexFormat.of().formatHex(b);
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
        private String engineId;
        private Duration jobLease = Duration.ofSeconds(30);
        private Path stateDirectory;
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
         * (no qemu-img needed). {@link org.volprov.image.QemuImgConverter} runs qemu-img instead.
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

        /**
         * What to do with jobs of this host's engines whose lease ran out, found at start and then
         * every third of the lease; default FAIL.
         */
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

        /**
         * How often running jobs' deadlines are checked, and the engine's leases and kept ends looked
         * at; default 500 ms.
         */
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
         * engine claims the next job queued for {@code queue.host()} and holds it under its
         * {@link #jobLease} like every job it runs. A queued job that started on an engine whose
         * lease ran out is recovered like a submitted one, by the {@link RecoveryMode}. The queue is
         * the engine's job store too; it stays the caller's to close.
         */
        public Builder queue(JobQueue queue, Duration pollInterval) {
            Objects.requireNonNull(queue, "queue");
            if (pollInterval == null || pollInterval.toMillis() < 1) {
                throw new IllegalArgumentException("queue pollInterval must be at least 1 ms");
            }
            this.queue = queue;
            this.queuePoll = pollInterval;
            return this;
        }

        /**
         * This engine's id, the holder of its jobs in the job store; default the host name and a
         * random suffix, new at every start. Unique per running engine: never the id of another
         * engine, nor the host id of the job store or the Redis coordination (those name a host,
         * shared by its engines). A stable id lets an operator recognise an engine across restarts;
         * a restarted engine then recovers its predecessor's jobs once their lease has run out, like
         * any other engine's. 1-128 printable characters without spaces.
         */
        public Builder engineId(String id) {
            if (id == null || !ENGINE_ID.matcher(id).matches()) {
                throw new IllegalArgumentException("engineId must be 1-128 printable characters without spaces, not "
                        + id);
            }
            this.engineId = id;
            return this;
        }

        /**
         * How long the job store holds a job for this engine without hearing from it; default 30 s,
         * renewed every third of it. A job of an engine that died is recovered by another once its
         * lease has run out; a job whose lease could not be renewed for this long (the store is
         * unreachable) pauses its volume writes until a renewal succeeds. Longer than a database
         * restart takes, and much longer than the clock drift between the engines sharing the store.
         */
        public Builder jobLease(Duration lease) {
            if (lease == null || lease.compareTo(Duration.ofSeconds(1)) < 0) {
                throw new IllegalArgumentException("jobLease must be at least 1 s");
            }
            this.jobLease = lease;
            return this;
        }

        /**
         * A directory the engine keeps its local state in: the ends of jobs the job store did not
         * take (it was down), written there durably and into the store before recovery at the next
         * start. Default: {@code state} in the cache directory when the cache is a
         * {@link DiskImageCache} and the job store is not the engine's own in-memory one; none
         * otherwise. Engines of one host that share a job store should share it.
         */
        public Builder stateDirectory(Path dir) {
            this.stateDirectory = Objects.requireNonNull(dir, "stateDirectory");
            return this;
        }

        /** Receives every job's events. */
        public Builder listener(JobListener listener) {
            listeners.add(Objects.requireNonNull(listener, "listener"));
            return this;
        }

        /**
         * Builds and starts the engine: the ends an earlier process kept in the state directory are
         * written to the job store, then jobs of engines whose lease has run out are recovered by the
         * {@link RecoveryMode}.
         *
         * @throws IllegalStateException naming a required option that was not set
         */
        public Provisioner build() {
            return new Provisioner(this);
        }
    }
}
