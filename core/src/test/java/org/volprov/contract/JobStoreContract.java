package org.volprov.contract;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.volprov.ErrorCode;
import org.volprov.Job;
import org.volprov.JobFilter;
import org.volprov.JobState;
import org.volprov.Progress;
import org.volprov.ProvisionRequest;
import org.volprov.ProvisioningException;
import org.volprov.Stage;
import org.volprov.image.ImageFormat;
import org.volprov.job.JobStore;
import org.volprov.testing.SettableClock;

/**
 * The behaviour every {@link JobStore} shares: records, holders fenced by engine, leases that run
 * out, atomic take-over. An implementation's test extends this class and returns from
 * {@link #createStore} a store on empty storage, acting for the given host and reading lease times
 * from the given clock. Time moves by {@link #clock}, never by sleeping.
 */
public abstract class JobStoreContract {
    protected static final String HOST = "hv-1";
    protected static final String ENGINE = "hv-1-engine-a";
    protected static final String OTHER_ENGINE = "hv-1-engine-b";
    protected static final Duration LEASE = Duration.ofSeconds(30);
    /** Timestamps stored with millisecond precision at least. */
    protected static final Instant T0 = Instant.parse("2026-01-02T03:04:05.123Z");

    protected final SettableClock clock = new SettableClock(T0.plusSeconds(3600));
    private JobStore store;

    /** A store on empty storage acting for {@code host}; called once per test method. */
    protected abstract JobStore createStore(String host, Clock clock);

    protected final JobStore store() {
        if (store == null) {
            store = createStore(HOST, clock);
        }
        return store;
    }

    @AfterEach
    void closeStore() {
        if (store != null) {
            store.close();
        }
    }

    protected static Job newJob(String volume, Instant createdAt) {
        ProvisionRequest r = ProvisionRequest.builder()
                .imageUri("s3://images/ubuntu 24.04/disk.qcow2")
                .volumeName(volume)
                .volumeSizeBytes(10L << 30)
                .format(ImageFormat.QCOW2)
                .correlationId("corr-" + volume)
                .label("tenant", "t-1")
                .label("zone", "eu/west-1")
                .build();
        return Job.pending(UUID.randomUUID().toString(), r, createdAt);
    }

    private Job inserted(String volume, int secondsAfterT0) {
        Job job = newJob(volume, T0.plusSeconds(secondsAfterT0));
        store().insert(job, ENGINE, LEASE);
        return job;
    }

    @Test
    public void insert_thenFind_returnsEqualJob() {
        Job job = inserted("vm-1", 0);
        assertThat(store().find(job.id())).contains(job);
    }

    @Test
    public void find_whenUnknown_isEmpty() {
        assertThat(store().find("no-such-job")).isEmpty();
    }

    @Test
    public void insert_whenIdTaken_failsWithBackendFailure() {
        Job job = inserted("vm-1", 0);
        assertThatThrownBy(() -> store().insert(job, OTHER_ENGINE, LEASE))
                .isInstanceOf(ProvisioningException.class)
                .extracting(e -> ((ProvisioningException) e).code()).isEqualTo(ErrorCode.BACKEND_FAILURE);
    }

    @Test
    public void update_byTheHolder_storesEveryField() {
        Job job = inserted("vm-2", 0);
        Instant t1 = T0.plusSeconds(1);
        Job running = job.running(t1)
                .withProgress(new Progress(Stage.DOWNLOADING, 1234, 5678), t1)
                .withImage("a".repeat(64), true, t1)
                .withVolume("/var/lib/libvirt/images/vm-2", true, t1);
        assertThat(store().update(running, ENGINE)).isTrue();
        assertThat(store().find(job.id())).contains(running);

        Job failed = running.finished(JobState.FAILED, ErrorCode.CHECKSUM_MISMATCH, "digest differs", t1.plusSeconds(2));
        assertThat(store().update(failed, ENGINE)).isTrue();
        Job read = store().find(job.id()).orElseThrow();
        assertThat(read).isEqualTo(failed);
        assertThat(read.error()).contains(ErrorCode.CHECKSUM_MISMATCH);
    }

    @Test
    public void update_whenUnknown_failsWithBackendFailure() {
        Job job = newJob("vm-3", T0);
        assertThatThrownBy(() -> store().update(job, ENGINE))
                .isInstanceOf(ProvisioningException.class)
                .extracting(e -> ((ProvisioningException) e).code()).isEqualTo(ErrorCode.BACKEND_FAILURE);
    }

