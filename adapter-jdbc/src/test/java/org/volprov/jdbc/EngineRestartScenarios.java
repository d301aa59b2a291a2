package org.volprov.jdbc;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.volprov.ErrorCode;
import org.volprov.Job;
import org.volprov.JobEvent;
import org.volprov.JobState;
import org.volprov.Provisioner;
import org.volprov.Stage;
import org.volprov.cache.DiskImageCache;
import org.volprov.job.JobStore;
import org.volprov.testing.OutageJobQueue;
import org.volprov.testing.SettableClock;
import org.volprov.volume.FileVolumeBackend;
import org.volprov.volume.VolumeBackend;

/**
 * Real engines on this store, each with a store instance of its own over the same database, all
 * acting for host {@code hv-1} (as the engines of one host do): a first engine dies mid-job, after
 * it created the volume, and a second one recovers the job once its lease has run out; a second
 * engine starting while the first writes leaves that job alone; an end the store did not take
 * before the first engine stopped is written by the next one. A dying engine is abandoned, not
 * closed: its store is closed (its connections die with the process), and time moves on the shared
 * clock, which the stores read leases against.
 */
abstract class EngineRestartScenarios {
    private static final Duration LEASE = Duration.ofSeconds(30);

    @TempDir
    static Path images;
    static EngineFixture fixture;

    @TempDir
    Path work;
    /** The clock of every store and engine of a test. */
    protected final SettableClock clock = new SettableClock(Instant.now().truncatedTo(ChronoUnit.MICROS));
    private final List<AutoCloseable> toClose = new ArrayList<>();
    private EngineFixture.PausedWriterBackend stuck;

    /** A new store instance on this test's database, acting for host {@code hv-1}, on {@link #clock}. */
    protected abstract JdbcJobStore openStore();

    @BeforeAll
    static void makeImages() throws Exception {
        fixture = new EngineFixture(images);
    }

    @AfterEach
    void tearDown() throws Exception {
        if (stuck != null) {
            stuck.release.countDown(); // the abandoned engine's job ends now, its writes refused
        }
        for (int i = toClose.size() - 1; i >= 0; i--) {
            toClose.get(i).close();
        }
    }

    private JdbcJobStore store() {
        JdbcJobStore s = openStore();
        toClose.add(s);
        return s;
    }

    private Provisioner.Builder engine(JobStore store, String cache, Provisioner.RecoveryMode mode, VolumeBackend backend) {
        DiskImageCache c = DiskImageCache.builder().directory(work.resolve(cache)).maxBytes(1L << 30).build();
        toClose.add(c);
        return Provisioner.builder().source(fixture.source()).cache(c).backend(backend).jobStore(store)
                .workDirectory(work).recoveryMode(mode).sleeper(d -> { }).clock(clock).jobLease(LEASE)
                .watchdogInterval(Duration.ofMillis(50)).stateDirectory(work.resolve("state"))
                // A dead engine's close (at the end of a test) must not wait for its stuck job.
                .shutdown(Provisioner.ShutdownMode.CANCEL, Duration.ZERO);
    }

    private Provisioner start(Provisioner.Builder b) {
        Provisioner p = b.build();
        toClose.add(p);
        return p;
    }

    /**
     * Runs a job on a first engine until it has created its volume, then leaves that engine for
     * dead: its store closed, its lease run out.
     */
    private String jobLeftRunningByADeadEngine(FileVolumeBackend volumes) throws Exception {
        JdbcJobStore first = store();
        stuck = new EngineFixture.PausedWriterBackend(volumes, true);
        Provisioner dying = start(engine(first, "cache-1", Provisioner.RecoveryMode.FAIL, stuck));
        String id = dying.submit(EngineFixture.request("vm-restart"));
        assertThat(stuck.writing.await(120, TimeUnit.SECONDS)).as("the first engine created the volume").isTrue();
        Job left = first.find(id).orElseThrow();
        assertThat(left.state()).isEqualTo(JobState.RUNNING);
        assertThat(left.createdVolume()).isTrue();
        assertThat(volumes.find("vm-restart")).isPresent();
        first.close();
        clock.advance(LEASE.plusSeconds(1));
        return id;
    }

