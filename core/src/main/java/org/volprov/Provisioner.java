package org.volprov;

import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executor;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.regex.Pattern;
import org.volprov.cache.CacheStats;
import org.volprov.cache.DiskImageCache;
import org.volprov.cache.ImageCache;
import org.volprov.image.ImageConverter;
import org.volprov.image.Qcow2Converter;
import org.volprov.internal.engine.Engine;
import org.volprov.internal.engine.EngineSettings;
import org.volprov.job.InMemoryJobStore;
import org.volprov.job.JobQueue;
import org.volprov.job.JobStore;
import org.volprov.source.ImageSource;
import org.volprov.support.LocalHost;
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
    private static final Pattern ENGINE_ID = Pattern.compile("\\p{Graph}{1,128}");

    private final Engine engine;

    private Provisioner(Engine engine) {
        this.engine = engine;
    }

    public static Builder builder() {
        return new Builder();
    }

    /** This engine's id: the holder of the jobs it runs, in the job store. */
    public String engineId() {
        return engine.engineId();
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
        engine.validate(request);
    }

    /**
     * Accepts a request and returns its job id at once.
     *
     * @throws ProvisioningException {@code INVALID_REQUEST} naming the field (see {@link #validate}),
     *     {@code VOLUME_BUSY}, {@code QUEUE_FULL}; nothing is created then
     * @throws IllegalStateException when the provisioner is closed
     */
    public String submit(ProvisionRequest request) {
        return engine.submit(request);
    }

    /**
     * Warms this host's cache with {@code imageUri} without making a volume: submits
     * {@link ProvisionRequest#prefetch}, a job like any other (an id, the {@code DOWNLOADING} stage's
     * progress, {@link #cancel}, the store, the listeners), which takes no volume lock and never
     * calls the backend. It fails as a provision's download and check would ({@code IMAGE_NOT_FOUND},
     * {@code CHECKSUM_MISMATCH}, {@code UNSUPPORTED_IMAGE}, ...) and, for an image already cached,
     * completes at once as a cache hit. To prefetch on another host of a fleet, enqueue a job with
     * such a request for that host ({@link JobQueue#enqueue}).
     *
     * @throws ProvisioningException {@code INVALID_REQUEST} for a bad URI, {@code QUEUE_FULL}
     * @throws IllegalStateException when the provisioner is closed
     */
    public String prefetch(String imageUri) {
        return submit(ProvisionRequest.prefetch(imageUri));
    }

    /** The job's latest snapshot, from the engine while it runs, else from the store. */
    public Optional<Job> status(String id) {
        return engine.status(id);
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
        return engine.completion(id);
    }

    /**
     * Cancels a queued or running job: it ends {@code CANCELLED}, its download, converter and write
     * are stopped. Returns false when the job is not queued or running.
     */
    public boolean cancel(String id) {
        return engine.cancel(id);
    }

    /** Jobs from the store that pass {@code filter}, newest first. */
    public List<Job> list(JobFilter filter) {
        return engine.list(filter);
    }

    /** Adds a listener for every job's events. */
    public void addListener(JobListener listener) {
        engine.addListener(listener);
    }

    public void removeListener(JobListener listener) {
        engine.removeListener(listener);
    }

    /**
     * The engine's image cache, for an operator: {@code list()} the images held, {@code evict} one no
     * job leases, {@code verify} one or all against their digests (a damaged entry is dropped and
     * reported). The cache is shared with the running jobs; see {@link ImageCache} for what each
     * call guarantees while they run.
     */
    public ImageCache cache() {
        return engine.cache();
    }

    /** The cache's counters. */
    public CacheStats cacheStats() {
        return engine.cacheStats();
    }

    /** How many jobs wait for a slot. */
    public int queueDepth() {
        return engine.queueDepth();
    }

    /** How many jobs run now. */
    public int runningJobs() {
        return engine.runningJobs();
    }

    /**
     * Stops taking work; then, by the configured {@link ShutdownMode}, waits up to the grace period
     * for running and queued jobs before cancelling what is left, or cancels at once. Ends the job
     * store did not take are written a last time, and kept in the state directory for the next start
     * when it still does not take them. Idempotent.
     */
    @Override
    public void close() {
        engine.close();
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
        private Ticker ticker = Ticker.SYSTEM;
        private Sleeper sleeper = Sleeper.SYSTEM;
        private Executor executor;
        private ScheduledExecutorService scheduler;
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
        private boolean verifyWrittenVolume;
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

        /**
         * The source of elapsed time for the progress throttle, the spacing of job-store retries and
         * close's grace period; default {@link Ticker#SYSTEM}. Timestamps, deadlines and leases
         * follow the {@link #clock} instead.
         */
        public Builder ticker(Ticker ticker) {
            this.ticker = Objects.requireNonNull(ticker, "ticker");
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
         * Runs the engine's periodic tasks (deadline checks, lease renewals, the job-store thread's
         * retries, recovery and queue polling); default one daemon thread per kind of task, owned by
         * the engine. Give one with at least three threads, so that a slow job store delays neither
         * deadlines nor lease renewals. A given scheduler is not shut down by
         * {@link Provisioner#close()}; the engine's tasks on it are cancelled.
         */
        public Builder scheduler(ScheduledExecutorService scheduler) {
            this.scheduler = Objects.requireNonNull(scheduler, "scheduler");
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
         * Where a configured converter other than the default (qemu-img) converts a qcow2 image to
         * raw before a streamed upload, for backends without a local path; the default converter
         * decodes into the upload and needs none. Default the JVM's temporary directory.
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
         * Whether each job reads its volume back before it is {@code COMPLETED}; default false. After
         * the volume is written and flushed, the engine reads it through the backend
         * ({@link VolumeBackend#openReader}) and compares its first virtual-size bytes with the SHA-256
         * of the decoded image (a raw image's verified digest; a qcow2 image decoded once more, apart
         * from the converter that wrote it), and the rest of the volume with zeros. A difference fails
         * the job with {@code VOLUME_VERIFY_FAILED} and rolls the volume back like any failure. It
         * costs one read of the whole volume, and for qcow2 one more decode of the image (see the
         * benchmark table in the README). {@link #build} refuses it for a backend that does not read
         * volumes back ({@link VolumeBackend#readsBack}).
         */
        public Builder verifyWrittenVolume(boolean verify) {
            this.verifyWrittenVolume = verify;
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
            return new Provisioner(Engine.start(settings(), List.copyOf(listeners)));
        }

        private EngineSettings settings() {
            require(source, "source");
            require(backend, "backend");
            if (queue != null && jobStore != null && queue != jobStore) {
                throw new IllegalStateException("queue and jobStore must be the same store when both are set");
            }
            if (jobLease.compareTo(watchdogInterval.multipliedBy(3)) < 0) {
                throw new IllegalStateException("jobLease must be at least 3 watchdog intervals, so that it is renewed"
                        + " before it runs out");
            }
            if (verifyWrittenVolume && !backend.readsBack()) {
                throw new IllegalStateException("verifyWrittenVolume needs a backend that reads volumes back, and "
                        + backend + " does not (VolumeBackend.readsBack)");
            }
            if (cache == null && cacheDirectory == null) {
                throw new IllegalStateException("cache or cacheDirectory must be set");
            }
            JobStore given = queue != null ? queue : jobStore;
            boolean ownsJobStore = given == null;
            // An end kept for a store that dies with the process would be written nowhere.
            Path cacheDir = cache instanceof DiskImageCache disk ? disk.directory() : cache == null ? cacheDirectory : null;
            Path state = stateDirectory != null ? stateDirectory
                    : !ownsJobStore && cacheDir != null ? cacheDir.resolve(DiskImageCache.STATE_DIRECTORY) : null;
            // Opened last, so that a missing option cannot leave an open cache behind.
            ImageCache usedCache = cache != null ? cache
                    : DiskImageCache.builder().directory(cacheDirectory).maxBytes(cacheMaxBytes).build();
            return new EngineSettings(source, usedCache, cache == null, backend,
                    ownsJobStore ? new InMemoryJobStore() : given, ownsJobStore,
                    converter == null ? new Qcow2Converter() : converter, volumeGuard,
                    maxConcurrentJobs, queueCapacity, jobTimeout, retryPolicy, clock, ticker, sleeper, executor,
                    scheduler, recoveryMode, shutdownMode, shutdownGrace, maxVolumeBytes, sizeToleranceBytes,
                    watchdogInterval,
                    workDirectory == null ? Path.of(System.getProperty("java.io.tmpdir")) : workDirectory,
                    bufferSize, downloadParallelism, downloadPartSize, requirePublishedChecksum, queue, queuePoll,
                    engineId != null ? engineId : LocalHost.name() + "-" + randomSuffix(), jobLease, state,
                    verifyWrittenVolume);
        }

        private static String randomSuffix() {
            byte[] b = new byte[4];
            new SecureRandom().nextBytes(b);
            return HexFormat.of().formatHex(b);
        }

        private static void require(Object value, String option) {
            if (value == null) {
                throw new IllegalStateException(option + " must be set");
            }
        }
    }
}
