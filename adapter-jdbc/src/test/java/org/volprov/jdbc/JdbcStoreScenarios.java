package org.volprov.jdbc;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.jdbi.v3.core.Jdbi;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.volprov.ErrorCode;
import org.volprov.Job;
import org.volprov.JobFilter;
import org.volprov.JobKind;
import org.volprov.JobState;
import org.volprov.Progress;
import org.volprov.ProvisionRequest;
import org.volprov.ProvisioningException;
import org.volprov.Stage;
import org.volprov.image.ImageFormat;
import org.volprov.job.JobJson;
import org.volprov.testing.SettableClock;

/**
 * What the JDBC store does beyond core's contracts: migrations, retention, persistence, lifecycle.
 * A dialect's test supplies config builders on storage that is fresh for each test method.
 */
abstract class JdbcStoreScenarios {
    protected static final Instant T0 = Instant.parse("2026-03-04T05:06:07.123456Z");
    protected final SettableClock clock = new SettableClock(T0);
    private static final String ENGINE = "hv-1-engine";
    private static final Duration LEASE = Duration.ofSeconds(30);
    private final List<JdbcJobStore> opened = new ArrayList<>();

    /** A config builder on this test's storage; every call points at the same storage. */
    protected abstract JdbcJobStoreConfig.Builder storage();

    protected JdbcJobStore open() {
        JdbcJobStore s = JdbcJobStore.open(storage().host("hv-1").clock(clock).build());
        opened.add(s);
        return s;
    }

    @AfterEach
    void closeStores() {
        opened.forEach(JdbcJobStore::close);
    }

    private static Job job(String volume, Instant at) {
        ProvisionRequest r = ProvisionRequest.builder().imageUri("s3://images/disk.qcow2").volumeName(volume)
                .volumeSizeBytes(1L << 30).build();
        return Job.pending(UUID.randomUUID().toString(), r, at);
    }

    private static int versionRows(JdbcJobStore s) {
        return s.jdbi().withHandle(h -> h.createQuery("SELECT COUNT(*) FROM volprov_schema_version")
                .mapTo(Integer.class).one());
    }

    @Test
    void open_recordsTheLatestSchemaVersion_once_evenWhenOpenedAgain() {
        JdbcJobStore first = open();
        assertThat(first.schemaVersion()).isEqualTo(JdbcJobStore.LATEST_SCHEMA_VERSION);
        JdbcJobStore second = open();
        assertThat(second.schemaVersion()).isEqualTo(JdbcJobStore.LATEST_SCHEMA_VERSION);
        assertThat(versionRows(second)).isEqualTo(JdbcJobStore.LATEST_SCHEMA_VERSION);
    }

    @Test
    void open_whenTheDatabaseIsOfANewerVersion_isRefusedNamingBothVersions() {
        JdbcJobStore s = open();
        s.jdbi().useHandle(h -> h.execute("INSERT INTO volprov_schema_version (version, description) VALUES (?, ?)",
                JdbcJobStore.LATEST_SCHEMA_VERSION + 41, "from the future"));
        assertThatThrownBy(this::open)
                .isInstanceOf(ProvisioningException.class)
                .satisfies(e -> assertThat(((ProvisioningException) e).code()).isEqualTo(ErrorCode.BACKEND_FAILURE))
                .hasMessageContaining("schema version " + (JdbcJobStore.LATEST_SCHEMA_VERSION + 41))
                .hasMessageContaining("version " + JdbcJobStore.LATEST_SCHEMA_VERSION)
                .hasMessageContaining("upgrade volprov");
    }

