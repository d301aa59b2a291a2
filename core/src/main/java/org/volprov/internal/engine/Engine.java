package org.volprov.internal.engine;

import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.volprov.ErrorCode;
import org.volprov.Job;
import org.volprov.JobFilter;
import org.volprov.JobListener;
import org.volprov.JobState;
import org.volprov.ProvisionRequest;
import org.volprov.Provisioner;
import org.volprov.ProvisioningException;
import org.volprov.Ticker;
import org.volprov.cache.CacheStats;
import org.volprov.cache.ImageCache;
import org.volprov.internal.OncePerKey;
import org.volprov.support.Retrier;

/**
 * A running engine: the one entry into this package, behind the {@link Provisioner} facade, which
 * documents what each operation does for a caller. Public only so that the facade can reach it; not
 * an API, and free to change with the facade. Thread-safe.
 */
public final class Engine implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(Engine.class);
    /** How long close() waits for each job it cancelled. */
    private static final long STOP_WAIT_SECONDS = 30;

    private final EngineSettings settings;
    private final JobParts parts;
    private final Dispatcher dispatcher;
    final LeaseKeeper leases;
    private final UnrecordedEnds ends;
    private final EngineThreads threads;

    private Engine(JobParts parts, Dispatcher dispatcher, LeaseKeeper leases, UnrecordedEnds ends,
            EngineThreads threads) {
        this.settings = parts.settings();
        this.parts = parts;
        this.dispatcher = dispatcher;
        this.leases = leases;
        this.ends = ends;
        this.threads = threads;
    }

    /**
     * Makes the engine's parts from {@code s}, then starts it: the kept ends and recovery first,
     * then the periodic tasks.
     *
     * @throws ProvisioningException {@code BACKEND_FAILURE} when the state directory cannot be
     *     created; a cache the engine owns is closed then
     */
    public static Engine start(EngineSettings s, List<JobListener> listeners) {
        EndJournal journal = openJournal(s);
        long tick = s.watchdogMillis();
        LeaseKeeper leases = new LeaseKeeper(s.jobStore(), s.engineId(), s.jobLease(), s.clock(), tick);
        if (journal == null && !s.ownsJobStore()) {
            LOG.warn("engine {} has no state directory: an end the job store does not take is kept in memory only, and"
                    + " is lost if the process exits first; set stateDirectory", s.engineId());
        }
        UnrecordedEnds ends = new UnrecordedEnds(s.jobStore(), s.engineId(), journal, leases);
        EngineThreads threads = new EngineThreads(s);
        JobParts parts = new JobParts(s, new Retrier(s.retryPolicy(), s.clock(), s.sleeper()),
                new JobRecords(s, leases, ends), new JobEvents(listeners), new OncePerKey<>(10_000),
                threads.downloads(), threads.decoding(), threads.flushing());
        Dispatcher dispatcher = new Dispatcher(parts, threads.jobs(), leases);
        Recovery recovery = new Recovery(parts, dispatcher, leases, ends);
        threads.every(EngineThreads.Task.LEASES, leases::renewIfDue, tick, tick);
        threads.every(EngineThreads.Task.WATCHDOG, dispatcher::checkDeadlines, tick, tick);
        recovery.atStart();
        threads.every(EngineThreads.Task.STORE, recovery::tick, tick, tick);
        if (s.queue() != null) {
            QueueWorker queue = new QueueWorker(parts, dispatcher, recovery, leases);
            threads.every(EngineThreads.Task.STORE, queue::poll, 0, s.queuePoll().toMillis());
        }
        return new Engine(parts, dispatcher, leases, ends, threads);
    }

    /** The journal in the state directory, or null without one; a failure leaves no owned cache open. */
    private static EndJournal openJournal(EngineSettings s) {
        if (s.stateDirectory() == null) {
            return null;
        }
        try {
            return new EndJournal(s.stateDirectory());
        } catch (RuntimeException e) {
            if (s.ownsCache()) {
                s.cache().close();
            }
            throw e;
        }
    }

    public String engineId() {
        return settings.engineId();
    }

    public void validate(ProvisionRequest request) {
        settings.validate(request);
    }

    public String submit(ProvisionRequest request) {
        return dispatcher.submit(request);
    }

    public Optional<Job> status(String id) {
        Optional<JobRun> run = dispatcher.find(id);
        if (run.isPresent()) {
            return Optional.of(run.get().snapshot());
        }
        Optional<Job> unrecorded = ends.get(id);
        return unrecorded.isPresent() ? unrecorded : settings.jobStore().find(id);
    }

    public CompletableFuture<Job> completion(String id) {
        Optional<JobRun> run = dispatcher.find(id);
        if (run.isPresent()) {
            return run.get().future.thenApply(j -> j);
        }
        Job job = status(id).orElseThrow(() -> ProvisioningException.invalid("jobId", "no job " + id));
        return CompletableFuture.completedFuture(job);
    }

    public boolean cancel(String id) {
        return dispatcher.cancel(id);
    }

    public List<Job> list(JobFilter filter) {
        return settings.jobStore().list(filter);
    }

    public void addListener(JobListener listener) {
        parts.events().add(listener);
    }

    public void removeListener(JobListener listener) {
        parts.events().remove(listener);
    }

    public ImageCache cache() {
        return settings.cache();
    }

    public CacheStats cacheStats() {
        return settings.cache().stats();
    }

    public int queueDepth() {
        return dispatcher.queueDepth();
    }

    public int runningJobs() {
        return dispatcher.runningJobs();
    }

    /** See {@link Provisioner#close()}. Idempotent. */
    @Override
    public void close() {
        if (!dispatcher.close()) {
            return;
        }
        if (settings.shutdownMode() == Provisioner.ShutdownMode.AWAIT) {
            awaitJobs(dispatcher.active());
        }
        for (JobRun r : dispatcher.drainQueue()) {
            if (r.origin() == JobRun.Origin.SUBMITTED) {
                r.finishUnstarted(JobState.CANCELLED, ErrorCode.CANCELLED,
                        "the provisioner closed before the job started");
            } else {
                // Back to the store as it was: another engine of this host runs it.
                r.abandon();
                dispatcher.giveBack(r.id(), r.origin());
            }
        }
        List<JobRun> all = dispatcher.active();
        for (JobRun r : all) {
            r.cancellation().cancel(ErrorCode.CANCELLED, "the provisioner is closing");
        }
        // A job whose lease is in doubt does not wait for the store any more: it is left to recovery.
        leases.giveUpDoubts();
        for (JobRun r : all) {
            try {
                r.future.get(STOP_WAIT_SECONDS, TimeUnit.SECONDS);
            } catch (TimeoutException | ExecutionException e) {
                LOG.warn("job {} did not stop within {} s of being cancelled", r.id(), STOP_WAIT_SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        threads.stop(EngineThreads.Task.WATCHDOG, false);
        threads.stop(EngineThreads.Task.STORE, true);
        try {
            parts.records().writeKept(true);
        } catch (RuntimeException e) {
            LOG.debug("writing the ends the store did not take failed", e);
        }
        if (!ends.ids().isEmpty()) {
            LOG.error("the job store did not take the end of jobs {}: {}", ends.ids(), ends.journaled()
                    ? "they are kept in the state directory, and written before recovery at the next start"
                    : "the store holds them as running, and the next start recovers them as unfinished");
        }
        threads.stop(EngineThreads.Task.LEASES, false);
        leases.giveUpDoubts();
        threads.close();
        if (settings.ownsJobStore()) {
            settings.jobStore().close();
        }
        if (settings.ownsCache()) {
            settings.cache().close();
        }
    }

    /** Waits up to the grace period, on the ticker, for {@code runs} to end. */
    private void awaitJobs(List<JobRun> runs) {
        Ticker ticker = settings.ticker();
        long deadline = ticker.nanos() + settings.shutdownGrace().toNanos();
        for (JobRun run : runs) {
            long left = deadline - ticker.nanos();
            try {
                run.future.get(Math.max(0, left), TimeUnit.NANOSECONDS);
            } catch (TimeoutException | ExecutionException e) {
                return;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }
}
