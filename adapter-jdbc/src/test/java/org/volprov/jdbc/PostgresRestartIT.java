package org.volprov.jdbc;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.volprov.ErrorCode;
import org.volprov.Job;
import org.volprov.JobState;
import org.volprov.Provisioner;
import org.volprov.ProvisioningException;
import org.volprov.cache.DiskImageCache;
import org.volprov.jdbc.testkit.PrivatePostgres;
import org.volprov.testing.GatedImageSource;
import org.volprov.volume.FileVolumeBackend;

/**
 * PostgreSQL stops and starts again under the store and under a running job. The server is a
 * private cluster of this test: the shared one is never restarted.
 */
class PostgresRestartIT {
    private static PrivatePostgres pg;

    @TempDir
    static Path images;
    static EngineFixture fixture;

    @TempDir
    Path work;
    private final List<AutoCloseable> toClose = new ArrayList<>();

    @BeforeAll
    static void startServer() throws Exception {
        Optional<String> why = PrivatePostgres.unavailableReason();
        why.ifPresent(reason -> System.out.println("[volprov tests] skipping PostgreSQL restart tests: " + reason));
        Assumptions.assumeTrue(why.isEmpty(), () -> why.orElse(""));
        pg = PrivatePostgres.start();
        System.out.println("[volprov tests] private PostgreSQL for restart tests at " + pg.jdbcUrl());
        fixture = new EngineFixture(images);
    }

    @AfterAll
    static void stopServer() {
        if (pg != null) {
            pg.close();
        }
    }

    @AfterEach
    void tearDown() throws Exception {
        for (int i = toClose.size() - 1; i >= 0; i--) {
            toClose.get(i).close();
        }
    }

    // The store keeps microseconds; the system clock may tick in nanoseconds.
    private static Instant now() {
        return Instant.now().truncatedTo(ChronoUnit.MICROS);
    }

    private JdbcJobStore open(String schema) {
        JdbcJobStore s = JdbcJobStore.open(pg.config(schema).host("hv-1").maxPoolSize(3)
                .connectionTimeout(Duration.ofSeconds(1)).build());
        toClose.add(s);
        return s;
    }

    @Test
    void afterARestart_theFirstOperationSucceeds_onConnectionsTheServerDropped() throws Exception {
        JdbcJobStore store = open("restart_a");
        Job job = Job.pending("job-a", EngineFixture.request("vm-a"), now());
        store.insert(job, "hv-1-engine", Duration.ofSeconds(30));
        assertThat(store.find("job-a")).isPresent();

        pg.stopServer();
        pg.startServer();

        // Every pooled connection is dead now; the first call must not be the one that finds out.
        assertThat(store.find("job-a")).isPresent();
        assertThat(store.update(job.running(now()), "hv-1-engine")).isTrue();
        assertThat(store.find("job-a").orElseThrow().state()).isEqualTo(JobState.RUNNING);
    }

    @Test
    void whileTheServerIsDown_operationsFailWithBackendFailure_andSucceedOnceItIsBack() throws Exception {
        JdbcJobStore store = open("restart_b");
        Job job = Job.pending("job-b", EngineFixture.request("vm-b"), now());
        store.insert(job, "hv-1-engine", Duration.ofSeconds(30));

        pg.stopServer();
        try {
            assertThatThrownBy(() -> store.find("job-b"))
                    .isInstanceOf(ProvisioningException.class)
                    .satisfies(e -> assertThat(((ProvisioningException) e).code()).isEqualTo(ErrorCode.BACKEND_FAILURE))
                    .hasMessageContaining("reading job job-b");
        } finally {
            pg.startServer();
        }
        assertThat(store.find("job-b")).contains(job);
    }

    /**
     * The chosen behaviour: a running job does not stop for the store. Its writes fail while the
     * server is down (each after the connection timeout, well inside the job's lease); its terminal
     * write is retried with backoff, then kept and written again by the engine every few seconds, and
     * lands once the server is back.
     */
    @Test
    void aRunningJob_goesOnWhileTheServerIsDown_andItsEndIsRecordedWhenTheServerIsBack() throws Exception {
        JdbcJobStore store = open("restart_c");
        CountDownLatch terminalWriteFailed = new CountDownLatch(1);
        GatedImageSource gated = new GatedImageSource(fixture.source());
        FileVolumeBackend volumes = FileVolumeBackend.open(work.resolve("volumes"));
        DiskImageCache cache = DiskImageCache.builder().directory(work.resolve("cache")).maxBytes(1L << 30).build();
        toClose.add(cache);
        Provisioner p = Provisioner.builder().source(gated).cache(cache).backend(volumes).jobStore(store)
                .workDirectory(work)
                // Only the terminal write sleeps here (the source never fails): its first retry says
                // the job has ended while the store was down.
                .sleeper(d -> {
                    terminalWriteFailed.countDown();
                    Thread.sleep(Math.min(d.toMillis(), 250));
                })
                .build();
        toClose.add(p);

        String id = p.submit(EngineFixture.request("vm-c"));
        assertThat(gated.opened.await(60, TimeUnit.SECONDS)).isTrue();
        assertThat(store.find(id).orElseThrow().state()).isEqualTo(JobState.RUNNING);

        pg.stopServer();
        try {
            gated.release.countDown();
            assertThat(terminalWriteFailed.await(120, TimeUnit.SECONDS)).as("the job ended while the server was down")
                    .isTrue();
            assertThat(p.status(id).orElseThrow().state()).isEqualTo(JobState.COMPLETED);
        } finally {
            pg.startServer();
        }

        Job done = p.await(id, Duration.ofSeconds(120));
        assertThat(done.state()).isEqualTo(JobState.COMPLETED);
        // Bounded: the engine writes the kept end again every few seconds. A read may still time out
        // while the pool, which kept failing to connect during the outage, backs off before its next
        // connection (the first operation after a restart on an idle pool is the test above).
        Job stored = null;
        for (int i = 0; i < 600 && (stored == null || stored.state() != JobState.COMPLETED); i++) {
            if (i > 0) {
                Thread.sleep(100);
            }
            try {
                stored = store.find(id).orElseThrow();
            } catch (ProvisioningException e) {
                assertThat(e.code()).isEqualTo(ErrorCode.BACKEND_FAILURE);
            }
        }
        assertThat(stored).as("the job's record, read once the server is back").isNotNull();
        assertThat(stored.state()).isEqualTo(JobState.COMPLETED);
        assertThat(stored.finishedAt()).isNotNull();
        assertThat(stored.imageDigest()).isEqualTo(done.imageDigest());
        assertThat(fixture.holdsImage(volumes.directory().resolve("vm-c"))).isTrue();
    }
}