    @Test
    public void update_byAnEngineThatDoesNotHoldTheJob_isRefused_andChangesNothing() {
        Job job = inserted("vm-other", 0);
        assertThat(store().update(job.running(T0.plusSeconds(1)), OTHER_ENGINE)).isFalse();
        assertThat(store().find(job.id())).contains(job);
    }

    @Test
    public void update_whenTerminal_neverMovesBack_butTheSameEndIsAcceptedAgain() {
        Job job = inserted("vm-4", 0);
        Job done = job.running(T0).finished(JobState.COMPLETED, null, null, T0.plusSeconds(5));
        assertThat(store().update(done, ENGINE)).isTrue();
        assertThat(store().update(done, ENGINE)).as("a retried write of the same end").isTrue();
        assertThat(store().update(done.running(T0.plusSeconds(6)), ENGINE)).isFalse();
        assertThat(store().update(done.finished(JobState.FAILED, ErrorCode.INTERRUPTED, "x", T0.plusSeconds(7)),
                ENGINE)).isFalse();
        assertThat(store().find(job.id()).orElseThrow()).isEqualTo(done);
    }

    @Test
    public void update_byTheHolder_afterItsLeaseRanOut_isAccepted_untilAnotherEngineTakesTheJobOver() {
        Job job = inserted("vm-late", 0);
        clock.advance(LEASE.plusSeconds(1));
        Job running = job.running(T0.plusSeconds(1));
        assertThat(store().update(running, ENGINE)).as("nobody took it: still the holder's").isTrue();
        assertThat(store().takeOver(job.id(), OTHER_ENGINE, LEASE)).isPresent();
        assertThat(store().update(running.withProgress(new Progress(Stage.WRITING, 1, 2), T0.plusSeconds(2)), ENGINE))
                .isFalse();
        assertThat(store().find(job.id())).contains(running);
    }

    @Test
    public void list_filtersByStateVolumeAndCorrelation_newestFirst_withinLimit() {
        Job a = inserted("vm-a", 0);
        Job b = inserted("vm-b", 1);
        Job c = inserted("vm-c", 2);
        store().update(b.running(T0.plusSeconds(3)), ENGINE);

        assertThat(store().list(JobFilter.all())).extracting(Job::id).containsExactly(c.id(), b.id(), a.id());
        assertThat(store().list(JobFilter.all().withLimit(2))).extracting(Job::id).containsExactly(c.id(), b.id());
        assertThat(store().list(JobFilter.inStates(JobState.RUNNING))).extracting(Job::id).containsExactly(b.id());
        assertThat(store().list(JobFilter.all().withVolumeName("vm-a"))).extracting(Job::id).containsExactly(a.id());
        assertThat(store().list(JobFilter.all().withCorrelationId("corr-vm-c"))).extracting(Job::id)
                .containsExactly(c.id());
        assertThat(store().list(JobFilter.inStates(JobState.COMPLETED))).isEmpty();
    }

    @Test
    public void abandoned_listsTheJobsWhoseHoldersLeaseRanOut_oldestFirst_withinMax() {
        Job a = inserted("vm-a", 0);
        Job b = newJob("vm-b", T0.plusSeconds(1));
        store().insert(b, OTHER_ENGINE, LEASE.multipliedBy(2));
        Job c = inserted("vm-c", 2);
        store().update(c.running(T0).finished(JobState.CANCELLED, ErrorCode.CANCELLED, "by user", T0.plusSeconds(4)),
                ENGINE);
        Job d = inserted("vm-d", 3);
        store().update(d.running(T0.plusSeconds(3)), ENGINE);
        assertThat(store().abandoned(10)).as("every lease runs").isEmpty();

        clock.advance(LEASE.plusSeconds(1));
        List<Job> abandoned = store().abandoned(10);
        assertThat(abandoned).extracting(Job::id).containsExactly(a.id(), d.id());
        assertThat(abandoned.get(1).state()).isEqualTo(JobState.RUNNING);
        assertThat(store().abandoned(1)).extracting(Job::id).containsExactly(a.id());

        clock.advance(LEASE);
        assertThat(store().abandoned(10)).extracting(Job::id).containsExactly(a.id(), b.id(), d.id());
    }

    @Test
    public void renew_extendsTheLeases_andReturnsOnlyTheJobsTheEngineStillHolds() {
        Job mine = inserted("vm-mine", 0);
        Job theirs = newJob("vm-theirs", T0.plusSeconds(1));
        store().insert(theirs, OTHER_ENGINE, LEASE);
        Job ended = inserted("vm-ended", 2);
        store().update(ended.running(T0).finished(JobState.COMPLETED, null, null, T0), ENGINE);

        clock.advance(LEASE.minusSeconds(5));
        assertThat(store().renew(List.of(mine.id(), theirs.id(), ended.id(), "no-such-job"), ENGINE, LEASE))
                .containsExactly(mine.id());
        clock.advance(Duration.ofSeconds(20));
        assertThat(store().abandoned(10)).extracting(Job::id).containsExactly(theirs.id());
        assertThat(store().renew(List.of(), ENGINE, LEASE)).isEmpty();
    }

