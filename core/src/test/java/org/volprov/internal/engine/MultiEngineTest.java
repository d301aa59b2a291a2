package org.volprov.internal.engine;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.lang.reflect.Field;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.volprov.ErrorCode;
import org.volprov.Job;
import org.volprov.JobEvent;
import org.volprov.JobListener;
import org.volprov.JobState;
import org.volprov.ProvisionRequest;
import org.volprov.Provisioner;
import org.volprov.Stage;
import org.volprov.cache.DiskImageCache;
import org.volprov.image.ImageFormat;
import org.volprov.job.InMemoryJobStore;
import org.volprov.job.JobQueue;
import org.volprov.job.JobStore;
import org.volprov.source.LocalDirectoryImageSource;
import org.volprov.testing.ForwardingVolumeBackend;
import org.volprov.testing.ForwardingVolumeWriter;
import org.volprov.testing.OutageJobQueue;
import org.volprov.testing.SettableClock;
import org.volprov.testing.TestImages;
import org.volprov.volume.FileVolumeBackend;
import org.volprov.volume.VolumeBackend;
import org.volprov.volume.VolumeGuard;
import org.volprov.volume.VolumeInfo;
import org.volprov.volume.VolumeWriter;

/**
 * Several engines on one job store, in one JVM: each engine's leases keep its jobs its own, a lost
 * lease stops a job without touching what is now another engine's, a lease in doubt pauses a job's
 * writes, and ends the store did not take outlive the engine. Real files, a real cache, a real
 * in-memory store shared by the engines; time moves by settable clocks.
 */
class MultiEngineTest {
    private static final long IMAGE_SIZE = 12L << 20;
    private static final long VOLUME_SIZE = 16L << 20;
    private static final Duration LEASE = Duration.ofSeconds(30);
    private static final Duration WAIT = Duration.ofSeconds(60);

    @TempDir
    static Path images;
    static String rawDigest;

    @TempDir
    Path work;
    private SettableClock storeClock;
    private InMemoryJobStore store;
    private FileVolumeBackend volumes;
    private final List<AutoCloseable> toClose = new ArrayList<>();

    @BeforeAll
    static void makeImages() throws Exception {
        Path bucket = Files.createDirectories(images.resolve("images"));
        Path raw = TestImages.raw(bucket.resolve("disk.raw"), IMAGE_SIZE, 21);
        rawDigest = TestImages.sha256(raw);
        Files.writeString(bucket.resolve("disk.raw.sha256"), TestImages.sha256(raw) + "  disk.raw\n",
                StandardCharsets.US_ASCII);
    }

    @BeforeEach
    void setUp() {
        storeClock = new SettableClock(Instant.now());
        store = InMemoryJobStore.builder().host("hv-1").clock(storeClock).build();
        volumes = FileVolumeBackend.open(work.resolve("volumes"));
    }

    @AfterEach
    void tearDown() throws Exception {
        for (int i = toClose.size() - 1; i >= 0; i--) {
            toClose.get(i).close();
        }
    }

    private static ProvisionRequest request(String volume) {
        return ProvisionRequest.builder().imageUri("s3://images/disk.raw").volumeName(volume)
                .volumeSizeBytes(VOLUME_SIZE).format(ImageFormat.RAW).build();
    }

    /** An engine on the shared store (through {@code view}), with a cache directory of its own. */
    private Provisioner.Builder engine(String name, JobStore view, VolumeBackend backend) {
        return Provisioner.builder().source(new LocalDirectoryImageSource(images))
                .cacheDirectory(work.resolve("cache-" + name), 1L << 30).backend(backend).jobStore(view)
                .workDirectory(work).sleeper(d -> { }).watchdogInterval(Duration.ofMillis(20)).jobLease(LEASE);
    }

    private Provisioner start(Provisioner.Builder b) {
        Provisioner p = b.build();
        toClose.add(p);
        return p;
    }

