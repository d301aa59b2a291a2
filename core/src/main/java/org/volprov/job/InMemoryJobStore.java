package org.volprov.job;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.Collection;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;
import org.volprov.ErrorCode;
import org.volprov.Job;
import org.volprov.JobFilter;
import org.volprov.JobState;
import org.volprov.ProvisioningException;
import org.volprov.support.ConfigChecks;

/**
 * A {@link JobStore} in memory: the embedded default. Jobs are lost with the process. It keeps
 * finished jobs for a bounded time and number ({@link Builder#finishedJobRetention},
 * {@link Builder#maxFinishedJobs}), so that a long-lived host application does not grow without
 * bound; jobs that have not ended are always kept. Finished jobs are dropped as jobs are written:
 * an idle store keeps what it holds until its next write.
 *
 * <p>It is also a {@link JobQueue} within one process, which lets an engine's queue mode run
 * without a database (tests, a single host feeding itself), and it keeps holders and leases as
 * {@link JobStore} describes, so several engines of one process can share it.
 *
 * <p>Thread-safe: writes are serialized on the store, reads see the latest write.
 */
public final class InMemoryJobStore implements JobQueue {
    /** The host a store acts for unless {@link Builder#host} says otherwise. */
    public static final String DEFAULT_HOST = "local";
    /** Finished jobs kept at most, unless {@link Builder#maxFinishedJobs} says otherwise. */
    public static final int DEFAULT_MAX_FINISHED_JOBS = 10_000;
    /** How long a finished job is kept, unless {@link Builder#finishedJobRetention} says otherwise. */
    public static final Duration DEFAULT_FINISHED_JOB_RETENTION = Duration.ofHours(24);

    private static final Comparator<Job> OLDEST_FIRST = Comparator.comparing(Job::createdAt).thenComparing(Job::id);
    private static final Comparator<Entry> NEWEST_FIRST = Comparator.<Entry, Job>comparing(e -> e.job, OLDEST_FIRST)
            .reversed();

    private final ConcurrentMap<String, Entry> jobs = new ConcurrentHashMap<>();
    /** Ids of finished jobs in the order they ended; guarded by {@code this}. */
    private final ArrayDeque<String> finished = new ArrayDeque<>();
    private final String host;
    private final Clock clock;
    private final int maxFinished;
    private final Duration retention;

    /** A store for {@link #DEFAULT_HOST} on the system clock, with the default retention. */
    public InMemoryJobStore() {
        this(new Builder());
    }

    private InMemoryJobStore(Builder b) {
        this.host = b.host;
        this.clock = b.clock;
        this.maxFinished = b.maxFinished;
        this.retention = b.retention;
    }

    public static Builder builder() {
        return new Builder();
    }

    /**
     * A job and what the store knows of it.
     *
     * @param owner the host whose job it is
     * @param queued whether it came through {@link #enqueue}
     * @param holder the engine that holds it; null when nobody does
     * @param leaseExpires when the holder's lease ends; null when nobody holds it
     */
    private record Entry(Job job, String owner, boolean queued, String holder, Instant leaseExpires) {
        Entry withJob(Job j) {
            return new Entry(j, owner, queued, holder, j.state().terminal() ? null : leaseExpires);
        }

        Entry heldBy(String engine, Instant until) {
            return new Entry(job, owner, queued, engine, until);
        }

        boolean ended() {
            return job.state().terminal();
        }

        boolean leaseRanOut(Instant now) {
            return leaseExpires == null || !leaseExpires.isAfter(now);
        }
    }

    @Override
    public String host() {
        return host;
    }

    @Override
    public void insert(Job job, String engine, Duration lease) {
        Objects.requireNonNull(job, "job");
        requireEngine(engine);
        requireLease(lease);
        add(new Entry(job, host, false, engine, clock.instant().plus(lease)));
    }

    @Override
    public void enqueue(Job job, String target) {
        Objects.requireNonNull(job, "job");
        if (job.state() != JobState.PENDING) {
            throw ProvisioningException.invalid("job", "only a PENDING job can be queued, not " + job.state());
        }
        add(new Entry(job, requireHost(target), true, null, null));
    }

