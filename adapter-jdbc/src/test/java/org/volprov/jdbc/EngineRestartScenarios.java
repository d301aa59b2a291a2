package org.volprov.jdbc;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.time.Duration;
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
import org.volprov.JobState;
import org.volprov.Provisioner;
import org.volprov.cache.DiskImageCache;
import org.volprov.embedded.FileVolumeBackend;

/**
 * A real engine on this store dies mid-job, after it created the volume; a second engine, on a new
 * store instance over the same database, recovers the job at start. The first engine is abandoned,
 * not closed: closing would cancel the job and clean up, which a dead process never does.
 */
abstract class EngineRestartScenarios {
    @TempDir
    static Path images;
    static EngineFixture fixture;

    @TempDir
    Path work;
    private final List<AutoCloseable> toClose = new ArrayList<>();
    private EngineFixture.StuckWriterBackend stuck;

    /** A new store instance on this test's database, acting for host {@code hv-1}. */
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

    private Provisioner engine(JdbcJobStore store, FileVolumeBackend volumes, String cache,
                               Provisioner.RecoveryMode mode, org.volprov.VolumeBackend backend) {
        DiskImageCache c = DiskImageCache.builder().directory(work.resolve(cache)).maxBytes(1L << 30).build();
        toClose.add(c);
        Provisioner p = Provisioner.builder().source(fixture.source()).cache(c).backend(backend).jobStore(store)
                .workDirectory(work).recoveryMode(mode).sleeper(d -> { }).build();
        toClose.add(p);
        return p;
    }

    /** Runs a job on a first engine until it has created its volume, then leaves that engine for dead. */
    private String jobLeftRunningByADeadEngine(FileVolumeBackend volumes) throws Exception {
        JdbcJobStore first = openStore();
        toClose.add(first);
        stuck = new EngineFixture.StuckWriterBackend(volumes);
        Provisioner dying = engine(first, volumes, "cache-1", Provisioner.RecoveryMode.FAIL, stuck);
        String id = dying.submit(EngineFixture.request("vm-restart"));
        assertThat(stuck.writing.await(120, TimeUnit.SECONDS)).as("the first engine created the volume").isTrue();
        Job left = first.find(id).orElseThrow();
        assertThat(left.state()).isEqualTo(JobState.RUNNING);
        assertThat(left.createdVolume()).isTrue();
        assertThat(volumes.find("vm-restart")).isPresent();
        return id;
    }

    @Test
    void jobOfADeadEngine_isFailedInterrupted_byTheNextEngineInFailMode_andItsVolumeDeleted() throws Exception {
        FileVolumeBackend volumes = FileVolumeBackend.open(work.resolve("volumes"));
        String id = jobLeftRunningByADeadEngine(volumes);

        JdbcJobStore second = openStore();
        toClose.add(second);
        engine(second, volumes, "cache-2", Provisioner.RecoveryMode.FAIL, volumes);

        Job failed = second.find(id).orElseThrow();
        assertThat(failed.state()).isEqualTo(JobState.FAILED);
        assertThat(failed.error()).contains(ErrorCode.INTERRUPTED);
        assertThat(failed.errorMessage()).contains("was deleted");
        assertThat(failed.finishedAt()).isNotNull();
        assertThat(volumes.find("vm-restart")).isEmpty();
        assertThat(second.unfinished()).isEmpty();
    }

    @Test
    void jobOfADeadEngine_isCompleted_byTheNextEngineInResumeMode() throws Exception {
        FileVolumeBackend volumes = FileVolumeBackend.open(work.resolve("volumes"));
        String id = jobLeftRunningByADeadEngine(volumes);

        JdbcJobStore second = openStore();
        toClose.add(second);
        Provisioner p = engine(second, volumes, "cache-2", Provisioner.RecoveryMode.RESUME, volumes);

        Job done = p.await(id, Duration.ofSeconds(120));
        assertThat(done.state()).isEqualTo(JobState.COMPLETED);
        assertThat(done.attempts()).isEqualTo(2);
        Job stored = second.find(id).orElseThrow();
        assertThat(stored.state()).isEqualTo(JobState.COMPLETED);
        // The store keeps times to the microsecond; the engine's clock may tick in nanoseconds.
        assertThat(stored.finishedAt()).isEqualTo(done.finishedAt().truncatedTo(ChronoUnit.MICROS));
        assertThat(fixture.holdsImage(volumes.directory().resolve("vm-restart"))).isTrue();
    }
}
