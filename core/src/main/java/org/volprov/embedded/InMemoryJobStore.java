package org.volprov.embedded;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Comparator;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;
import org.volprov.ErrorCode;
import org.volprov.Job;
import org.volprov.JobFilter;
import org.volprov.JobQueue;
import org.volprov.JobState;
import org.volprov.JobStore;
import org.volprov.ProvisioningException;

/**
 * A {@link JobStore} in memory: the embedded default. Jobs are lost with the process. Thread-safe.
 *
 * <p>It is also a {@link JobQueue} within one process, which lets an engine's queue mode run
 * without a database (tests, a single host feeding itself).
 */
public final class InMemoryJobStore implements JobQueue {
    /** The host a store made with {@link #InMemoryJobStore()} acts for. */
    public static final String DEFAULT_HOST = "local";

    private static final Comparator<Entry> NEWEST_FIRST = Comparator.<Entry, Instant>comparing(e -> e.job.createdAt())
            .reversed().thenComparing(e -> e.job.id(), Comparator.reverseOrder());

    private final ConcurrentMap<String, Entry> jobs = new ConcurrentHashMap<>();
    private final String host;
    private final Clock clock;

    public InMemoryJobStore() {
        this(DEFAULT_HOST, Clock.systemUTC());
    }

    /**
     * @param host the host this store acts for
     * @param clock the clock leases are read against
     */
    public InMemoryJobStore(String host, Clock clock) {
        this.host = requireHost(host);
        this.clock = Objects.requireNonNull(clock, "clock");
    }

    /**
     * A job and what the queue knows of it.
     *
     * @param owner the host that holds (or is to run) the job
     * @param queued whether it came through {@link #enqueue}
     * @param leaseExpires when the claimer's hold ends; null when nobody holds it
     */
    private record Entry(Job job, String owner, boolean queued, Instant leaseExpires) {
        Entry withJob(Job j) {
            return new Entry(j, owner, queued, j.state().terminal() ? null : leaseExpires);
        }

        Entry withLease(Instant until) {
            return new Entry(job, owner, queued, until);
        }
    }

    @Override
    public String host() {
        return host;
    }

    @Override
    public void insert(Job job) {
        Objects.requireNonNull(job, "job");
        add(new Entry(job, host, false, null));
    }

    @Override
    public void enqueue(Job job, String target) {
        Objects.requireNonNull(job, "job");
        if (job.state() != JobState.PENDING) {
            throw ProvisioningException.invalid("job", "only a PENDING job can be queued, not " + job.state());
        }
        add(new Entry(job, requireHost(target), true, null));
    }

    private void add(Entry e) {
        if (jobs.putIfAbsent(e.job.id(), e) != null) {
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "job " + e.job.id() + " exists already");
        }
    }

    @Override
    public void update(Job job) {
        Objects.requireNonNull(job, "job");
        jobs.compute(job.id(), (id, old) -> {
            if (old == null) {
                throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "job " + id + " does not exist");
            }
            Job was = old.job;
            if (was.state().terminal() && (job.state() != was.state() || !Objects.equals(was.finishedAt(), job.finishedAt()))) {
                throw new ProvisioningException(ErrorCode.BACKEND_FAILURE,
                        "job " + id + " is " + was.state() + " and cannot become " + job.state());
            }
            if (!old.owner.equals(host)) {
                throw new ProvisioningException(ErrorCode.BACKEND_FAILURE,
                        "job " + id + " is held by host " + old.owner + ", not by " + host);
            }
            return old.withJob(job);
        });
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
    public List<Job> unfinished() {
        return jobs.values().stream()
                .filter(e -> !e.queued && e.owner.equals(host) && !e.job.state().terminal())
                .sorted(NEWEST_FIRST.reversed())
                .map(Entry::job)
                .toList();
    }

    @Override
    public synchronized Optional<Job> claim(String target, Duration lease) {
        requireHost(target);
        Instant now = clock.instant();
        // Synchronized so that two claimers cannot pick the same oldest job; the check is repeated
        // inside compute because update() does not take this lock.
        List<Entry> candidates = jobs.values().stream().filter(e -> claimable(e, target, now))
                .sorted(NEWEST_FIRST.reversed()).toList();
        for (Entry candidate : candidates) {
            Job[] claimed = new Job[1];
            jobs.computeIfPresent(candidate.job.id(), (id, cur) -> {
                if (!claimable(cur, target, now)) {
                    return cur;
                }
                claimed[0] = cur.job;
                return cur.withLease(now.plus(lease));
            });
            if (claimed[0] != null) {
                return Optional.of(claimed[0]);
            }
        }
        return Optional.empty();
    }

    private static boolean claimable(Entry e, String target, Instant now) {
        return e.queued && e.owner.equals(target) && !e.job.state().terminal()
                && (e.leaseExpires == null || !e.leaseExpires.isAfter(now));
    }

    @Override
    public boolean renew(String jobId, String target, Duration lease) {
        boolean[] renewed = new boolean[1];
        jobs.computeIfPresent(Objects.requireNonNull(jobId, "jobId"), (id, e) -> {
            if (!e.queued || !e.owner.equals(target) || e.leaseExpires == null || e.job.state().terminal()) {
                return e;
            }
            renewed[0] = true;
            return e.withLease(clock.instant().plus(lease));
        });
        return renewed[0];
    }

    @Override
    public void release(String jobId, String target) {
        jobs.computeIfPresent(Objects.requireNonNull(jobId, "jobId"),
                (id, e) -> e.queued && e.owner.equals(target) ? e.withLease(null) : e);
    }

    private static String requireHost(String host) {
        if (host == null || host.isBlank()) {
            throw ProvisioningException.invalid("host", "must not be blank");
        }
        return host;
    }
}