    @Test
    void jobOfADeadEngine_isFailedInterrupted_byTheNextEngineInFailMode_andItsVolumeDeleted() throws Exception {
        FileVolumeBackend volumes = FileVolumeBackend.open(work.resolve("volumes"));
        String id = jobLeftRunningByADeadEngine(volumes);

        JdbcJobStore second = store();
        start(engine(second, "cache-2", Provisioner.RecoveryMode.FAIL, volumes));

        Job failed = second.find(id).orElseThrow();
        assertThat(failed.state()).isEqualTo(JobState.FAILED);
        assertThat(failed.error()).contains(ErrorCode.INTERRUPTED);
        assertThat(failed.errorMessage()).contains("was deleted");
        assertThat(failed.finishedAt()).isNotNull();
        assertThat(volumes.find("vm-restart")).isEmpty();
        assertThat(second.abandoned(10)).isEmpty();
    }

    @Test
    void jobOfADeadEngine_isCompleted_byTheNextEngineInResumeMode() throws Exception {
        FileVolumeBackend volumes = FileVolumeBackend.open(work.resolve("volumes"));
        String id = jobLeftRunningByADeadEngine(volumes);

        JdbcJobStore second = store();
        Provisioner p = start(engine(second, "cache-2", Provisioner.RecoveryMode.RESUME, volumes));

        Job done = p.await(id, Duration.ofSeconds(120));
        assertThat(done.state()).isEqualTo(JobState.COMPLETED);
        assertThat(done.attempts()).isEqualTo(2);
        Job stored = second.find(id).orElseThrow();
        assertThat(stored.state()).isEqualTo(JobState.COMPLETED);
        // The store keeps times to the microsecond; the engine's clock may tick in nanoseconds.
        assertThat(stored.finishedAt()).isEqualTo(done.finishedAt().truncatedTo(ChronoUnit.MICROS));
        assertThat(fixture.holdsImage(volumes.directory().resolve("vm-restart"))).isTrue();
    }

    @Test
    void secondEngineStartingWhileTheFirstWrites_leavesItsJobAndVolumeAlone_andTheFirstCompletesIt() throws Exception {
        FileVolumeBackend volumes = FileVolumeBackend.open(work.resolve("volumes"));
        EngineFixture.PausedWriterBackend paused = new EngineFixture.PausedWriterBackend(volumes, false);
        Provisioner first = start(engine(store(), "cache-1", Provisioner.RecoveryMode.FAIL, paused));
        String id = first.submit(EngineFixture.request("vm-live"));
        assertThat(paused.writing.await(120, TimeUnit.SECONDS)).as("the first engine created the volume").isTrue();

        JdbcJobStore second = store();
        start(engine(second, "cache-2", Provisioner.RecoveryMode.FAIL, volumes));
        assertThat(second.find(id).orElseThrow().state()).isEqualTo(JobState.RUNNING);
        assertThat(volumes.find("vm-live")).isPresent();

        paused.release.countDown();
        assertThat(first.await(id, Duration.ofSeconds(120)).state()).isEqualTo(JobState.COMPLETED);
        assertThat(second.find(id).orElseThrow().state()).isEqualTo(JobState.COMPLETED);
        assertThat(fixture.holdsImage(volumes.directory().resolve("vm-live"))).isTrue();
    }

    @Test
    void endTheStoreDidNotTakeBeforeTheEngineStopped_isWrittenByTheNextEngine_andItsVolumeKept() throws Exception {
        FileVolumeBackend volumes = FileVolumeBackend.open(work.resolve("volumes"));
        OutageJobQueue first = new OutageJobQueue(store());
        Provisioner stopping = engine(first, "cache-1", Provisioner.RecoveryMode.FAIL, volumes).listener(e -> {
            if (e.kind() == JobEvent.Kind.STAGE && e.job().stage() == Stage.FINALIZING) {
                first.down = true;
            }
        }).build();
        String id = stopping.submit(EngineFixture.request("vm-kept"));
        Job done = stopping.await(id, Duration.ofSeconds(120));
        assertThat(done.state()).isEqualTo(JobState.COMPLETED);
        stopping.close();
        first.close();
        try (var kept = Files.list(work.resolve("state"))) {
            assertThat(kept).as("the end, kept on disk").hasSize(1);
        }
        clock.advance(LEASE.plusSeconds(1));

        JdbcJobStore second = store();
        start(engine(second, "cache-2", Provisioner.RecoveryMode.FAIL, volumes));
        Job stored = second.find(id).orElseThrow();
        assertThat(stored.state()).isEqualTo(JobState.COMPLETED);
        assertThat(stored.finishedAt()).isEqualTo(done.finishedAt().truncatedTo(ChronoUnit.MICROS));
        assertThat(fixture.holdsImage(volumes.directory().resolve("vm-kept"))).isTrue();
        try (var kept = Files.list(work.resolve("state"))) {
            assertThat(kept).isEmpty();
        }
    }
}
