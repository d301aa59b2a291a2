package org.volprov.contract;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.volprov.ErrorCode;
import org.volprov.Job;
import org.volprov.JobState;
import org.volprov.Progress;
import org.volprov.ProvisioningException;
import org.volprov.Stage;
import org.volprov.job.JobQueue;
import org.volprov.testing.SettableClock;

/**
 * The behaviour every {@link JobQueue} shares. An implementation's test extends this class and
 * returns from {@link #createQueue} a store on empty storage, acting for the given host and reading
 * lease times from the given clock. Time moves by {@link #clock}, never by sleeping.
 */
public abstract class JobQueueContract {
    protected static final String HOST = "hv-1";
    protected static final String OTHER_HOST = "hv-2";
    private static final String ENGINE = "hv-1-engine-a";
    private static final String OTHER_ENGINE = "hv-1-engine-b";
    private static final Duration LEASE = Duration.ofSeconds(30);
    private static final Instant T0 = Instant.parse("2026-01-02T03:04:05.123Z");

    protected final SettableClock clock = new SettableClock(T0.plusSeconds(3600));
    private JobQueue queue;

    /** A store on empty storage acting for {@code host}; called once per test method. */
    protected abstract JobQueue createQueue(String host, Clock clock);

    protected final JobQueue queue() {
        if (queue == null) {
            queue = createQueue(HOST, clock);
        }
        return queue;
    }

    @AfterEach
    void closeQueue() {
        if (queue != null) {
            queue.close();
        }
    }

    private static Job job(String volume, int secondsAfterT0) {
        return JobStoreContract.newJob(volume, T0.plusSeconds(secondsAfterT0));
    }

    private Optional<Job> claim() {
        return queue().claim(HOST, ENGINE, LEASE);
    }

    @Test
    public void host_isTheOneTheStoreWasMadeFor() {
        assertThat(queue().host()).isEqualTo(HOST);
    }

    @Test
    public void enqueue_thenClaim_returnsTheJob_andHoldsItForTheLease() {
        Job job = job("vm-1", 0);
        queue().enqueue(job, HOST);
        assertThat(queue().find(job.id())).contains(job);

        assertThat(claim()).contains(job);
        assertThat(claim()).isEmpty();
        assertThat(queue().claim(HOST, OTHER_ENGINE, LEASE)).isEmpty();
        clock.advance(LEASE.minusSeconds(1));
        assertThat(claim()).isEmpty();
        assertThat(queue().update(job.running(clock.instant()), ENGINE)).as("the claimer holds it").isTrue();
    }

    @Test
    public void claim_takesTheOldestJobFirst() {
        Job newer = job("vm-new", 10);
        Job older = job("vm-old", 0);
        queue().enqueue(newer, HOST);
        queue().enqueue(older, HOST);
        assertThat(claim().map(Job::id)).contains(older.id());
        assertThat(claim().map(Job::id)).contains(newer.id());
        assertThat(claim()).isEmpty();
    }

    @Test
    public void claim_takesOnlyJobsQueuedForTheNamedHost() {
        Job mine = job("vm-mine", 0);
        Job theirs = job("vm-theirs", 1);
        queue().enqueue(mine, HOST);
        queue().enqueue(theirs, OTHER_HOST);
        assertThat(claim().map(Job::id)).contains(mine.id());
        assertThat(claim()).isEmpty();
        assertThat(queue().claim(OTHER_HOST, "hv-2-engine", LEASE).map(Job::id)).contains(theirs.id());
    }

    @Test
    public void claim_neverTakesASubmittedJob() {
        queue().insert(job("vm-direct", 0), ENGINE, LEASE);
        clock.advance(LEASE.multipliedBy(2));
        assertThat(claim()).isEmpty();
    }

    @Test
    public void claim_whenTheLeaseRanOutBeforeTheJobStarted_givesItAgain_toAnotherEngine() {
        Job job = job("vm-late", 0);
        queue().enqueue(job, HOST);
        claim().orElseThrow();
        clock.advance(LEASE.plusSeconds(1));
        assertThat(queue().claim(HOST, OTHER_ENGINE, LEASE)).contains(job);
        assertThat(queue().update(job.running(clock.instant()), ENGINE)).as("the first claimer is fenced").isFalse();
        assertThat(queue().update(job.running(clock.instant()), OTHER_ENGINE)).isTrue();
    }

    @Test
    public void claim_neverTakesAStartedJob_whichIsAbandonedOnceItsLeaseRanOut() {
        Job job = job("vm-dead", 0);
        queue().enqueue(job, HOST);
        Job claimed = claim().orElseThrow();
        Instant t = clock.instant();
        Job running = claimed.running(t).withProgress(new Progress(Stage.WRITING, 10, 100), t);
        queue().update(running, ENGINE);
        assertThat(queue().abandoned(10)).isEmpty();

        clock.advance(LEASE.plusSeconds(1));
        assertThat(queue().claim(HOST, OTHER_ENGINE, LEASE)).isEmpty();
        assertThat(queue().abandoned(10)).containsExactly(running);
        assertThat(queue().takeOver(job.id(), OTHER_ENGINE, LEASE)).contains(running);
    }

    @Test
    public void claim_neverTakesAJobThatEnded() {
        Job job = job("vm-done", 0);
        queue().enqueue(job, HOST);
        Job claimed = claim().orElseThrow();
        Instant t = clock.instant();
        queue().update(claimed.running(t).finished(JobState.COMPLETED, null, null, t), ENGINE);
        clock.advance(LEASE.multipliedBy(2));
        assertThat(claim()).isEmpty();
        assertThat(queue().renew(List.of(job.id()), ENGINE, LEASE)).isEmpty();
        assertThat(queue().abandoned(10)).isEmpty();
    }

