package org.volprov.it;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.volprov.ErrorCode;
import org.volprov.Job;
import org.volprov.JobEvent;
import org.volprov.JobState;
import org.volprov.Provisioner;
import org.volprov.Stage;
import org.volprov.jdbc.JdbcJobStore;
import org.volprov.jdbc.testkit.PostgresTestDatabase;
import org.volprov.jdbc.testkit.PrivatePostgres;
import org.volprov.libvirt.testkit.LibvirtTestPool;
import org.volprov.redis.RedisConfig;
import org.volprov.redis.testkit.PrivateRedisServer;
import org.volprov.s3.testkit.S3TestServer;
import org.volprov.testing.LoopDevice;
import org.volprov.testing.QemuImgWrappers;
import org.volprov.testing.TestImages;
import org.volprov.volume.VolumeInfo;

/**
 * Services fail under a running job: the provisioner's own process (killed with SIGKILL and started
 * again on the same job store and cache), libvirtd, PostgreSQL and Redis (each restarted during a
 * job). Work goes on once the service is back, and nothing is lost or left half-done.
 */
@Tag(Category.SERVICE_RESTART)
class ServiceRestartIT {
    @RegisterExtension
    static final LibvirtTestPool POOL = new LibvirtTestPool();
    @RegisterExtension
    static final LibvirtTestPool DISK = LibvirtTestPool.disk(256L << 20);
    private static final String HOST = "it-restart-host";
    /**
     * The killed process's lease, and the next one's: the next process recovers a killed one's job
     * once its lease has run out, and looks every third of its own lease.
     */
    private static final Duration LEASE = Duration.ofSeconds(3);

    @TempDir
    Path work;

    // ---- (a) the provisioner's process killed with SIGKILL mid-job; the next one recovers its job
    // once the dead one's lease has run out ----

    @Test
    void processKilledMidDownload_newProcessResumesTheJob_andTheCacheHoldsNoPartialEntry() throws Exception {
        TestImage image = ImageSet.get(ImageSet.MEDIUM);
        Killed k = killChild(POOL, image, "killed-downloading", Stage.DOWNLOADING, JobEvent.Kind.PROGRESS);
        assertThat(Leftovers.partialDownloads(k.cacheDir)).as("the dead process's partial download").hasSize(1);
        assertThat(Leftovers.cacheEntries(k.cacheDir)).isEmpty();

        try (JdbcJobStore store = JobStores.postgres(k.schema, HOST);
             Stack stack = Stack.builder(POOL, work.resolve("second")).cacheDirectory(k.cacheDir).jobStore(store)
                     .engine(b -> b.recoveryMode(Provisioner.RecoveryMode.RESUME).jobLease(LEASE)).build()) {
            assertThat(Leftovers.partialDownloads(k.cacheDir)).as("swept when the cache opened").isEmpty();
            Job job = stack.awaitEnd(k.jobId);
            assertThat(job.state()).as("%s %s", job.errorCode(), job.errorMessage()).isEqualTo(JobState.COMPLETED);
            assertThat(job.attempts()).isEqualTo(2);
            Volumes.assertHolds(POOL, k.volume, image);
            assertThat(Leftovers.cacheEntries(k.cacheDir)).containsExactly(image.fileSha256());
            assertThat(TestImages.sha256(k.cacheDir.resolve(image.fileSha256()))).isEqualTo(image.fileSha256());
            assertThat(store.find(k.jobId).orElseThrow().state()).isEqualTo(JobState.COMPLETED);
        } finally {
            JobStores.postgres().dropSchema(k.schema);
        }
    }