    /** The engine behind a facade, which keeps it to itself: for a look at the engine's leases. */
    private static Engine engineOf(Provisioner p) {
        try {
            Field engine = Provisioner.class.getDeclaredField("engine");
            engine.setAccessible(true);
            return (Engine) engine.get(p);
        } catch (ReflectiveOperationException e) {
            throw new AssertionError("Provisioner no longer holds its Engine in a field named engine", e);
        }
    }

    private boolean holdsImage(String volume) throws IOException {
        Path file = volumes.directory().resolve(volume);
        return Files.size(file) == VOLUME_SIZE && TestImages.sha256(file, IMAGE_SIZE).equals(rawDigest)
                && TestImages.zerosBetween(file, IMAGE_SIZE, VOLUME_SIZE);
    }

    // ---- a live engine's jobs are its own ----

    @Test
    void secondEngineStartingInFailMode_leavesTheFirstEnginesRunningJobAndItsVolumeAlone() throws Exception {
        Paused paused = new Paused();
        Provisioner first = start(engine("a", store, volumes).listener(paused));
        String id = first.submit(request("vm-a"));
        assertThat(paused.reached.await(60, TimeUnit.SECONDS)).as("the first engine writes the volume").isTrue();

        start(engine("b", store, volumes).recoveryMode(Provisioner.RecoveryMode.FAIL));
        assertUntouched_thenCompletedByItsEngine(first, id, paused);
    }

    @Test
    void secondEngineStartingInResumeMode_withTheVolumeBusy_leavesTheFirstEnginesJobAlone() throws Exception {
        VolumeGuard shared = new InProcessVolumeGuard();
        Paused paused = new Paused();
        Provisioner first = start(engine("a", store, volumes).volumeGuard(shared).listener(paused));
        String id = first.submit(request("vm-a"));
        assertThat(paused.reached.await(60, TimeUnit.SECONDS)).isTrue();
        // Even with the lease run out (a stalled renewal), a busy volume guard means a live job: hands off.
        storeClock.advance(LEASE.plusSeconds(1));

        start(engine("b", store, volumes).volumeGuard(shared).recoveryMode(Provisioner.RecoveryMode.RESUME));
        assertUntouched_thenCompletedByItsEngine(first, id, paused);
    }

    /** The first engine's job is as it left it; released, the first engine completes it. */
    private void assertUntouched_thenCompletedByItsEngine(Provisioner first, String id, Paused paused) throws Exception {
        assertThat(store.find(id).orElseThrow().state()).isEqualTo(JobState.RUNNING);
        assertThat(volumes.find("vm-a")).isPresent();
        paused.release.countDown();
        assertThat(first.await(id, WAIT).state()).isEqualTo(JobState.COMPLETED);
        assertThat(store.find(id).orElseThrow().state()).isEqualTo(JobState.COMPLETED);
        assertThat(holdsImage("vm-a")).isTrue();
    }

    @Test
    void twoEnginesStartingAtOnce_eachAbandonedJobIsRecoveredByExactlyOne() throws Exception {
        Instant t = Instant.now();
        List<String> ids = new ArrayList<>();
        for (int i = 0; i < 6; i++) {
            VolumeInfo v = volumes.create("vm-dead-" + i, VOLUME_SIZE);
            Job left = Job.pending("dead-" + i, request("vm-dead-" + i), t).running(t).withVolume(v.path(), true, t);
            store.insert(left, "hv-1-dead", LEASE);
            ids.add(left.id());
        }
        storeClock.advance(LEASE.plusSeconds(1));
        Map<String, AtomicInteger> ended = new ConcurrentHashMap<>();
        JobListener count = e -> {
            if (e.job().state().terminal()) {
                ended.computeIfAbsent(e.job().id(), k -> new AtomicInteger()).incrementAndGet();
            }
        };
        CountDownLatch go = new CountDownLatch(1);
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try {
            List<Future<Provisioner>> engines = new ArrayList<>();
            for (String name : List.of("b", "c")) {
                engines.add(pool.submit(() -> {
                    go.await();
                    return start(engine(name, store, volumes).listener(count));
                }));
            }
            go.countDown();
            for (Future<Provisioner> f : engines) {
                f.get(60, TimeUnit.SECONDS);
            }
        } finally {
            pool.shutdownNow();
        }
        for (String id : ids) {
            assertThat(ended.get(id)).as(id).hasValue(1);
            assertThat(store.find(id).orElseThrow().error()).contains(ErrorCode.INTERRUPTED);
        }
        for (int i = 0; i < 6; i++) {
            assertThat(volumes.find("vm-dead-" + i)).isEmpty();
        }
    }

