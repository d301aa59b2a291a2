package org.volprov.job;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import org.junit.jupiter.api.Test;
import org.volprov.Job;
import org.volprov.JobFilter;
import org.volprov.JobState;
import org.volprov.contract.JobStoreContract;
import org.volprov.testing.SettableClock;

class InMemoryJobStoreTest extends JobStoreContract {
    @Override
    protected JobStore createStore(String host, Clock clock) {
        return InMemoryJobStore.builder().host(host).clock(clock).build();
    }

    private static Job finish(InMemoryJobStore s, String volume, Instant at) {
        Job j = newJob(volume, at);
        s.insert(j, ENGINE, LEASE);
        Job done = j.running(at).finished(JobState.COMPLETED, null, null, at);
        s.update(done, ENGINE);
        return done;
    }

    @Test
    void defaultStore_keepsAtMostTheDefaultNumberOfFinishedJobs_droppingTheOldestFirst() {
        InMemoryJobStore s = new InMemoryJobStore();
        Instant t = Instant.now();
        Job first = finish(s, "vm-first", t);
        for (int i = 0; i < InMemoryJobStore.DEFAULT_MAX_FINISHED_JOBS; i++) {
            finish(s, "vm-" + i, t);
        }
        assertThat(s.list(JobFilter.all().withLimit(20_000))).hasSize(InMemoryJobStore.DEFAULT_MAX_FINISHED_JOBS);
        assertThat(s.find(first.id())).isEmpty();
    }

    @Test
    void finishedJobs_olderThanTheRetention_areDropped_butUnfinishedOnesAreKept() {
        SettableClock clock = new SettableClock();
        InMemoryJobStore s = InMemoryJobStore.builder().clock(clock).finishedJobRetention(Duration.ofHours(1))
                .maxFinishedJobs(100).build();
        Job old = finish(s, "vm-old", clock.instant());
        Job running = newJob("vm-running", clock.instant());
        s.insert(running, ENGINE, LEASE);
        clock.advance(Duration.ofMinutes(61));
        Job recent = finish(s, "vm-recent", clock.instant());

        assertThat(s.find(old.id())).isEmpty();
        assertThat(s.find(running.id())).isPresent();
        assertThat(s.find(recent.id())).contains(recent);
    }

    @Test
    void maxFinishedJobs_ofZero_keepsNoFinishedJob() {
        InMemoryJobStore s = InMemoryJobStore.builder().maxFinishedJobs(0).build();
        Job done = finish(s, "vm-gone", Instant.now());
        assertThat(s.find(done.id())).isEmpty();
    }
}