    @Test
    void processKilledAfterCreatingTheVolume_newProcessFailsTheJobInterrupted_andDeletesThatVolume() throws Exception {
        TestImage image = ImageSet.get(ImageSet.SMALL);
        Killed k = killChild(POOL, image, "killed-writing-fail", Stage.WRITING, JobEvent.Kind.STAGE);
        assertThat(Volumes.exists(POOL, k.volume)).as("the dead process created the volume").isTrue();
        recoverFailing(POOL, k);
        // The verified image stays cached, whole.
        assertThat(Leftovers.partialDownloads(k.cacheDir)).isEmpty();
        assertThat(Leftovers.cacheEntries(k.cacheDir)).containsExactly(image.fileSha256());
        assertThat(TestImages.sha256(k.cacheDir.resolve(image.fileSha256()))).isEqualTo(image.fileSha256());
    }

    @Test
    void processKilledAfterCreatingTheVolume_newProcessResumesTheJob_andTheVolumeIsWhole() throws Exception {
        TestImage image = ImageSet.get(ImageSet.SMALL);
        Killed k = killChild(POOL, image, "killed-writing-resume", Stage.WRITING, JobEvent.Kind.STAGE);
        try (JdbcJobStore store = JobStores.postgres(k.schema, HOST);
             Stack stack = Stack.builder(POOL, work.resolve("second")).cacheDirectory(k.cacheDir).jobStore(store)
                     .engine(b -> b.recoveryMode(Provisioner.RecoveryMode.RESUME).jobLease(LEASE)).build()) {
            Job job = stack.awaitEnd(k.jobId);
            assertThat(job.state()).as("%s %s", job.errorCode(), job.errorMessage()).isEqualTo(JobState.COMPLETED);
            assertThat(job.cacheHit()).as("the image the dead process verified is reused").isTrue();
            assertThat(job.createdVolume()).as("still the job's own volume").isTrue();
            Volumes.assertHolds(POOL, k.volume, image);
        } finally {
            JobStores.postgres().dropSchema(k.schema);
        }
    }

    @Test
    void processKilledAfterCreatingAPartition_newProcessDeletesOnlyThatPartition() throws Exception {
        TestImage image = ImageSet.get(ImageSet.SMALL);
        VolumeInfo bystander = DISK.existingVolume("bystander", 16L << 20); // another VM's, made before
        long bystanderStart = DISK.partitionOf(bystander).start();
        Killed k = killChild(DISK, image, "killed-partition", Stage.WRITING, JobEvent.Kind.STAGE);
        LoopDevice loop = DISK.loopDevice();
        assertThat(loop.partitions()).as("the dead process made its partition").hasSize(2);
        recoverFailing(DISK, k);
        assertThat(loop.partitions()).as("partitions on " + loop).extracting(LoopDevice.Partition::start)
                .containsExactly(bystanderStart);
        assertThat(Volumes.exists(DISK, bystander.name())).isTrue();
        assertThat(LoopDevice.holdsTenantPattern(Path.of(bystander.path()), bystanderStart, 0, bystander.capacityBytes()))
                .as("the other partition's bytes").isTrue();
    }

    /**
     * Starts an engine in {@code FAIL} recovery on the dead process's store and cache, and checks that
     * it failed the job {@code INTERRUPTED} and deleted the volume the job created; drops the schema.
     */
    private void recoverFailing(LibvirtTestPool pool, Killed k) throws Exception {
        try (JdbcJobStore store = JobStores.postgres(k.schema, HOST);
             Stack stack = Stack.builder(pool, work.resolve("second")).cacheDirectory(k.cacheDir).jobStore(store)
                     .engine(b -> b.recoveryMode(Provisioner.RecoveryMode.FAIL).jobLease(LEASE)).build()) {
            Job job = stack.awaitEnd(k.jobId);
            assertThat(job.state()).isEqualTo(JobState.FAILED);
            assertThat(job.errorCode()).isEqualTo(ErrorCode.INTERRUPTED);
            assertThat(job.errorMessage()).contains("deleted");
            Leftovers.assertNoVolume(pool, k.volume);
        } finally {
            JobStores.postgres().dropSchema(k.schema);
        }
    }

    /** What a killed provisioner process left: its job, volume name, cache directory and store schema. */
    private record Killed(String jobId, String volume, Path cacheDir, String schema) {
    }