    // ---- leases lost and in doubt ----

    /** Engine a, on its own clock and its own view of the store, paused between two writes of its job. */
    private record EngineA(Provisioner engine, String jobId, SettableClock clock, ObservedStore view, Paused paused,
                           CountingBackend writes) {
    }

    private EngineA engineAWriting() throws InterruptedException {
        SettableClock clock = new SettableClock(Instant.now());
        ObservedStore view = new ObservedStore(store);
        Paused paused = new Paused();
        CountingBackend writes = new CountingBackend(volumes);
        Provisioner a = start(engine("a", view, writes).clock(clock).listener(paused));
        String id = a.submit(request("vm-a"));
        assertThat(paused.reached.await(60, TimeUnit.SECONDS)).isTrue();
        return new EngineA(a, id, clock, view, paused, writes);
    }

    @Test
    void lostLease_stopsTheJobBeforeItsNextWrite_withoutRollbackOrTerminalWrite_andTheNewHolderFinishesIt()
            throws Exception {
        EngineA ea = engineAWriting();
        SettableClock clockA = ea.clock;
        ObservedStore viewA = ea.view;
        Paused paused = ea.paused;
        CountingBackend writesA = ea.writes;
        Provisioner a = ea.engine;
        String id = ea.jobId;
        int writesBefore = writesA.writes.get();

        // Engine a stalls past its lease (its clock stands still, so it renews nothing); engine b
        // recovers the job and runs it to the end on the same volume.
        storeClock.advance(LEASE.plusSeconds(1));
        Provisioner b = start(engine("b", store, volumes).recoveryMode(Provisioner.RecoveryMode.RESUME));
        Job byB = b.await(id, WAIT);
        assertThat(byB.state()).as("%s %s", byB.errorCode(), byB.errorMessage()).isEqualTo(JobState.COMPLETED);
        assertThat(byB.attempts()).isEqualTo(2);

        // Engine a's next renewal hears that it lost the job; then it moves again.
        clockA.advance(LEASE.dividedBy(3).plusSeconds(1));
        assertThat(viewA.lost.await(60, TimeUnit.SECONDS)).as("the store told engine a").isTrue();
        assertThat(awaitCondition(() -> !engineOf(a).leases.holds(id), WAIT)).as("engine a learnt that it lost the job").isTrue();
        CompletableFuture<Job> endOnA = a.completion(id);
        paused.release.countDown();
        Job byA = endOnA.get(60, TimeUnit.SECONDS);
        assertThat(byA.state()).isEqualTo(JobState.FAILED);
        assertThat(byA.error()).contains(ErrorCode.INTERRUPTED);
        assertThat(byA.errorMessage()).contains("nothing was rolled back");

        assertThat(writesA.writes.get()).as("engine a's writes after it lost the job").isEqualTo(writesBefore);
        assertThat(writesA.finished).isFalse();
        assertThat(viewA.updatesAfterLoss.get()).as("engine a's store writes after it lost the job").isZero();
        assertThat(store.find(id)).contains(byB);
        assertThat(holdsImage("vm-a")).as("engine b's volume, untouched by engine a").isTrue();
    }