    @Test
    public void takeOver_whenTheLeaseRanOut_makesTheEngineTheHolder_andFencesTheEarlierOne() {
        Job job = inserted("vm-dead", 0);
        Job running = job.running(T0.plusSeconds(1)).withVolume("/pool/vm-dead", true, T0.plusSeconds(1));
        store().update(running, ENGINE);
        clock.advance(LEASE.plusSeconds(1));

        assertThat(store().takeOver(job.id(), OTHER_ENGINE, LEASE)).contains(running);
        assertThat(store().abandoned(10)).isEmpty();
        assertThat(store().renew(List.of(job.id()), ENGINE, LEASE)).as("the earlier holder's renewal").isEmpty();
        assertThat(store().update(running.finished(JobState.COMPLETED, null, null, T0.plusSeconds(2)), ENGINE))
                .as("the earlier holder's write").isFalse();
        assertThat(store().takeOver(job.id(), "hv-1-engine-c", LEASE)).as("while the new lease runs").isEmpty();
        Job failed = running.finished(JobState.FAILED, ErrorCode.INTERRUPTED, "its engine died", T0.plusSeconds(3));
        assertThat(store().update(failed, OTHER_ENGINE)).isTrue();
        assertThat(store().find(job.id())).contains(failed);
    }

    @Test
    public void takeOver_isRefused_whileTheLeaseRuns_forAnEndedJob_andForAnUnknownOne() {
        Job live = inserted("vm-live", 0);
        Job ended = inserted("vm-ended", 1);
        store().update(ended.running(T0).finished(JobState.COMPLETED, null, null, T0), ENGINE);
        assertThat(store().takeOver(live.id(), OTHER_ENGINE, LEASE)).isEmpty();
        clock.advance(LEASE.plusSeconds(1));
        assertThat(store().takeOver(ended.id(), OTHER_ENGINE, LEASE)).isEmpty();
        assertThat(store().takeOver("no-such-job", OTHER_ENGINE, LEASE)).isEmpty();
        assertThat(store().update(live.running(T0), ENGINE)).as("the holder keeps it").isTrue();
    }

    /** Engines starting at once, each trying every abandoned job: each job goes to exactly one of them. */
    @Test
    public void takeOver_byEightEnginesAtOnce_givesEachAbandonedJobToExactlyOne() throws Exception {
        int jobs = 40;
        List<String> ids = new ArrayList<>();
        for (int i = 0; i < jobs; i++) {
            ids.add(inserted("vm-" + i, i).id());
        }
        clock.advance(LEASE.plusSeconds(1));
        Map<String, String> takenBy = new ConcurrentHashMap<>();
        List<String> twice = new java.util.concurrent.CopyOnWriteArrayList<>();
        CountDownLatch start = new CountDownLatch(1);
        ExecutorService pool = Executors.newFixedThreadPool(8);
        try {
            List<Future<?>> results = new ArrayList<>();
            for (int t = 0; t < 8; t++) {
                String engine = "hv-1-engine-" + t;
                results.add(pool.submit(() -> {
                    start.await();
                    for (Job j : store().abandoned(jobs)) {
                        Optional<Job> taken = store().takeOver(j.id(), engine, LEASE);
                        if (taken.isPresent() && takenBy.putIfAbsent(j.id(), engine) != null) {
                            twice.add(j.id());
                        }
                    }
                    return null;
                }));
            }
            start.countDown();
            for (Future<?> r : results) {
                r.get(120, TimeUnit.SECONDS);
            }
        } finally {
            pool.shutdownNow();
        }
        assertThat(twice).isEmpty();
        assertThat(takenBy.keySet()).containsExactlyInAnyOrderElementsOf(ids);
        for (String id : ids) {
            Job j = store().find(id).orElseThrow();
            assertThat(store().update(j.running(T0), takenBy.get(id))).as("the one that took it holds it").isTrue();
        }
    }

    @Test
    public void find_keepsTimestampsToTheMillisecond() {
        Instant odd = T0.plus(987, ChronoUnit.MILLIS);
        Job job = newJob("vm-t", odd);
        store().insert(job, ENGINE, LEASE);
        assertThat(store().find(job.id()).orElseThrow().createdAt()).isEqualTo(odd);
    }
}
