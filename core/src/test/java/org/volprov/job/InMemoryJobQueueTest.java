package org.volprov.job;

import java.time.Clock;
import org.volprov.contract.JobQueueContract;

class InMemoryJobQueueTest extends JobQueueContract {
    @Override
    protected JobQueue createQueue(String host, Clock clock) {
        return InMemoryJobStore.builder().host(host).clock(clock).build();
    }
}