    @Test
    void open_byTwoStoresAtOnce_migratesOnce_andBothWork() throws Exception {
        CountDownLatch go = new CountDownLatch(1);
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try {
            List<Future<JdbcJobStore>> stores = new ArrayList<>();
            for (int i = 0; i < 2; i++) {
                stores.add(pool.submit(() -> {
                    go.await();
                    return open();
                }));
            }
            go.countDown();
            JdbcJobStore a = stores.get(0).get(60, TimeUnit.SECONDS);
            JdbcJobStore b = stores.get(1).get(60, TimeUnit.SECONDS);
            assertThat(versionRows(a)).isEqualTo(JdbcJobStore.LATEST_SCHEMA_VERSION);
            Job job = job("vm-race", T0);
            a.insert(job, ENGINE, LEASE);
            assertThat(b.find(job.id())).contains(job);
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void jobs_surviveTheStoreBeingClosedAndOpenedAgain() {
        JdbcJobStore first = open();
        Job job = job("vm-persist", T0);
        first.insert(job, ENGINE, LEASE);
        Job running = job.running(T0.plusSeconds(1)).withVolume("/pool/vm-persist", true, T0.plusSeconds(2));
        first.update(running, ENGINE);
        first.close();

        JdbcJobStore second = open();
        assertThat(second.find(job.id())).contains(running);
        assertThat(second.abandoned(10)).as("its holder's lease runs still").isEmpty();
        assertThat(second.update(running, ENGINE)).as("and its holder still holds it").isTrue();
        clock.advance(LEASE.plusSeconds(1));
        assertThat(second.abandoned(10)).containsExactly(running);
    }

    @Test
    void times_keepTheirMicroseconds_andRequestsTheirLabels() {
        JdbcJobStore s = open();
        ProvisionRequest r = ProvisionRequest.builder().imageUri("s3://images/ubuntu 24.04/ü.qcow2")
                .volumeName("vm-odd").volumeSizeBytes(3L << 40).format(ImageFormat.RAW)
                .label("owner", "\"quoted\" \\ back / {json}").label("a/b", "").build();
        Job job = Job.pending("job-odd", r, T0);
        s.insert(job, ENGINE, LEASE);
        assertThat(s.find("job-odd")).contains(job);
        assertThat(s.find("job-odd").orElseThrow().createdAt().getNano() % 1000).isZero();
        assertThat(s.find("job-odd").orElseThrow().createdAt()).isEqualTo(T0);
    }

    @Test
    void update_ofATerminalJob_withTheSameSnapshot_isAccepted_soThatARetriedWriteSucceeds() {
        JdbcJobStore s = open();
        Job job = job("vm-retry", T0);
        s.insert(job, ENGINE, LEASE);
        Job done = job.running(T0).finished(JobState.COMPLETED, null, null, T0.plusSeconds(3));
        assertThat(s.update(done, ENGINE)).isTrue();
        assertThat(s.update(done, ENGINE)).isTrue();
        assertThat(s.find(job.id())).contains(done);
    }

    @Test
    void prune_deletesInBatches_onlyJobsThatFinishedBeforeTheRetention() {
        JdbcJobStore s = JdbcJobStore.open(storage().host("hv-1").clock(clock)
                .retention(Duration.ofDays(7), Duration.ofHours(1)).pruneBatchSize(3).build());
        opened.add(s);
        List<String> old = new ArrayList<>();
        for (int i = 0; i < 7; i++) {
            Job j = job("vm-old-" + i, T0);
            s.insert(j, ENGINE, LEASE);
            s.update(j.running(T0).finished(JobState.FAILED, ErrorCode.IMAGE_NOT_FOUND, "gone", T0.plusSeconds(i)), ENGINE);
            old.add(j.id());
        }
        Job oldButRunning = job("vm-running", T0);
        s.insert(oldButRunning, ENGINE, LEASE);
        s.update(oldButRunning.running(T0), ENGINE);
        clock.advance(Duration.ofDays(6));
        Job recent = job("vm-recent", clock.instant());
        s.insert(recent, ENGINE, LEASE);
        s.update(recent.running(clock.instant()).finished(JobState.COMPLETED, null, null, clock.instant()), ENGINE);
        clock.advance(Duration.ofDays(2));

        assertThat(s.prune()).isEqualTo(7);
        assertThat(s.list(JobFilter.all())).extracting(Job::id)
                .containsExactlyInAnyOrder(oldButRunning.id(), recent.id());
        assertThat(s.prune()).isZero();
    }

    @Test
    void close_isIdempotent_andLaterCallsFailWithBackendFailure() {
        JdbcJobStore s = open();
        s.close();
        s.close();
        assertThatThrownBy(() -> s.find("x"))
                .isInstanceOf(ProvisioningException.class)
                .satisfies(e -> assertThat(((ProvisioningException) e).code()).isEqualTo(ErrorCode.BACKEND_FAILURE))
                .hasMessageContaining("closed");
    }

    @Test
    void prefetchJobs_keepTheirKind_andARequestStoredBeforeKindsReadsAsAProvision() {
        JdbcJobStore s = open();
        Job prefetch = Job.pending(UUID.randomUUID().toString(), ProvisionRequest.builder().kind(JobKind.PREFETCH)
                .imageUri("s3://images/disk.qcow2").correlationId("warm-1").build(), T0);
        s.insert(prefetch, ENGINE, LEASE);
        assertThat(s.find(prefetch.id())).contains(prefetch);
        assertThat(s.find(prefetch.id()).orElseThrow().kind()).isEqualTo(JobKind.PREFETCH);

        Job old = job("vm-old", T0);
        s.insert(old, ENGINE, LEASE);
        String stored = JobJson.writeRequest(old.request());
        String withoutKind = stored.replace(",\"kind\":\"PROVISION\"", "");
        assertThat(withoutKind).as("the request as it was stored before kinds").isNotEqualTo(stored)
                .doesNotContain("kind");
        Dialect d = s.config().database() == JdbcJobStoreConfig.Database.SQLITE ? Dialect.SQLITE : Dialect.POSTGRESQL;
        s.jdbi().useHandle(h -> h.createUpdate("UPDATE volprov_jobs SET request = " + d.json(":request")
                + " WHERE id = :id").bind("request", withoutKind).bind("id", old.id()).execute());
        Job read = s.find(old.id()).orElseThrow();
        assertThat(read.kind()).isEqualTo(JobKind.PROVISION);
        assertThat(read).isEqualTo(old);
        assertThat(s.list(JobFilter.all().withVolumeName("vm-old"))).containsExactly(old);
    }

    @Test
    void aStageStoredUnderItsEarlierName_readsAsTheStageItWasRenamedTo() {
        JdbcJobStore s = open();
        Job running = job("vm-inspecting", T0).withProgress(new Progress(Stage.INSPECTING, 0, 0), T0);
        s.insert(running, ENGINE, LEASE);
        s.jdbi().useHandle(h -> h.createUpdate("UPDATE volprov_jobs SET stage = 'VERIFYING' WHERE id = :id")
                .bind("id", running.id()).execute());
        assertThat(s.find(running.id()).orElseThrow().stage()).isEqualTo(Stage.INSPECTING);
    }

    @Test
    void open_onAVersion1Database_addsTheHolder_andTreatsItsUnfinishedJobsAsAbandoned() throws Exception {
        JdbcJobStoreConfig c = storage().host("hv-1").clock(clock).build();
        if (c.sqliteFile().isPresent()) {
            Files.createDirectories(c.sqliteFile().get().getParent());
        }
        Dialect d = c.database() == JdbcJobStoreConfig.Database.SQLITE ? Dialect.SQLITE : Dialect.POSTGRESQL;
        String url = c.schema().map(sc -> c.jdbcUrl() + (c.jdbcUrl().contains("?") ? "&" : "?") + "currentSchema=" + sc)
                .orElse(c.jdbcUrl());
        Jdbi v1 = c.username().isPresent() ? Jdbi.create(url, c.username().get(), c.password().orElse(""))
                : Jdbi.create(url);
        Migrations.migrate(v1, d, c.schema().orElse(null), c.location(), 1);
        Job left = job("vm-v1", T0).running(T0);
        v1.useHandle(h -> h.createUpdate("INSERT INTO volprov_jobs (id, request, volume_name, state, stage, bytes_done,"
                        + " bytes_total, cache_hit, created_volume, attempts, owner_host, queued, created_at, started_at,"
                        + " updated_at) VALUES (:id, " + d.json(":request") + ", 'vm-v1', 'RUNNING', 'QUEUED', 0, 0,"
                        + " :false, :false, 1, 'hv-1', :false, :t, :t, :t)")
                .bind("id", left.id()).bind("request", JobJson.writeRequest(left.request()))
                .bind("false", false).bind("t", d.time(T0)).execute());

        JdbcJobStore s = open();
        assertThat(s.schemaVersion()).isEqualTo(JdbcJobStore.LATEST_SCHEMA_VERSION);
        assertThat(s.abandoned(10)).containsExactly(left);
        assertThat(s.update(left, ENGINE)).as("a row of version 1 has no holder").isFalse();
        assertThat(s.takeOver(left.id(), ENGINE, LEASE)).contains(left);
        assertThat(s.update(left.finished(JobState.FAILED, ErrorCode.INTERRUPTED, "recovered", T0), ENGINE)).isTrue();
    }
}