    /** Runs one job on {@code pool} in a child JVM, and kills it with SIGKILL once the job reaches {@code stage}. */
    private Killed killChild(LibvirtTestPool pool, TestImage image, String name, Stage stage, JobEvent.Kind on)
            throws Exception {
        String uri = Uploads.uri(image);
        Path cacheDir = Files.createDirectories(work.resolve("cache"));
        String schema = PostgresTestDatabase.newSchemaName();
        String volume = pool.volumeName(name);
        S3TestServer s3 = Services.s3();
        try (ChildProcess child = ChildProcess.start(ProvisionerProcess.class, JobStores.postgres().childEnvironment(),
                List.of("endpoint=" + s3.endpoint(), "accessKey=" + s3.accessKey(), "secretKey=" + s3.secretKey(),
                        "region=" + s3.region(), "cacheDir=" + cacheDir, "libvirtUri=" + LibvirtTestPool.URI,
                        "pool=" + pool.pool(), "schema=" + schema, "host=" + HOST, "imageUri=" + uri,
                        "volume=" + volume, "size=" + image.virtualSize(), "pauseAt=" + stage, "pauseOn=" + on,
                        "lease=" + LEASE))) {
            String jobId = child.awaitLine("PAUSED ", Duration.ofMinutes(2)).strip();
            try (JdbcJobStore observer = JobStores.postgres(schema, "observer")) {
                Job seen = observer.find(jobId).orElseThrow();
                assertThat(seen.state()).isEqualTo(JobState.RUNNING);
                assertThat(seen.stage()).isEqualTo(stage);
            }
            child.kill();
            return new Killed(jobId, volume, cacheDir, schema);
        }
    }

    @Test
    void processKilledWhileQemuImgConverts_nextStartEndsThatQemuImg_andLeavesALiveEnginesOne() throws Exception {
        TestImage image = ImageSet.get(ImageSet.SMALL);
        // Real conversions, slowed down by qemu-img's own rate limit so that they outlive the test's steps.
        Path slowQemuImg = QemuImgWrappers.slowConvert(work, 1L << 20);
        try (ChildProcess dying = convertingChild(image, "orphaned-convert", slowQemuImg);
             ChildProcess living = convertingChild(image, "live-convert", slowQemuImg)) {
            ProcessHandle orphan = qemuImgOf(dying);
            ProcessHandle live = qemuImgOf(living);
            try {
                dying.kill();
                assertThat(orphan.isAlive()).as("a SIGKILLed JVM's qemu-img goes on converting").isTrue();

                try (Stack next = Stack.builder(POOL, work.resolve("next")).build()) {
                    assertThat(orphan.isAlive()).as("the next start ended the dead engine's qemu-img").isFalse();
                    assertThat(live.isAlive()).as("a live engine's qemu-img is not touched").isTrue();
                }
            } finally {
                orphan.destroyForcibly();
                live.destroyForcibly();
            }
        }
    }

    /** An engine process converting {@code image} into a new volume with {@code qemuImg}, held at its first progress. */
    private ChildProcess convertingChild(TestImage image, String name, Path qemuImg) throws Exception {
        S3TestServer s3 = Services.s3();
        ChildProcess child = ChildProcess.start(EngineProcess.class, java.util.Map.of(), List.of(
                "endpoint=" + s3.endpoint(), "accessKey=" + s3.accessKey(), "secretKey=" + s3.secretKey(),
                "region=" + s3.region(), "cacheDir=" + Files.createDirectories(work.resolve("cache-" + name)),
                "libvirtUri=" + LibvirtTestPool.URI, "pool=" + POOL.pool(), "imageUri=" + Uploads.uri(image),
                "volume=" + POOL.prefix() + name, "size=" + image.virtualSize(), "holdAt=WRITING",
                "qemuImg=" + qemuImg));
        try {
            child.awaitLine("HELD ", Duration.ofMinutes(2));
            return child;
        } catch (Throwable t) {
            child.close();
            throw t;
        }
    }

