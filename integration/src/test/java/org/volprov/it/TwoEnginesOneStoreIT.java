package org.volprov.it;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.volprov.ErrorCode;
import org.volprov.Job;
import org.volprov.JobEvent;
import org.volprov.JobState;
import org.volprov.Provisioner;
import org.volprov.Stage;
import org.volprov.jdbc.JdbcJobStore;
import org.volprov.jdbc.testkit.PostgresTestDatabase;
import org.volprov.libvirt.testkit.LibvirtTestPool;
import org.volprov.s3.testkit.S3TestServer;

/**
 * Engines of one host in separate processes, on one job store (PostgreSQL, and SQLite as the
 * embedded default shares one file): engine A, a child JVM, is in the middle of writing its volume;
 * engine C, another child, is killed with SIGKILL after it created its volume; engine B, in this
 * JVM, runs a job of its own, is closed and started again, in {@code FAIL} recovery (the mode that
 * deletes). B recovers C's job once C's lease has run out, and touches nothing of A's: A's job is
 * neither failed nor taken, its volume neither deleted nor overwritten, and A completes it.
 */
@Tag(Category.MULTI_ENGINE)
class TwoEnginesOneStoreIT {
    @RegisterExtension
    static final LibvirtTestPool POOL = new LibvirtTestPool();
    /** The host id of every engine here: they are engines of one host. */
    private static final String HOST = "it-multi-host";
    /** Every engine's lease: short, so that a lease that was not renewed runs out within the test. */
    private static final Duration LEASE = Duration.ofSeconds(3);

    enum Store { POSTGRESQL, SQLITE }

    @TempDir
    Path work;

    @ParameterizedTest
    @EnumSource(Store.class)
    void engineRestartedWhileAnotherWrites_recoversOnlyTheDeadEnginesJob_andLeavesTheWritersAlone(Store kind)
            throws Exception {
        TestImage raw = ImageSet.get(ImageSet.RAW);
        TestImage small = ImageSet.get(ImageSet.SMALL);
        String schema = PostgresTestDatabase.newSchemaName();
        Path sqlite = work.resolve("jobs/jobs.db");
        String volumeA = POOL.prefix() + "writer-" + kind.name().toLowerCase();
        String volumeB = POOL.prefix() + "restarted-" + kind.name().toLowerCase();
        String volumeC = POOL.prefix() + "dead-" + kind.name().toLowerCase();
        List<String> storeArg = List.of(kind == Store.SQLITE ? "sqlite=" + sqlite : "schema=" + schema);
        try (JdbcJobStore store = kind == Store.SQLITE ? JobStores.sqlite(sqlite, HOST) : JobStores.postgres(schema, HOST);
             ChildProcess a = child("a", raw, volumeA, Stage.WRITING, JobEvent.Kind.PROGRESS, true, storeArg)) {
            // A writes: its job's thread is parked between two writes of the volume, its lease renewed.
            String jobA = a.awaitLine("PAUSED ", Duration.ofMinutes(2)).strip();
            assertThat(store.find(jobA).orElseThrow().stage()).isEqualTo(Stage.WRITING);

            // C dies after it created its volume.
            String jobC;
            try (ChildProcess c = child("c", small, volumeC, Stage.WRITING, JobEvent.Kind.STAGE, false, storeArg)) {
                jobC = c.awaitLine("PAUSED ", Duration.ofMinutes(2)).strip();
                c.kill();
            }
            assertThat(Volumes.exists(POOL, volumeC)).isTrue();

            // B runs a job of its own while A writes, and is closed.
            String jobB;
            try (Stack b = stack(store, "b1")) {
                Job done = b.run(Stack.request(Uploads.uri(small), volumeB, small.virtualSize()));
                assertThat(done.state()).as("%s %s", done.errorCode(), done.errorMessage()).isEqualTo(JobState.COMPLETED);
                jobB = done.id();
                assertWriterUntouched(store, jobA, volumeA);
            }

            // B again: C's job is recovered once C's lease has run out, by B or by A (both are engines of
            // the host). A's job is older than C's, so the pass that found C's would have found A's
            // too, had A stopped renewing its lease.
            try (Stack b = stack(store, "b2")) {
                Job recovered = b.awaitEnd(jobC);
                assertThat(recovered.state()).isEqualTo(JobState.FAILED);
                assertThat(recovered.errorCode()).isEqualTo(ErrorCode.INTERRUPTED);
                Leftovers.assertNoVolume(POOL, volumeC);
                assertWriterUntouched(store, jobA, volumeA);
                assertThat(b.events).as("B's events about A's job").noneMatch(e -> e.job().id().equals(jobA));
            }

            // A goes on, and completes its job on its own volume.
            a.send("go on");
            String[] ended = a.awaitLine("ENDED ", Duration.ofMinutes(2)).strip().split(" ");
            assertThat(ended[0]).isEqualTo(jobA);
            assertThat(ended[1]).as("A's job, as A saw it end: " + String.join(" ", ended)).isEqualTo("COMPLETED");
            assertThat(a.awaitExit(Duration.ofMinutes(1))).isZero();
            assertThat(store.find(jobA).orElseThrow().state()).isEqualTo(JobState.COMPLETED);
            Volumes.assertHolds(POOL, volumeA, raw);

            // B's volume is as B left it.
            assertThat(store.find(jobB).orElseThrow().state()).isEqualTo(JobState.COMPLETED);
            Volumes.assertHolds(POOL, volumeB, small);
        } finally {
            if (kind == Store.POSTGRESQL) {
                JobStores.postgres().dropSchema(schema);
            }
        }
    }

    private static void assertWriterUntouched(JdbcJobStore store, String jobA, String volumeA) {
        Job seen = store.find(jobA).orElseThrow();
        assertThat(seen.state()).as("A's job, while A writes").isEqualTo(JobState.RUNNING);
        assertThat(seen.errorCode()).isNull();
        assertThat(Volumes.exists(POOL, volumeA)).as("A's volume, while A writes").isTrue();
    }

    /** Engine B in this JVM, on the shared store, in FAIL recovery, with a cache directory of its own. */
    private Stack stack(JdbcJobStore store, String name) throws Exception {
        return Stack.builder(POOL, work.resolve(name)).cacheDirectory(Files.createDirectories(work.resolve("cache-b")))
                .jobStore(store)
                .engine(e -> e.recoveryMode(Provisioner.RecoveryMode.FAIL).jobLease(LEASE)).build();
    }

    /** An engine in a child JVM that runs one job and stops at {@code stage}; with {@code resume}, it goes on when told. */
    private ChildProcess child(String name, TestImage image, String volume, Stage stage, JobEvent.Kind on,
                               boolean resume, List<String> storeArg) throws Exception {
        S3TestServer s3 = Services.s3();
        List<String> args = new ArrayList<>(List.of("endpoint=" + s3.endpoint(), "accessKey=" + s3.accessKey(),
                "secretKey=" + s3.secretKey(), "region=" + s3.region(),
                "cacheDir=" + Files.createDirectories(work.resolve("cache-" + name)),
                "libvirtUri=" + LibvirtTestPool.URI, "pool=" + POOL.pool(), "host=" + HOST,
                "imageUri=" + Uploads.uri(image), "volume=" + volume, "size=" + image.virtualSize(),
                "pauseAt=" + stage, "pauseOn=" + on, "lease=" + LEASE, "resume=" + resume));
        args.addAll(storeArg);
        Map<String, String> env = storeArg.get(0).startsWith("schema=") ? JobStores.postgres().childEnvironment() : Map.of();
        return ChildProcess.start(ProvisionerProcess.class, env, args);
    }
}
