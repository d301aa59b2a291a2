package org.volprov.embedded;

import java.util.Comparator;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;
import org.volprov.ErrorCode;
import org.volprov.Job;
import org.volprov.JobFilter;
import org.volprov.JobState;
import org.volprov.JobStore;
import org.volprov.ProvisioningException;

/** A {@link JobStore} in memory: the embedded default. Jobs are lost with the process. Thread-safe. */
public final class InMemoryJobStore implements JobStore {
    private static final Comparator<Job> NEWEST_FIRST =
            Comparator.comparing(Job::createdAt).reversed().thenComparing(Job::id, Comparator.reverseOrder());

    private final ConcurrentMap<String, Job> jobs = new ConcurrentHashMap<>();

    @Override
    public void insert(Job job) {
        Objects.requireNonNull(job, "job");
        if (jobs.putIfAbsent(job.id(), job) != null) {
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "job " + job.id() + " exists already");
        }
    }

    @Override
    public void update(Job job) {
        Objects.requireNonNull(job, "job");
        jobs.compute(job.id(), (id, old) -> {
            if (old == null) {
                throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "job " + id + " does not exist");
            }
            if (old.state().terminal() && (job.state() != old.state() || !Objects.equals(old.finishedAt(), job.finishedAt()))) {
                throw new ProvisioningException(ErrorCode.BACKEND_FAILURE,
                        "job " + id + " is " + old.state() + " and cannot become " + job.state());
            }
            return job;
        });
    }

    @Override
    public Optional<Job> find(String id) {
        return Optional.ofNullable(jobs.get(Objects.requireNonNull(id, "id")));
    }

    @Override
    public List<Job> list(JobFilter filter) {
        return jobs.values().stream().filter(filter::matches).sorted(NEWEST_FIRST).limit(filter.limit()).toList();
    }

    @Override
    public List<Job> unfinished() {
        return jobs.values().stream()
                .filter(j -> j.state() == JobState.PENDING || j.state() == JobState.RUNNING)
                .sorted(NEWEST_FIRST.reversed())
                .toList();
    }
}
