package org.volprov.testing;

import java.time.Duration;
import java.util.Collection;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import org.volprov.Job;
import org.volprov.JobFilter;
import org.volprov.job.JobQueue;

/** A real {@link JobQueue} passed through, for tests to override one call and inject a fault or count calls. */
public class ForwardingJobQueue implements JobQueue {
    protected final JobQueue delegate;

    public ForwardingJobQueue(JobQueue delegate) {
        this.delegate = delegate;
    }

    @Override
    public String host() {
        return delegate.host();
    }

    @Override
    public void insert(Job job, String engine, Duration lease) {
        delegate.insert(job, engine, lease);
    }

    @Override
    public boolean update(Job job, String engine) {
        return delegate.update(job, engine);
    }

    @Override
    public Optional<Job> find(String id) {
        return delegate.find(id);
    }

    @Override
    public List<Job> list(JobFilter filter) {
        return delegate.list(filter);
    }

    @Override
    public Set<String> renew(Collection<String> jobIds, String engine, Duration lease) {
        return delegate.renew(jobIds, engine, lease);
    }

    @Override
    public List<Job> abandoned(int max) {
        return delegate.abandoned(max);
    }

    @Override
    public Optional<Job> takeOver(String jobId, String engine, Duration lease) {
        return delegate.takeOver(jobId, engine, lease);
    }

    @Override
    public void enqueue(Job job, String host) {
        delegate.enqueue(job, host);
    }

    @Override
    public Optional<Job> claim(String host, String engine, Duration lease) {
        return delegate.claim(host, engine, lease);
    }

    @Override
    public void release(String jobId, String engine) {
        delegate.release(jobId, engine);
    }

    @Override
    public void close() {
        delegate.close();
    }
}
