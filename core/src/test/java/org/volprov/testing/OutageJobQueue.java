package org.volprov.testing;

import java.time.Duration;
import java.util.Collection;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;
import org.volprov.ErrorCode;
import org.volprov.Job;
import org.volprov.ProvisioningException;
import org.volprov.job.JobQueue;

/**
 * A real {@link JobQueue} whose writes and lease renewals fail while {@link #down}, as a database
 * that went away (or that one engine cannot reach) does; reads still answer.
 */
public class OutageJobQueue extends ForwardingJobQueue {
    /** How many calls failed because the store was down. */
    public final AtomicInteger failed = new AtomicInteger();
    public volatile boolean down;

    public OutageJobQueue(JobQueue delegate) {
        super(delegate);
    }

    /** Fails the calling operation while the store is down. */
    protected void check() {
        if (down) {
            failed.incrementAndGet();
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "the database is unreachable");
        }
    }

    @Override
    public boolean update(Job job, String engine) {
        check();
        return super.update(job, engine);
    }

    @Override
    public Set<String> renew(Collection<String> jobIds, String engine, Duration lease) {
        check();
        return super.renew(jobIds, engine, lease);
    }
}