    /** The {@code qemu-img convert} that {@code child} runs. */
    private static ProcessHandle qemuImgOf(ChildProcess child) {
        return ProcessHandle.of(child.pid()).orElseThrow().descendants()
                .filter(h -> h.info().commandLine().map(c -> c.contains(" convert ")).orElse(false))
                .findFirst().orElseThrow(() -> new AssertionError("the child runs no qemu-img convert"));
    }

    // ---- (b) libvirtd restarted ----

    @Test
    void libvirtdRestartedDuringTheDownload_jobReconnectsAndCompletes() throws Exception {
        Assumptions.assumeTrue(POOL.isLocal(),
                "libvirtd can only be restarted on this host; TEST_LIBVIRT_URI names another");
        TestImage image = ImageSet.get(ImageSet.SMALL);
        String uri = Uploads.uri(image);
        AtomicBoolean restarted = new AtomicBoolean();
        AtomicReference<Throwable> restartFailure = new AtomicReference<>();
        try (Stack stack = Stack.builder(POOL, work).build()) {
            // On the job's own thread, once the download is under way: the backend's connection dies.
            stack.engine.addListener(e -> {
                if (e.kind() == JobEvent.Kind.PROGRESS && e.job().stage() == Stage.DOWNLOADING
                        && restarted.compareAndSet(false, true)) {
                    try {
                        restartLibvirtd();
                    } catch (RuntimeException | AssertionError x) {
                        restartFailure.set(x);
                    }
                }
            });
            Job job = stack.run(Stack.request(uri, stack.volume("libvirtd-restart"), image.virtualSize()));
            assertThat(restarted).isTrue();
            assertThat(restartFailure.get()).as("restarting libvirtd").isNull();
            assertThat(job.state()).as("%s %s", job.errorCode(), job.errorMessage()).isEqualTo(JobState.COMPLETED);
            Volumes.assertHolds(POOL, stack.volume("libvirtd-restart"), image);

            Job next = stack.run(Stack.request(uri, stack.volume("after-restart"), image.virtualSize()));
            assertThat(next.state()).isEqualTo(JobState.COMPLETED);
        }
    }

    private static void restartLibvirtd() {
        try {
            ProcessHandle daemon = ProcessHandle.of(LibvirtTestPool.daemonPid()).orElseThrow();
            daemon.destroy();
            daemon.onExit().get(60, TimeUnit.SECONDS);
            assertThat(LibvirtTestPool.daemonAnswers()).as("libvirtd stopped").isFalse();
            LibvirtTestPool.startDaemon();
        } catch (Exception e) {
            throw new IllegalStateException("cannot restart libvirtd", e);
        }
    }

    // ---- (c) PostgreSQL restarted ----