    @Test
    void leaseInDoubt_pausesTheJobsWrites_untilTheStoreRenewsIt_thenTheJobCompletes() throws Exception {
        EngineA ea = engineAWriting();
        SettableClock clockA = ea.clock;
        ObservedStore viewA = ea.view;
        Paused paused = ea.paused;
        CountingBackend writesA = ea.writes;
        Provisioner a = ea.engine;
        String id = ea.jobId;
        int writesBefore = writesA.writes.get();

        viewA.down = true;
        clockA.advance(LEASE.plusSeconds(1)); // no renewal can have succeeded for a whole lease
        assertThat(viewA.renewalFailed.await(60, TimeUnit.SECONDS)).isTrue();
        paused.release.countDown();
        assertThat(awaitThreadIn("awaitHeld", WAIT)).as("the job waits at its next write").isTrue();
        assertThat(writesA.writes.get()).isEqualTo(writesBefore);
        assertThat(a.status(id).orElseThrow().state()).isEqualTo(JobState.RUNNING);

        viewA.down = false;
        Job done = a.await(id, WAIT);
        assertThat(done.state()).as("%s %s", done.errorCode(), done.errorMessage()).isEqualTo(JobState.COMPLETED);
        assertThat(writesA.writes.get()).isGreaterThan(writesBefore);
        assertThat(holdsImage("vm-a")).isTrue();
        assertThat(store.find(id).orElseThrow().state()).isEqualTo(JobState.COMPLETED);
    }

    /** Whether a thread is (or gets, within {@code timeout}) parked in a {@link JobLease} method named {@code method}. */
    private static boolean awaitThreadIn(String method, Duration timeout) throws InterruptedException {
        return awaitCondition(() -> Thread.getAllStackTraces().values().stream().flatMap(Arrays::stream)
                .anyMatch(f -> f.getClassName().equals(JobLease.class.getName()) && f.getMethodName().equals(method)),
                timeout);
    }

