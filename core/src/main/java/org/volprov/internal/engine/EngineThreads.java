package org.volprov.internal.engine;

import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executor;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.SynchronousQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;
import org.volprov.image.Qcow2Converter;
import org.volprov.support.DaemonThreads;

/**
 * The engine's threads: the executor jobs run on, the pool the parts of parallel downloads share,
 * the decoder's and the volumes' background flushes, and the periodic tasks. Each {@link Task} kind runs on a scheduler thread of its own, so that a
 * slow or unreachable database delays neither deadlines nor lease renewals; or, when the caller
 * gave one, all on the caller's scheduler. Threads are made when first needed. What the caller gave
 * is not shut down. Thread-safe.
 */
final class EngineThreads {
    /** The engine's periodic tasks, by the thread they need to themselves. */
    enum Task {
        /** Checks the running jobs' deadlines. */
        WATCHDOG("volprov-watchdog"),
        /** Renews the engine's leases. */
        LEASES("volprov-lease"),
        /** Writes kept ends, recovers abandoned jobs, polls the fleet's queue. */
        STORE("volprov-store");

        private final String threadName;

        Task(String threadName) {
            this.threadName = threadName;
        }
    }

    /** How long stopping a task waits for a run of it in progress (a store call) to return. */
    private static final long STOP_WAIT_SECONDS = 10;

    private final ExecutorService ownedJobs;
    private final Executor jobs;
    private final ExecutorService downloads;
    private final ThreadPoolExecutor decoding;
    private final ExecutorService flushing;
    private final ScheduledExecutorService given;
    private final Map<Task, ScheduledExecutorService> owned = new EnumMap<>(Task.class);
    private final Map<Task, List<Periodic>> tasks = new EnumMap<>(Task.class);

    EngineThreads(EngineSettings settings) {
        this.ownedJobs = settings.executor() == null
                ? Executors.newFixedThreadPool(settings.maxConcurrentJobs(), DaemonThreads.named("volprov-job")) : null;
        this.jobs = settings.executor() == null ? ownedJobs : settings.executor();
        // Grows with the parts in flight and shrinks when the downloads end.
        this.downloads = new ThreadPoolExecutor(0, Integer.MAX_VALUE, 30, TimeUnit.SECONDS, new SynchronousQueue<>(),
                DaemonThreads.named("volprov-download"));
        // Inflates compressed clusters for every job's decoder: as many threads as the Qcow2Converter's
        // parallelism (by default the cores), gone when idle.
        int decoders = settings.converter() instanceof Qcow2Converter q ? q.parallelism()
                : Runtime.getRuntime().availableProcessors();
        this.decoding = new ThreadPoolExecutor(decoders, decoders, 30, TimeUnit.SECONDS, new LinkedBlockingQueue<>(),
                DaemonThreads.named("volprov-decode"));
        decoding.allowCoreThreadTimeOut(true);
        // One background flush per volume being written at most; threads gone when idle.
        this.flushing = new ThreadPoolExecutor(0, Integer.MAX_VALUE, 30, TimeUnit.SECONDS, new SynchronousQueue<>(),
                DaemonThreads.named("volprov-flush"));
        this.given = settings.scheduler();
    }

    Executor jobs() {
        return jobs;
    }

    ExecutorService downloads() {
        return downloads;
    }

    ThreadPoolExecutor decoding() {
        return decoding;
    }

    ExecutorService flushing() {
        return flushing;
    }

    /** Runs {@code task} every {@code periodMillis} after the last run ended, the first after {@code initialMillis}. */
    synchronized void every(Task kind, Runnable task, long initialMillis, long periodMillis) {
        ScheduledExecutorService on = given != null ? given
                : owned.computeIfAbsent(kind, k -> Executors.newSingleThreadScheduledExecutor(
                        DaemonThreads.named(k.threadName)));
        Periodic p = new Periodic(task);
        p.future = on.scheduleWithFixedDelay(p::run, initialMillis, periodMillis, TimeUnit.MILLISECONDS);
        tasks.computeIfAbsent(kind, k -> new ArrayList<>()).add(p);
    }

    /**
     * Stops the tasks of {@code kind}. With {@code awaitRunning}, a run in progress is waited for
     * (up to 10 s); otherwise it is interrupted at once.
     */
    void stop(Task kind, boolean awaitRunning) {
        List<Periodic> ps;
        ScheduledExecutorService on;
        synchronized (this) {
            ps = tasks.getOrDefault(kind, List.of());
            on = owned.get(kind);
        }
        for (Periodic p : ps) {
            p.stop(awaitRunning);
        }
        if (on != null) {
            on.shutdownNow();
        }
    }

    /** Shuts down the pools the engine owns; the jobs' executor only when the engine made it. */
    void close() {
        for (Task t : Task.values()) {
            stop(t, false);
        }
        if (ownedJobs != null) {
            ownedJobs.shutdownNow();
        }
        downloads.shutdownNow();
        decoding.shutdownNow();
        flushing.shutdown(); // a flush in progress ends by itself; interrupting it would close the volume's channel
    }

    /** One scheduled task; its runs hold a lock, so that stopping it can wait for the one in progress. */
    private static final class Periodic {
        private final Runnable task;
        private final ReentrantLock running = new ReentrantLock();
        private volatile ScheduledFuture<?> future;

        Periodic(Runnable task) {
            this.task = task;
        }

        void run() {
            running.lock();
            try {
                task.run();
            } finally {
                running.unlock();
            }
        }

        /** A run that outlasts the wait is interrupted when its scheduler is the engine's (shut down next). */
        void stop(boolean awaitRunning) {
            future.cancel(!awaitRunning);
            if (!awaitRunning) {
                return;
            }
            try {
                if (running.tryLock(STOP_WAIT_SECONDS, TimeUnit.SECONDS)) {
                    running.unlock();
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