    @Test
    void postgresRestartedDuringAJob_jobCompletes_andItsRecordIsWrittenOnceTheServerIsBack() throws Exception {
        Assumptions.assumeTrue(PrivatePostgres.unavailableReason().isEmpty(),
                () -> "no private PostgreSQL cluster can run here: " + PrivatePostgres.unavailableReason().orElse(""));
        TestImage image = ImageSet.get(ImageSet.SMALL);
        String uri = Uploads.uri(image);
        List<Throwable> failures = new CopyOnWriteArrayList<>();
        try (PrivatePostgres pg = PrivatePostgres.start();
             JdbcJobStore store = JdbcJobStore.open(pg.config("volprov").host(HOST)
                     .connectionTimeout(Duration.ofSeconds(1)).build());
             Stack stack = Stack.builder(POOL, work).jobStore(store).build()) {
            AtomicBoolean stopped = new AtomicBoolean();
            // Down once the download is under way, back when the write starts.
            stack.engine.addListener(e -> {
                try {
                    if (e.kind() == JobEvent.Kind.PROGRESS && e.job().stage() == Stage.DOWNLOADING
                            && stopped.compareAndSet(false, true)) {
                        pg.stopServer();
                    } else if (e.kind() == JobEvent.Kind.STAGE && e.job().stage() == Stage.WRITING && stopped.get()) {
                        pg.startServer();
                    }
                } catch (Exception x) {
                    failures.add(x);
                }
            });
            Job job = stack.run(Stack.request(uri, stack.volume("pg-restart"), image.virtualSize()));
            assertThat(failures).as("stopping and starting PostgreSQL").isEmpty();
            assertThat(stopped).isTrue();
            assertThat(job.state()).as("%s %s", job.errorCode(), job.errorMessage()).isEqualTo(JobState.COMPLETED);
            assertThat(store.find(job.id()).map(JobStores::asStored)).contains(JobStores.asStored(job));
            Volumes.assertHolds(POOL, stack.volume("pg-restart"), image);

            Job next = stack.run(Stack.request(uri, stack.volume("pg-after"), image.virtualSize()));
            assertThat(next.state()).isEqualTo(JobState.COMPLETED);
            assertThat(store.find(next.id()).orElseThrow().state()).isEqualTo(JobState.COMPLETED);
        }
    }

    // ---- (d) Redis restarted ----

    @Test
    void redisRestartedDuringAJob_jobCompletes_andTheSharedIndexIsReconciled() throws Exception {
        Assumptions.assumeTrue(PrivateRedisServer.available(), "no redis-server binary to run a private Redis");
        TestImage image = ImageSet.get(ImageSet.RAW);
        String uri = Uploads.uri(image);
        Path cacheDir = work.resolve("shared-cache");
        List<Throwable> failures = new CopyOnWriteArrayList<>();
        try (PrivateRedisServer redis = PrivateRedisServer.start(work.resolve("redis"))) {
            RedisConfig.Builder config = RedisConfig.builder().uri(redis.uri())
                    .probeInterval(Duration.ofMillis(200));
            try (Stack stack = Stack.builder(POOL, work.resolve("one")).cacheDirectory(cacheDir)
                    .redis(config, "volprov-it").build()) {
                AtomicBoolean stopped = new AtomicBoolean();
                stack.engine.addListener(e -> {
                    try {
                        if (e.kind() == JobEvent.Kind.PROGRESS && e.job().stage() == Stage.DOWNLOADING
                                && stopped.compareAndSet(false, true)) {
                            redis.stop();
                        } else if (e.kind() == JobEvent.Kind.STAGE && e.job().stage() == Stage.WRITING
                                && stopped.get() && !redis.running()) {
                            redis.restart(); // empty: it keeps nothing on disk
                        }
                    } catch (Exception x) {
                        failures.add(x);
                    }
                });
                Job job = stack.run(Stack.request(uri, stack.volume("redis-restart"), image.virtualSize()));
                assertThat(failures).as("stopping and starting Redis").isEmpty();
                assertThat(job.state()).as("%s %s", job.errorCode(), job.errorMessage()).isEqualTo(JobState.COMPLETED);
                Volumes.assertHolds(POOL, stack.volume("redis-restart"), image);
                assertThat(stack.coordination.outages()).isEqualTo(1);

                // Redis came back empty; the index is rebuilt from the directory.
                assertThat(stack.coordination.reconnect()).isTrue();
                assertThat(stack.coordination.fleet().hostsHolding(image.fileSha256())).containsExactly(Stack.HOST);
            }
            // Another process of the host, through the reconciled index: a hit.
            try (Stack other = Stack.builder(POOL, work.resolve("two")).cacheDirectory(cacheDir)
                    .redis(config, "volprov-it").build()) {
                Job job = other.run(Stack.request(uri, other.volume("redis-after"), image.virtualSize()));
                assertThat(job.state()).isEqualTo(JobState.COMPLETED);
                assertThat(job.cacheHit()).isTrue();
            }
        }
    }
}