    /** Whether {@code condition} holds within {@code timeout}, looked at every 10 ms. */
    private static boolean awaitCondition(BooleanSupplier condition, Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() - deadline > 0) {
                return false;
            }
            Thread.sleep(10);
        }
        return true;
    }

    // ---- ends the store did not take ----

    @Test
    void endTheStoreDidNotTake_beforeTheEngineStopped_isWrittenAtTheNextStart_andTheVolumeKept() throws Exception {
        ObservedStore viewA = new ObservedStore(store);
        AtomicBoolean downAtTheEnd = new AtomicBoolean(true);
        Provisioner a = engine("shared", viewA, volumes).listener(e -> {
            if (e.kind() == JobEvent.Kind.STAGE && e.job().stage() == Stage.FINALIZING && downAtTheEnd.get()) {
                viewA.down = true;
            }
        }).build();
        String id = a.submit(request("vm-end"));
        Job done = a.await(id, WAIT);
        assertThat(done.state()).isEqualTo(JobState.COMPLETED);
        a.close();
        assertThat(store.find(id).orElseThrow().state()).as("the store never took the end").isEqualTo(JobState.RUNNING);
        Path state = work.resolve("cache-shared").resolve(DiskImageCache.STATE_DIRECTORY);
        try (var files = Files.list(state)) {
            assertThat(files.filter(f -> f.toString().endsWith(".end"))).hasSize(1);
        }

        // The store is back, the lease has run out: the next engine on that state directory writes
        // the end before it recovers anything.
        storeClock.advance(LEASE.plusSeconds(1));
        start(engine("shared", store, volumes).recoveryMode(Provisioner.RecoveryMode.FAIL));
        assertThat(store.find(id).orElseThrow()).isEqualTo(done);
        assertThat(holdsImage("vm-end")).isTrue();
        try (var files = Files.list(state)) {
            assertThat(files).isEmpty();
        }
    }

    @Test
    void keptEnd_isNeverWrittenOverAnotherEnd_norOverAJobAnotherEngineTookOver() throws Exception {
        Instant t = storeClock.instant();
        Job ended = Job.pending("ended", request("vm-1"), t);
        store.insert(ended, "hv-1-a", LEASE);
        Job failed = ended.running(t).finished(JobState.FAILED, ErrorCode.CANCELLED, "by the caller", t);
        store.update(failed, "hv-1-a");
        Job taken = Job.pending("taken", request("vm-2"), t);
        store.insert(taken, "hv-1-a", LEASE);
        store.update(taken.running(t), "hv-1-a");
        storeClock.advance(LEASE.plusSeconds(1));
        store.takeOver(taken.id(), "hv-1-b", LEASE).orElseThrow();

        EndJournal journal = new EndJournal(work.resolve("state"));
        journal.keep("hv-1-a", ended.running(t).finished(JobState.COMPLETED, null, null, t));
        journal.keep("hv-1-a", taken.running(t).finished(JobState.COMPLETED, null, null, t));
        LeaseKeeper keeper = new LeaseKeeper(store, "hv-1-c", LEASE, storeClock, 20);
        assertThat(new UnrecordedEnds(store, "hv-1-c", journal, keeper).writeAll()).isTrue();
        assertThat(store.find(ended.id())).contains(failed);
        assertThat(store.find(taken.id()).orElseThrow().state()).isEqualTo(JobState.RUNNING);
        assertThat(store.update(taken.running(t), "hv-1-b")).as("still the new holder's").isTrue();
        assertThat(journal.entries()).isEmpty();
    }

    // ---- test parts ----

    /**
     * Parks the job's thread at its first progress event once its volume is open: the job is
     * between two writes (while the image streams onto the volume, or while it is written from the cache).
     */
    static final class Paused implements JobListener {
        final CountDownLatch reached = new CountDownLatch(1);
        final CountDownLatch release = new CountDownLatch(1);
        private final AtomicBoolean once = new AtomicBoolean();

        @Override
        public void onEvent(JobEvent e) {
            boolean writing = e.job().stage() == Stage.WRITING
                    || e.job().stage() == Stage.DOWNLOADING && e.job().volumePath() != null;
            if (e.kind() == JobEvent.Kind.PROGRESS && writing && once.compareAndSet(false, true)) {
                reached.countDown();
                try {
                    release.await(60, TimeUnit.SECONDS);
                } catch (InterruptedException x) {
                    Thread.currentThread().interrupt();
                }
            }
        }
    }

    /** One engine's view of the shared store: it can go down for that engine alone, and tells what it answered. */
    static final class ObservedStore extends OutageJobQueue {
        final CountDownLatch lost = new CountDownLatch(1);
        final CountDownLatch renewalFailed = new CountDownLatch(1);
        final AtomicInteger updatesAfterLoss = new AtomicInteger();

        ObservedStore(JobQueue d) {
            super(d);
        }

        @Override
        public boolean update(Job job, String engine) {
            if (lost.getCount() == 0) {
                updatesAfterLoss.incrementAndGet();
            }
            return super.update(job, engine);
        }

        @Override
        public Set<String> renew(Collection<String> jobIds, String engine, Duration lease) {
            if (down) {
                renewalFailed.countDown();
            }
            Set<String> held = super.renew(jobIds, engine, lease);
            if (held.size() < jobIds.size()) {
                lost.countDown();
            }
            return held;
        }
    }

    /** The real backend; counts the writes its writers make. */
    static final class CountingBackend extends ForwardingVolumeBackend {
        final AtomicInteger writes = new AtomicInteger();
        volatile boolean finished;

        CountingBackend(VolumeBackend d) {
            super(d);
        }

        @Override
        public VolumeWriter openWriter(VolumeInfo volume) {
            return new ForwardingVolumeWriter(delegate.openWriter(volume)) {
                @Override
                public Optional<Path> localPath() {
                    return Optional.empty(); // every byte goes through write()
                }

                @Override
                public void write(ByteBuffer src) throws IOException {
                    writes.incrementAndGet();
                    super.write(src);
                }

                @Override
                public void writeZeros(long length) throws IOException {
                    writes.incrementAndGet();
                    super.writeZeros(length);
                }

                @Override
                public void finish() throws IOException {
                    finished = true;
                    super.finish();
                }
            };
        }
    }
}