    private synchronized void add(Entry e) {
        if (jobs.putIfAbsent(e.job.id(), e) != null) {
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "job " + e.job.id() + " exists already");
        }
        if (e.ended()) {
            finished.add(e.job.id());
        }
        prune();
    }

    @Override
    public synchronized boolean update(Job job, String engine) {
        Objects.requireNonNull(job, "job");
        requireEngine(engine);
        Entry old = jobs.get(job.id());
        if (old == null) {
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "job " + job.id() + " does not exist");
        }
        if (!engine.equals(old.holder)) {
            return false;
        }
        if (old.ended()) {
            return job.state() == old.job.state() && Objects.equals(job.finishedAt(), old.job.finishedAt());
        }
        jobs.put(job.id(), old.withJob(job));
        if (job.state().terminal()) {
            finished.add(job.id());
            prune();
        }
        return true;
    }

    /** Drops the oldest finished jobs beyond the count, and those that ended before the retention. */
    private void prune() {
        Instant cutoff = clock.instant().minus(retention);
        while (!finished.isEmpty()) {
            Entry oldest = jobs.get(finished.peek());
            boolean tooOld = oldest != null && oldest.job.finishedAt() != null && oldest.job.finishedAt().isBefore(cutoff);
            if (finished.size() <= maxFinished && !tooOld && oldest != null) {
                return;
            }
            jobs.remove(finished.poll());
        }
    }

    @Override
    public Optional<Job> find(String id) {
        return Optional.ofNullable(jobs.get(Objects.requireNonNull(id, "id"))).map(Entry::job);
    }

    @Override
    public List<Job> list(JobFilter filter) {
        return jobs.values().stream().filter(e -> filter.matches(e.job)).sorted(NEWEST_FIRST).limit(filter.limit())
                .map(Entry::job).toList();
    }

    @Override
    public synchronized Set<String> renew(Collection<String> jobIds, String engine, Duration lease) {
        requireEngine(engine);
        requireLease(lease);
        Instant until = clock.instant().plus(lease);
        Set<String> held = new HashSet<>();
        for (String id : jobIds) {
            Entry e = jobs.get(id);
            if (e != null && !e.ended() && engine.equals(e.holder)) {
                jobs.put(id, e.heldBy(engine, until));
                held.add(id);
            }
        }
        return held;
    }

    @Override
    public List<Job> abandoned(int max) {
        Instant now = clock.instant();
        return jobs.values().stream()
                .filter(e -> e.owner.equals(host) && !e.ended() && (!e.queued || e.job.state() == JobState.RUNNING)
                        && e.leaseRanOut(now))
                .map(Entry::job).sorted(OLDEST_FIRST).limit(max).toList();
    }

    @Override
    public synchronized Optional<Job> takeOver(String jobId, String engine, Duration lease) {
        requireEngine(engine);
        requireLease(lease);
        Instant now = clock.instant();
        Entry e = jobs.get(Objects.requireNonNull(jobId, "jobId"));
        if (e == null || !e.owner.equals(host) || e.ended() || !e.leaseRanOut(now)) {
            return Optional.empty();
        }
        jobs.put(jobId, e.heldBy(engine, now.plus(lease)));
        return Optional.of(e.job);
    }

    @Override
    public synchronized Optional<Job> claim(String target, String engine, Duration lease) {
        requireHost(target);
        requireEngine(engine);
        requireLease(lease);
        Instant now = clock.instant();
        Optional<Entry> next = jobs.values().stream()
                .filter(e -> e.queued && e.owner.equals(target) && e.job.state() == JobState.PENDING && e.leaseRanOut(now))
                .min(Comparator.comparing(e -> e.job, OLDEST_FIRST));
        next.ifPresent(e -> jobs.put(e.job.id(), e.heldBy(engine, now.plus(lease))));
        return next.map(Entry::job);
    }

    @Override
    public synchronized void release(String jobId, String engine) {
        Entry e = jobs.get(Objects.requireNonNull(jobId, "jobId"));
        if (e != null && e.queued && e.job.state() == JobState.PENDING && engine.equals(e.holder)) {
            jobs.put(jobId, e.heldBy(null, null));
        }
    }

    private static String requireHost(String host) {
        return ConfigChecks.nonBlank("host", host);
    }

    private static void requireEngine(String engine) {
        ConfigChecks.nonBlank("engine", engine);
    }

    private static void requireLease(Duration lease) {
        ConfigChecks.positiveMillis("lease", lease);
    }

    /** Builds an {@link InMemoryJobStore}. Each setter checks its argument and names the option when it refuses. */
    public static final class Builder {
        private String host = DEFAULT_HOST;
        private Clock clock = Clock.systemUTC();
        private int maxFinished = DEFAULT_MAX_FINISHED_JOBS;
        private Duration retention = DEFAULT_FINISHED_JOB_RETENTION;

        private Builder() {
        }

        /** The host the store acts for; default {@link InMemoryJobStore#DEFAULT_HOST}. */
        public Builder host(String host) {
            this.host = requireHost(host);
            return this;
        }

        /** The clock leases and the retention are read against; default UTC system clock. */
        public Builder clock(Clock clock) {
            this.clock = Objects.requireNonNull(clock, "clock");
            return this;
        }

        /** Finished jobs kept at most; the oldest are dropped first. Default 10 000. */
        public Builder maxFinishedJobs(int n) {
            if (n < 0) {
                throw new IllegalArgumentException("maxFinishedJobs must not be negative, not " + n);
            }
            this.maxFinished = n;
            return this;
        }

        /** How long a finished job is kept after it ended; default 24 hours. */
        public Builder finishedJobRetention(Duration retention) {
            if (retention == null || retention.isNegative()) {
                throw new IllegalArgumentException("finishedJobRetention must not be negative");
            }
            this.retention = retention;
            return this;
        }

        public InMemoryJobStore build() {
            return new InMemoryJobStore(this);
        }
    }
}