    @Test
    public void renew_keepsAClaimedJobHeldPastItsFirstLease() {
        Job job = job("vm-renew", 0);
        queue().enqueue(job, HOST);
        claim().orElseThrow();
        clock.advance(LEASE.minusSeconds(5));
        assertThat(queue().renew(List.of(job.id()), ENGINE, LEASE)).containsExactly(job.id());
        clock.advance(Duration.ofSeconds(20));
        assertThat(queue().claim(HOST, OTHER_ENGINE, LEASE)).isEmpty();
        clock.advance(Duration.ofSeconds(11));
        assertThat(queue().claim(HOST, OTHER_ENGINE, LEASE).map(Job::id)).contains(job.id());
    }

    @Test
    public void renew_ofAQueuedJob_byAnEngineThatDoesNotHoldIt_returnsNothing() {
        Job unclaimed = job("vm-u", 0);
        queue().enqueue(unclaimed, HOST);
        assertThat(queue().renew(List.of(unclaimed.id()), ENGINE, LEASE)).isEmpty();
        Job claimed = claim().orElseThrow();
        assertThat(queue().renew(List.of(claimed.id()), OTHER_ENGINE, LEASE)).isEmpty();
    }

    @Test
    public void release_makesTheJobClaimableAtOnce_onlyByItsHolder() {
        Job job = job("vm-rel", 0);
        queue().enqueue(job, HOST);
        claim().orElseThrow();
        queue().release(job.id(), OTHER_ENGINE);
        assertThat(queue().claim(HOST, OTHER_ENGINE, LEASE)).isEmpty();
        queue().release(job.id(), ENGINE);
        assertThat(queue().renew(List.of(job.id()), ENGINE, LEASE)).isEmpty();
        assertThat(queue().claim(HOST, OTHER_ENGINE, LEASE).map(Job::id)).contains(job.id());
    }

    @Test
    public void update_ofAQueuedJob_thatTheEngineDidNotClaim_isRefused() {
        Job job = job("vm-theirs", 0);
        queue().enqueue(job, OTHER_HOST);
        assertThat(queue().update(job.running(clock.instant()), ENGINE)).isFalse();
        Job claimed = queue().claim(OTHER_HOST, "hv-2-engine", LEASE).orElseThrow();
        assertThat(queue().update(claimed.running(clock.instant()), ENGINE)).isFalse();
        assertThat(queue().find(job.id())).contains(job);
    }

    @Test
    public void abandonedAndTakeOver_leaveOutTheJobsOfOtherHosts() {
        Job theirs = job("vm-theirs", 0);
        queue().enqueue(theirs, OTHER_HOST);
        Job claimed = queue().claim(OTHER_HOST, "hv-2-engine", LEASE).orElseThrow();
        queue().update(claimed.running(clock.instant()), "hv-2-engine");
        clock.advance(LEASE.plusSeconds(1));
        assertThat(queue().abandoned(10)).isEmpty();
        assertThat(queue().takeOver(theirs.id(), ENGINE, LEASE)).isEmpty();
    }

    @Test
    public void enqueue_whenIdTaken_failsWithBackendFailure() {
        Job job = job("vm-twice", 0);
        queue().enqueue(job, HOST);
        assertThatThrownBy(() -> queue().enqueue(job, OTHER_HOST))
                .isInstanceOf(ProvisioningException.class)
                .satisfies(e -> assertThat(((ProvisioningException) e).code()).isEqualTo(ErrorCode.BACKEND_FAILURE));
    }

    @Test
    public void enqueue_ofAJobThatIsNotPending_isRefused() {
        Job running = job("vm-r", 0).running(T0);
        assertThatThrownBy(() -> queue().enqueue(running, HOST))
                .isInstanceOf(ProvisioningException.class)
                .satisfies(e -> assertThat(((ProvisioningException) e).code()).isEqualTo(ErrorCode.INVALID_REQUEST));
        assertThat(queue().find(running.id())).isEmpty();
    }

    /** Many claimers on one queue: each job goes to exactly one of them. */
    @Test
    public void claim_byEightThreadsFrom200Jobs_givesEachJobExactlyOnce() throws Exception {
        int jobs = 200;
        int threads = 8;
        List<String> ids = new ArrayList<>();
        for (int i = 0; i < jobs; i++) {
            Job j = job("vm-" + i, i);
            queue().enqueue(j, HOST);
            ids.add(j.id());
        }
        Set<String> claimed = ConcurrentHashMap.newKeySet();
        AtomicInteger duplicates = new AtomicInteger();
        CountDownLatch start = new CountDownLatch(1);
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        try {
            List<Future<Integer>> results = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                String engine = "hv-1-engine-" + t;
                results.add(pool.submit(() -> {
                    start.await();
                    int mine = 0;
                    // Bounded: never more attempts than there are jobs, plus the empty answer.
                    for (int i = 0; i <= jobs; i++) {
                        Optional<Job> j = queue().claim(HOST, engine, LEASE);
                        if (j.isEmpty()) {
                            break;
                        }
                        mine++;
                        if (!claimed.add(j.get().id())) {
                            duplicates.incrementAndGet();
                        }
                    }
                    return mine;
                }));
            }
            start.countDown();
            int total = 0;
            for (Future<Integer> r : results) {
                total += r.get(120, TimeUnit.SECONDS);
            }
            assertThat(duplicates.get()).isZero();
            assertThat(total).isEqualTo(jobs);
            assertThat(claimed).containsExactlyInAnyOrderElementsOf(ids);
            assertThat(claim()).isEmpty();
        } finally {
            pool.shutdownNow();
        }
    }
}
