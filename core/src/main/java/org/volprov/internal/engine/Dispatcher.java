package org.volprov.internal.engine;

import java.time.Instant;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.volprov.ErrorCode;
import org.volprov.Job;
import org.volprov.JobEvent;
import org.volprov.JobState;
import org.volprov.Progress;
import org.volprov.ProvisionRequest;
import org.volprov.Provisioner;
import org.volprov.ProvisioningException;
import org.volprov.Stage;
import org.volprov.volume.VolumeGuard;

/**
 * Admission and dispatch: takes jobs on (submitted, claimed from the queue, recovered) within the
 * engine's bounds (at most {@code maxConcurrentJobs} running, {@code queueCapacity} more waiting),
 * runs them on the executor in the order they came, and knows which jobs the engine runs.
 * Thread-safe.
 */
final class Dispatcher {
    private static final Logger LOG = LoggerFactory.getLogger(Dispatcher.class);

    private final JobParts parts;
    private final EngineSettings settings;
    private final Executor executor;
    private final LeaseKeeper leases;
    private final Object lock = new Object();
    // Guarded by lock.
    private final ArrayDeque<JobRun> queue = new ArrayDeque<>();
    private final Map<String, JobRun> active = new LinkedHashMap<>();
    private final Set<JobRun> started = new HashSet<>();
    private int reserved;
    private boolean closed;

    Dispatcher(JobParts parts, Executor executor, LeaseKeeper leases) {
        this.parts = parts;
        this.settings = parts.settings();
        this.executor = executor;
        this.leases = leases;
    }

    /** Takes a request on as a new job: see {@link Provisioner#submit}. */
    String submit(ProvisionRequest request) {
        settings.validate(request);
        Job job = Job.pending(UUID.randomUUID().toString(), request, settings.clock().instant());
        VolumeGuard.Lock volumeLock = VolumeLocks.tryLock(settings.volumeGuard(), request).orElseThrow(
                () -> new ProvisioningException(ErrorCode.VOLUME_BUSY,
                        "volume " + request.volumeName() + " has a job running or queued already"));
        try {
            reserve();
        } catch (RuntimeException e) {
            volumeLock.close();
            throw e;
        }
        JobLease lease;
        try {
            Instant sentAt = settings.clock().instant();
            settings.jobStore().insert(job, settings.engineId(), settings.jobLease());
            lease = leases.hold(job.id(), sentAt);
        } catch (RuntimeException e) {
            unreserve();
            volumeLock.close();
            throw e;
        }
        parts.events().publish(JobEvent.Kind.STATE, job);
        enqueue(new JobRun(parts, job, volumeLock, lease, JobRun.Origin.SUBMITTED, this::finished));
        return job.id();
    }

    /**
     * Runs a job this engine took from the store (claimed, or recovered to resume), holding
     * {@code guard} and {@code lease}. False when it could not be taken on (the engine is full or
     * closing, or the lease was lost meanwhile); the caller then releases {@code guard}.
     */
    boolean runTaken(Job job, VolumeGuard.Lock guard, JobLease lease, JobRun.Origin origin) {
        try {
            reserve();
        } catch (ProvisioningException | IllegalStateException e) {
            giveBack(job.id(), origin);
            return false;
        }
        Job queued = job.withProgress(Progress.of(Stage.QUEUED), settings.clock().instant());
        boolean held;
        try {
            held = settings.jobStore().update(queued, settings.engineId());
        } catch (RuntimeException e) {
            unreserve();
            giveBack(job.id(), origin);
            throw e;
        }
        if (!held) {
            unreserve();
            leases.drop(job.id());
            return false;
        }
        enqueue(new JobRun(parts, queued, guard, lease, origin, this::finished));
        return true;
    }

    /** Lets go of a taken job that will not run here: a claim goes back to the queue, a recovered job waits for its lease to run out. */
    void giveBack(String id, JobRun.Origin origin) {
        leases.drop(id);
        if (origin == JobRun.Origin.CLAIMED) {
            try {
                settings.queue().release(id, settings.engineId());
            } catch (RuntimeException e) {
                LOG.warn("cannot give job {} back to the queue; it is claimable again when its lease runs out: {}", id,
                        e.getMessage());
            }
        }
    }

    private void reserve() {
        synchronized (lock) {
            if (closed) {
                throw new IllegalStateException("the provisioner is closed");
            }
            int running = started.size();
            if (running + queue.size() + reserved >= settings.maxConcurrentJobs() + settings.queueCapacity()) {
                throw new ProvisioningException(ErrorCode.QUEUE_FULL, "the provisioner has " + running
                        + " jobs running and " + queue.size() + " waiting (capacity "
                        + settings.queueCapacity() + "); submit again later");
            }
            reserved++;
        }
    }

    private void unreserve() {
        synchronized (lock) {
            reserved--;
        }
    }

    private void enqueue(JobRun run) {
        synchronized (lock) {
            reserved--;
            queue.add(run);
            active.put(run.id(), run);
            dispatchLocked();
        }
    }

    /** Called by a run as it ends, before its future completes: its slot goes to the next job. */
    private void finished(JobRun run) {
        synchronized (lock) {
            if (active.remove(run.id()) != null) {
                started.remove(run);
            }
            dispatchLocked();
        }
    }

    private void dispatchLocked() {
        while (started.size() < settings.maxConcurrentJobs() && !queue.isEmpty()) {
            JobRun run = queue.poll();
            started.add(run);
            try {
                executor.execute(run);
            } catch (RejectedExecutionException e) {
                started.remove(run);
                active.remove(run.id());
                run.finishUnstarted(JobState.FAILED, ErrorCode.BACKEND_FAILURE, "the executor refused the job: " + e);
            }
        }
    }

    /** The run of job {@code id}, while it is queued or running here. */
    Optional<JobRun> find(String id) {
        synchronized (lock) {
            return Optional.ofNullable(active.get(id));
        }
    }

    /** Cancels a queued or running job; false when it is neither. See {@link Provisioner#cancel}. */
    boolean cancel(String id) {
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

    int queueDepth() {
        synchronized (lock) {
            return queue.size();
        }
    }

    int runningJobs() {
        synchronized (lock) {
            return started.size();
        }
    }

    /** Slots free for more jobs, running or waiting. */
    int freeSlots() {
        synchronized (lock) {
            return settings.maxConcurrentJobs() + settings.queueCapacity() - started.size() - queue.size() - reserved;
        }
    }

    /** Whether a job taken now would start at once. */
    boolean hasFreeRunSlot() {
        synchronized (lock) {
            return started.size() + queue.size() + reserved < settings.maxConcurrentJobs();
        }
    }

    /** Fires the timeout of every running job whose deadline has passed; the watchdog's task. */
    void checkDeadlines() {
        List<JobRun> runs;
        synchronized (lock) {
            runs = new ArrayList<>(started);
        }
        for (JobRun r : runs) {
            r.cancellation().isCancelled();
        }
    }

    /** Stops taking jobs on; true for the call that closed. */
    boolean close() {
        synchronized (lock) {
            boolean was = closed;
            closed = true;
            return !was;
        }
    }

    boolean isClosed() {
        synchronized (lock) {
            return closed;
        }
    }

    /** The jobs queued or running. */
    List<JobRun> active() {
        synchronized (lock) {
            return new ArrayList<>(active.values());
        }
    }

    /** Takes every waiting job out of the queue, and returns them. */
    List<JobRun> drainQueue() {
        synchronized (lock) {
            List<JobRun> queued = new ArrayList<>(queue);
            queue.clear();
            queued.forEach(r -> active.remove(r.id()));
            return queued;
        }
    }
}
