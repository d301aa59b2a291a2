package org.volprov;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.io.InputStream;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.volprov.cache.DiskImageCache;
import org.volprov.image.ImageFormat;
import org.volprov.image.QemuImgConverter;
import org.volprov.job.InMemoryJobStore;
import org.volprov.job.JobQueue;
import org.volprov.source.ImageSource;
import org.volprov.source.LocalDirectoryImageSource;
import org.volprov.source.ObjectInfo;
import org.volprov.testing.ForwardingImageSource;
import org.volprov.testing.ForwardingJobQueue;
import org.volprov.testing.ForwardingVolumeBackend;
import org.volprov.testing.ForwardingVolumeWriter;
import org.volprov.testing.GatedImageSource;
import org.volprov.testing.OutageJobQueue;
import org.volprov.testing.QemuImgWrappers;
import org.volprov.testing.SettableClock;
import org.volprov.testing.SettableTicker;
import org.volprov.testing.TestImages;
import org.volprov.volume.FileVolumeBackend;
import org.volprov.volume.VolumeBackend;
import org.volprov.volume.VolumeGuard;
import org.volprov.volume.VolumeInfo;
import org.volprov.volume.VolumeWriter;

/** The engine against real files, a real cache and real qemu-img; faults come from small decorators. */
class ProvisionerTest {
    private static final long IMAGE_SIZE = 12L << 20;
    private static final long VOLUME_SIZE = 16L << 20;
    private static final Duration WAIT = Duration.ofSeconds(60);
    private static final Duration LEASE = Duration.ofSeconds(30);
    private static final String DEAD_ENGINE = "hv-dead-engine";

    @TempDir
    static Path images;
    static Path rawImage;
    static String rawDigest;

    @TempDir
    Path work;
    private LocalDirectoryImageSource localSource;
    private DiskImageCache cache;
    private FileVolumeBackend backend;
    private InMemoryJobStore store;
    /** The store's clock: leases run out when a test moves it. */
    private SettableClock storeClock;
    private final List<Provisioner> engines = new ArrayList<>();
    private final List<JobEvent> events = new CopyOnWriteArrayList<>();

    @BeforeAll
    static void makeImages() throws Exception {
        Path bucket = Files.createDirectories(images.resolve("images"));
        rawImage = TestImages.raw(bucket.resolve("disk.raw"), IMAGE_SIZE, 11);
        rawDigest = TestImages.sha256(rawImage);
        Path qcow2 = TestImages.qcow2(rawImage, bucket.resolve("disk.qcow2"), false);
        publish(qcow2);
        publish(rawImage);
        Path other = TestImages.qcow2(TestImages.raw(images.resolve("other.raw"), IMAGE_SIZE, 12),
                bucket.resolve("other.qcow2"), false);
        publish(other);
        Path bad = Files.copy(qcow2, bucket.resolve("bad.qcow2"));
        Files.writeString(bucket.resolve("bad.qcow2.sha256"), "0".repeat(64) + "  bad.qcow2\n");
        Path unpublished = Files.copy(qcow2, bucket.resolve("unpublished.qcow2"));
        assertThat(unpublished).exists();
        // An overlay with data of its own, so that its download is long enough to be stopped early.
        Path overlay = TestImages.qcow2WithBacking(qcow2, bucket.resolve("overlay.qcow2"));
        TestImages.run(List.of("qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 8M", overlay.toString()));
        publish(overlay);
        publish(TestImages.qcow2CorruptPastHeader(qcow2, bucket.resolve("corrupt.qcow2")));
    }

    private static void publish(Path image) throws IOException {
        TestImages.publishChecksum(image);
    }

    @BeforeEach
    void setUp() {
        localSource = new LocalDirectoryImageSource(images);
        cache = DiskImageCache.builder().directory(work.resolve("cache")).maxBytes(1L << 30).build();
        backend = FileVolumeBackend.open(work.resolve("volumes"));
        storeClock = new SettableClock();
        store = InMemoryJobStore.builder().clock(storeClock).build();
    }

    @AfterEach
    void tearDown() {
        engines.forEach(Provisioner::close);
        cache.close();
    }

    private Provisioner.Builder engine(ImageSource source) {
        return Provisioner.builder().source(source).cache(cache).backend(backend).jobStore(store)
                .workDirectory(work).listener(events::add);
    }

    private Provisioner start(Provisioner.Builder b) {
        Provisioner p = b.build();
        engines.add(p);
        return p;
    }

    private static ProvisionRequest request(String image, String volume) {
        return ProvisionRequest.builder().imageUri("s3://images/" + image).volumeName(volume)
                .volumeSizeBytes(VOLUME_SIZE).correlationId("c-" + volume).build();
    }

    private Job run(Provisioner p, ProvisionRequest r) {
        Job job = p.await(p.submit(r), WAIT);
        assertThat(job.state().terminal()).as("job ended").isTrue();
        return job;
    }

    private void assertVolumeHoldsImage(String volume) throws IOException {
        Path file = work.resolve("volumes").resolve(volume);
        assertThat(Files.size(file)).isEqualTo(VOLUME_SIZE);
        assertThat(TestImages.sha256(file, IMAGE_SIZE)).isEqualTo(rawDigest);
        assertThat(TestImages.zerosBetween(file, IMAGE_SIZE, VOLUME_SIZE)).as("tail reads as zeros").isTrue();
    }

    @Test
    void qcow2Image_isProvisioned_throughEveryStage_andRecorded() throws Exception {
        Provisioner p = start(engine(localSource));
        Job job = run(p, request("disk.qcow2", "vm-1"));

        assertThat(job.state()).isEqualTo(JobState.COMPLETED);
        assertThat(job.error()).isEmpty();
        assertThat(job.cacheHit()).isFalse();
        assertThat(job.imageDigest()).isEqualTo(TestImages.sha256(images.resolve("images/disk.qcow2")));
        assertThat(job.volumePath()).isEqualTo(work.resolve("volumes/vm-1").toString());
        assertThat(job.createdVolume()).isTrue();
        assertThat(job.finishedAt()).isNotNull();
        assertVolumeHoldsImage("vm-1");
        assertThat(store.find(job.id())).contains(job);

        List<Stage> stages = events.stream().filter(e -> e.kind() == JobEvent.Kind.STAGE)
                .map(e -> e.job().stage()).distinct().toList();
        assertThat(stages).containsExactly(Stage.RESOLVING, Stage.DOWNLOADING, Stage.INSPECTING,
                Stage.CREATING_VOLUME, Stage.WRITING, Stage.FINALIZING);
        assertThat(events).filteredOn(e -> e.kind() == JobEvent.Kind.PROGRESS && e.job().stage() == Stage.DOWNLOADING)
                .last().satisfies(e -> assertThat(e.job().progress().bytesDone())
                        .isEqualTo(Files.size(images.resolve("images/disk.qcow2"))));
        assertThat(events).filteredOn(e -> e.kind() == JobEvent.Kind.STATE).extracting(e -> e.job().state())
                .containsExactly(JobState.PENDING, JobState.RUNNING, JobState.COMPLETED);
    }

    @Test
    void secondRequestForTheSameImage_isACacheHit() throws Exception {
        Provisioner p = start(engine(localSource));
        assertThat(run(p, request("disk.qcow2", "vm-a")).cacheHit()).isFalse();
        Job second = run(p, request("disk.qcow2", "vm-b"));
        assertThat(second.state()).isEqualTo(JobState.COMPLETED);
        assertThat(second.cacheHit()).isTrue();
        assertVolumeHoldsImage("vm-b");
        assertThat(p.cacheStats().misses()).isEqualTo(1);
    }

    @Test
    void imageWithoutPublishedChecksum_isDigestedAndHitTheSecondTime() {
        Provisioner p = start(engine(localSource));
        Job first = run(p, request("unpublished.qcow2", "vm-u1"));
        assertThat(first.state()).isEqualTo(JobState.COMPLETED);
        assertThat(run(p, request("unpublished.qcow2", "vm-u2")).cacheHit()).isTrue();
    }

    @Test
    void rawImage_isCopied() throws Exception {
        Provisioner p = start(engine(localSource));
        Job job = run(p, ProvisionRequest.builder().imageUri("s3://images/disk.raw").volumeName("vm-raw")
                .volumeSizeBytes(VOLUME_SIZE).format(ImageFormat.RAW).build());
        assertThat(job.state()).isEqualTo(JobState.COMPLETED);
        assertVolumeHoldsImage("vm-raw");
    }

    @Test
    void existingVolume_withinTolerance_isReused_andEarlierDataOverwritten() throws Exception {
        VolumeInfo v = backend.create("vm-old", VOLUME_SIZE + 4096);
        try (RandomAccessFile f = new RandomAccessFile(v.path(), "rw")) {
            byte[] junk = new byte[1 << 20];
            java.util.Arrays.fill(junk, (byte) 0x77);
            for (long off = 0; off < VOLUME_SIZE + 4096; off += junk.length) {
                f.seek(off);
                f.write(junk, 0, (int) Math.min(junk.length, VOLUME_SIZE + 4096 - off));
            }
        }
        Provisioner p = start(engine(localSource).sizeToleranceBytes(8192));
        Job job = run(p, request("disk.qcow2", "vm-old"));
        assertThat(job.state()).isEqualTo(JobState.COMPLETED);
        assertThat(job.createdVolume()).isFalse();
        Path file = Path.of(v.path());
        assertThat(TestImages.sha256(file, IMAGE_SIZE)).isEqualTo(rawDigest);
        assertThat(TestImages.zerosBetween(file, IMAGE_SIZE, VOLUME_SIZE + 4096)).isTrue();
    }

    @Test
    void existingVolume_thatTheBackendRoundedUp_isReusedForTheSameRequest_andWrittenToItsEnd() throws Exception {
        // A pool that allocates in 64 KiB units, as a disk partition ends on a sector and an LV on an extent.
        long unit = 64 << 10;
        VolumeBackend rounding = new ForwardingVolumeBackend(backend) {
            @Override
            public long capacityFor(long requestedBytes) {
                return (requestedBytes + unit - 1) / unit * unit;
            }

            @Override
            public VolumeInfo create(String name, long capacityBytes) {
                return delegate.create(name, capacityFor(capacityBytes));
            }
        };
        long size = VOLUME_SIZE + 1000;
        ProvisionRequest r = ProvisionRequest.builder().imageUri("s3://images/disk.qcow2").volumeName("vm-rounded")
                .volumeSizeBytes(size).build();
        Provisioner p = start(engine(localSource).backend(rounding));
        Job first = run(p, r);
        assertThat(first.state()).as("%s", first.errorMessage()).isEqualTo(JobState.COMPLETED);
        long capacity = backend.find("vm-rounded").orElseThrow().capacityBytes();
        assertThat(capacity).isEqualTo(VOLUME_SIZE + unit);
        Job again = run(p, r);
        assertThat(again.state()).as("%s %s", again.errorCode(), again.errorMessage()).isEqualTo(JobState.COMPLETED);
        assertThat(again.createdVolume()).isFalse();
        Path file = work.resolve("volumes").resolve("vm-rounded");
        assertThat(TestImages.sha256(file, IMAGE_SIZE)).isEqualTo(rawDigest);
        assertThat(TestImages.zerosBetween(file, IMAGE_SIZE, capacity)).as("zeros up to the real end").isTrue();

        Job larger = run(p, ProvisionRequest.builder().imageUri("s3://images/disk.qcow2").volumeName("vm-rounded")
                .volumeSizeBytes(VOLUME_SIZE - unit).build());
        assertThat(larger.error()).as("a volume larger than what the request would make").contains(ErrorCode.VOLUME_CONFLICT);
    }

    @Test
    void existingVolume_ofAnotherSize_failsWithConflict_andIsLeftAlone() {
        backend.create("vm-big", VOLUME_SIZE * 2);
        Provisioner p = start(engine(localSource));
        Job job = run(p, request("disk.qcow2", "vm-big"));
        assertThat(job.error()).contains(ErrorCode.VOLUME_CONFLICT);
        assertThat(job.errorMessage()).contains("vm-big").contains(Long.toString(VOLUME_SIZE * 2));
        assertThat(backend.find("vm-big")).isPresent();
    }

    @Test
    void imageLargerThanTheVolume_failsBeforeAnyVolumeIsCreated() {
        Provisioner p = start(engine(localSource));
        Job job = run(p, ProvisionRequest.builder().imageUri("s3://images/disk.qcow2").volumeName("vm-small")
                .volumeSizeBytes(IMAGE_SIZE - 1).build());
        assertThat(job.error()).contains(ErrorCode.VOLUME_TOO_SMALL);
        assertThat(job.errorMessage()).contains(Long.toString(IMAGE_SIZE));
        assertThat(backend.find("vm-small")).isEmpty();
    }

    @Test
    void checksumMismatch_failsAndLeavesNothing() throws IOException {
        Provisioner p = start(engine(localSource));
        Job job = run(p, request("bad.qcow2", "vm-bad"));
        assertThat(job.error()).contains(ErrorCode.CHECKSUM_MISMATCH);
        assertThat(backend.find("vm-bad")).isEmpty();
        assertThat(p.cacheStats().entries()).isZero();
        try (var files = Files.list(work.resolve("cache"))) {
            assertThat(files.map(f -> f.getFileName().toString())).noneMatch(n -> n.contains("tmp"));
        }
    }

    @Test
    void imageWithABackingFile_isRefusedFromItsFirstBytes_theRestIsNotFetched_andNothingIsCached()
            throws IOException {
        AtomicLong read = new AtomicLong();
        ImageSource counting = new ForwardingImageSource(localSource) {
            @Override
            public InputStream open(ImageRef ref, String etag, long offset, long length) {
                return new java.io.FilterInputStream(delegate.open(ref, etag, offset, length)) {
                    @Override
                    public int read(byte[] b, int off, int len) throws IOException {
                        int n = super.read(b, off, len);
                        read.addAndGet(Math.max(n, 0));
                        return n;
                    }
                };
            }
        };
        Provisioner p = start(engine(counting).bufferSize(64 << 10));
        Job job = run(p, request("overlay.qcow2", "vm-overlay"));

        assertThat(job.error()).contains(ErrorCode.UNSUPPORTED_IMAGE);
        assertThat(job.errorMessage()).contains("backing file").contains("flatten");
        assertThat(read.get()).as("bytes fetched").isLessThanOrEqualTo(64 << 10)
                .isLessThan(Files.size(images.resolve("images/overlay.qcow2")));
        assertThat(p.cacheStats().admissions()).isZero();
        assertThat(p.cacheStats().entries()).isZero();
        assertThat(cacheFiles()).isEmpty();
        assertThat(backend.find("vm-overlay")).isEmpty();
    }

    @Test
    void imageCorruptPastItsHeader_isRefusedWhileItStreams_andNothingEntersTheCache() throws IOException {
        Provisioner p = start(engine(localSource));
        Job job = run(p, request("corrupt.qcow2", "vm-corrupt"));

        assertThat(job.error()).contains(ErrorCode.UNSUPPORTED_IMAGE);
        assertThat(job.errorMessage()).contains("corrupt").contains("L1 entry 0");
        // The decoder refuses the table as it arrives: the download stops there, before admission.
        assertThat(p.cacheStats().admissions()).isZero();
        assertThat(p.cacheStats().entries()).isZero();
        assertThat(p.cacheStats().bytesInUse()).isZero();
        assertThat(cacheFiles()).isEmpty();
        assertThat(backend.find("vm-corrupt")).isEmpty();
    }

    @Test
    void imageOfAnotherFormatThanRequested_isRefused_butStaysCachedForRightRequests() {
        Provisioner p = start(engine(localSource));
        assertThat(run(p, request("disk.qcow2", "vm-f1")).state()).isEqualTo(JobState.COMPLETED);
        Job wrong = run(p, ProvisionRequest.builder().imageUri("s3://images/disk.qcow2").volumeName("vm-f2")
                .volumeSizeBytes(VOLUME_SIZE).format(ImageFormat.RAW).build());
        assertThat(wrong.error()).contains(ErrorCode.UNSUPPORTED_IMAGE);
        assertThat(wrong.errorMessage()).contains("the request says RAW");
        assertThat(p.cacheStats().entries()).isOne();
    }

    /** Files in the cache directory other than its lock file. */
    private List<String> cacheFiles() throws IOException {
        try (var files = Files.list(work.resolve("cache"))) {
            return files.map(f -> f.getFileName().toString())
                    .filter(n -> !n.equals("lock") && !n.equals(DiskImageCache.STATE_DIRECTORY)).toList();
        }
    }

    @Test
    void missingImage_failsWithImageNotFound() {
        Provisioner p = start(engine(localSource));
        Job job = run(p, request("nope.qcow2", "vm-x"));
        assertThat(job.error()).contains(ErrorCode.IMAGE_NOT_FOUND);
        assertThat(job.errorMessage()).contains("s3://images/nope.qcow2");
    }

    @Test
    void failureAfterTheJobCreatedTheVolume_deletesIt() {
        Provisioner p = start(engine(localSource).backend(new FailingWriterBackend(backend)));
        Job job = run(p, request("disk.qcow2", "vm-new"));
        assertThat(job.error()).contains(ErrorCode.BACKEND_FAILURE);
        assertThat(job.errorMessage()).contains("was deleted");
        assertThat(backend.find("vm-new")).isEmpty();
    }

    @Test
    void failureOnAVolumeThatExistedBefore_leavesIt_andSaysSo() {
        backend.create("vm-keep", VOLUME_SIZE);
        Provisioner p = start(engine(localSource).backend(new FailingWriterBackend(backend)));
        Job job = run(p, request("disk.qcow2", "vm-keep"));
        assertThat(job.error()).contains(ErrorCode.BACKEND_FAILURE);
        assertThat(job.errorMessage()).contains("existed before this job").contains("partial data");
        assertThat(backend.find("vm-keep")).isPresent();
    }

    @Test
    void submitBeyondTheQueue_failsAtOnceWithQueueFull() throws Exception {
        GatedImageSource gated = new GatedImageSource(localSource);
        Provisioner p = start(engine(gated).maxConcurrentJobs(1).queueCapacity(1));
        String running = p.submit(request("disk.qcow2", "q-1"));
        assertThat(gated.opened.await(30, TimeUnit.SECONDS)).isTrue();
        String queued = p.submit(request("disk.qcow2", "q-2"));
        long t0 = System.nanoTime();
        assertThatThrownBy(() -> p.submit(request("disk.qcow2", "q-3")))
                .isInstanceOf(ProvisioningException.class)
                .satisfies(e -> assertThat(((ProvisioningException) e).code()).isEqualTo(ErrorCode.QUEUE_FULL));
        long refusedIn = System.nanoTime() - t0;
        assertThat(p.status(queued).orElseThrow().state()).isEqualTo(JobState.PENDING);
        assertThat(p.queueDepth()).isEqualTo(1);
        gated.release.countDown();
        assertThat(p.await(running, WAIT).state()).isEqualTo(JobState.COMPLETED);
        assertThat(p.await(queued, WAIT).state()).isEqualTo(JobState.COMPLETED);
        // Refusing took no longer than the whole queued job did: the caller never waited for a slot.
        Job q = p.status(queued).orElseThrow();
        assertThat(refusedIn).isLessThan(Duration.between(q.startedAt(), q.finishedAt()).toNanos() + 1);
    }

    @Test
    void secondJobForABusyVolume_failsWithVolumeBusy_untilTheFirstEnds() throws Exception {
        GatedImageSource gated = new GatedImageSource(localSource);
        Provisioner p = start(engine(gated));
        String first = p.submit(request("disk.qcow2", "busy"));
        assertThatThrownBy(() -> p.submit(request("other.qcow2", "busy")))
                .isInstanceOf(ProvisioningException.class)
                .satisfies(e -> assertThat(((ProvisioningException) e).code()).isEqualTo(ErrorCode.VOLUME_BUSY));
        gated.release.countDown();
        p.await(first, WAIT);
        backend.delete("busy");
        assertThat(run(p, request("other.qcow2", "busy")).state()).isEqualTo(JobState.COMPLETED);
    }

    @Test
    void transientFailures_areRetriedWithExponentialBackoff_onTheInjectedClock() {
        SettableClock clock = new SettableClock();
        List<Duration> sleeps = Collections.synchronizedList(new ArrayList<>());
        FlakySource flaky = new FlakySource(localSource, 3, clock);
        Provisioner p = start(engine(flaky).clock(clock).sleeper(d -> {
            sleeps.add(d);
            clock.advance(d);
        }).retryPolicy(new RetryPolicy(5, Duration.ofSeconds(1), Duration.ofSeconds(30), Duration.ofMinutes(10), 0)));
        Job job = run(p, request("disk.qcow2", "vm-retry"));
        assertThat(job.state()).isEqualTo(JobState.COMPLETED);
        assertThat(flaky.statCalls.get()).isEqualTo(4);
        List<Duration> gaps = new ArrayList<>();
        for (int i = 1; i < flaky.statTimes.size(); i++) {
            gaps.add(Duration.between(flaky.statTimes.get(i - 1), flaky.statTimes.get(i)));
        }
        assertThat(gaps).containsExactly(Duration.ofSeconds(1), Duration.ofSeconds(2), Duration.ofSeconds(4));
        assertThat(sleeps.stream().reduce(Duration.ZERO, Duration::plus)).isEqualTo(Duration.ofSeconds(7));
    }

    @Test
    void transientFailuresBeyondTheBudget_failWithSourceUnavailable() {
        SettableClock clock = new SettableClock();
        Provisioner p = start(engine(new FlakySource(localSource, 100, clock)).clock(clock).sleeper(clock::advance)
                .retryPolicy(new RetryPolicy(4, Duration.ofSeconds(1), Duration.ofSeconds(30), Duration.ofMinutes(10), 0)));
        Job job = run(p, request("disk.qcow2", "vm-down"));
        assertThat(job.error()).contains(ErrorCode.SOURCE_UNAVAILABLE);
        assertThat(job.errorMessage()).contains("after 4 attempts");
        assertThat(backend.find("vm-down")).isEmpty();
    }

    @Test
    void brokenDownload_resumesFromTheLastByteWritten() throws Exception {
        DroppingSource dropping = new DroppingSource(localSource, 5_000_000);
        Provisioner p = start(engine(dropping).sleeper(d -> { }));
        Job job = run(p, request("disk.qcow2", "vm-resume"));
        assertThat(job.state()).isEqualTo(JobState.COMPLETED);
        assertVolumeHoldsImage("vm-resume");
        assertThat(dropping.offsets).containsExactly(0L, 5_000_000L);
    }

    @Test
    void parallelDownload_givesTheSameBytes() throws Exception {
        Provisioner p = start(engine(localSource).parallelDownload(3, 1 << 20));
        Job job = run(p, request("disk.qcow2", "vm-par"));
        assertThat(job.state()).isEqualTo(JobState.COMPLETED);
        assertVolumeHoldsImage("vm-par");
    }

    @Test
    void cancel_stopsARunningDownloadPromptly_andLeavesNothing() throws Exception {
        GatedImageSource gated = new GatedImageSource(localSource);
        Provisioner p = start(engine(gated));
        String id = p.submit(request("disk.qcow2", "vm-cancel"));
        assertThat(gated.opened.await(30, TimeUnit.SECONDS)).isTrue();
        assertThat(p.cancel(id)).isTrue();
        Job job = p.await(id, Duration.ofSeconds(10));
        assertThat(job.state()).isEqualTo(JobState.CANCELLED);
        assertThat(job.error()).contains(ErrorCode.CANCELLED);
        assertThat(backend.find("vm-cancel")).isEmpty();
        assertThat(p.cacheStats().entries()).isZero();
        assertThat(p.cancel(id)).isFalse();
    }

    @Test
    void volumeLockLostMidWrite_jobStopsBeforeItsNextWrite_failsVolumeBusy_andLeavesTheVolume() throws Exception {
        PausingWriterBackend pausing = new PausingWriterBackend(backend);
        LosableGuard guard = new LosableGuard();
        Provisioner p = start(engine(localSource).backend(pausing).volumeGuard(guard));
        String id = p.submit(request("disk.raw", "vm-fenced"));
        assertThat(pausing.firstWritten.await(30, TimeUnit.SECONDS)).isTrue();

        guard.lose("vm-fenced", "another process holds it now");
        pausing.resume.countDown();

        Job job = p.await(id, WAIT);
        assertThat(job.state()).isEqualTo(JobState.FAILED);
        assertThat(job.error()).contains(ErrorCode.VOLUME_BUSY);
        assertThat(job.errorMessage()).contains("lost the lock on volume vm-fenced to another process")
                .contains("another process holds it now").contains("not deleted");
        assertThat(pausing.writes).as("no write after the loss").hasValue(1);
        assertThat(backend.find("vm-fenced")).as("the new holder's volume").isPresent();
    }

    @Test
    void volumeLockLostWhileQemuImgConverts_theWatchdogKillsIt_andTheJobFailsVolumeBusy() throws Exception {
        // A qemu-img that stops itself before converting: only a kill ends it.
        Path wrapper = QemuImgWrappers.stoppingBefore(work, "convert");
        LosableGuard guard = new LosableGuard();
        Provisioner p = start(engine(localSource).volumeGuard(guard).watchdogInterval(Duration.ofMillis(20))
                .converter(QemuImgConverter.builder().executable(wrapper.toString()).build()));
        String id = p.submit(request("disk.qcow2", "vm-fenced-convert"));
        ProcessHandle convert = QemuImgWrappers.awaitStopped(wrapper, Duration.ofSeconds(30));

        guard.lose("vm-fenced-convert", "another process holds it now");

        Job job = p.await(id, WAIT);
        assertThat(job.error()).contains(ErrorCode.VOLUME_BUSY);
        assertThat(job.errorMessage()).contains("lost the lock on volume vm-fenced-convert");
        assertThat(convert.onExit().get(10, TimeUnit.SECONDS).isAlive()).isFalse();
        assertThat(backend.find("vm-fenced-convert")).isPresent();
    }

    @Test
    void cancel_ofAQueuedJob_endsItWithoutRunning() throws Exception {
        GatedImageSource gated = new GatedImageSource(localSource);
        Provisioner p = start(engine(gated).maxConcurrentJobs(1));
        String first = p.submit(request("disk.qcow2", "c-1"));
        String queued = p.submit(request("disk.qcow2", "c-2"));
        assertThat(p.cancel(queued)).isTrue();
        assertThat(p.await(queued, WAIT).state()).isEqualTo(JobState.CANCELLED);
        assertThat(p.status(queued).orElseThrow().startedAt()).isNull();
        gated.release.countDown();
        assertThat(p.await(first, WAIT).state()).isEqualTo(JobState.COMPLETED);
    }

    @Test
    void givenScheduler_runsTheEnginesDeadlineChecks_andCloseCancelsTheTasksButLeavesItRunning() throws Exception {
        ScheduledThreadPoolExecutor scheduler = new ScheduledThreadPoolExecutor(3);
        scheduler.setRemoveOnCancelPolicy(true);
        try {
            SettableClock clock = new SettableClock();
            GatedImageSource gated = new GatedImageSource(localSource);
            Provisioner p = start(engine(gated).clock(clock).jobTimeout(Duration.ofMinutes(30))
                    .watchdogInterval(Duration.ofMillis(20)).scheduler(scheduler));
            assertThat(scheduler.getQueue()).as("the engine's periodic tasks").hasSize(3);
            String id = p.submit(request("disk.qcow2", "vm-scheduled"));
            assertThat(gated.opened.await(30, TimeUnit.SECONDS)).isTrue();
            clock.advance(Duration.ofMinutes(31));
            Job job = p.await(id, Duration.ofSeconds(10));
            assertThat(job.error()).as("the deadline was checked on the given scheduler").contains(ErrorCode.TIMED_OUT);

            p.close();
            assertThat(scheduler.isShutdown()).isFalse();
            assertThat(scheduler.getQueue()).as("the engine's tasks after close").isEmpty();
        } finally {
            scheduler.shutdownNow();
        }
    }

    @Test
    void timeout_countsFromStart_onTheInjectedClock_andEndsTheJobTimedOut() throws Exception {
        SettableClock clock = new SettableClock();
        GatedImageSource gated = new GatedImageSource(localSource);
        Provisioner p = start(engine(gated).clock(clock).jobTimeout(Duration.ofMinutes(30))
                .watchdogInterval(Duration.ofMillis(20)));
        String id = p.submit(request("disk.qcow2", "vm-slow"));
        assertThat(gated.opened.await(30, TimeUnit.SECONDS)).isTrue();
        clock.advance(Duration.ofMinutes(29));
        assertThat(p.await(id, Duration.ofMillis(300)).state()).isEqualTo(JobState.RUNNING);
        clock.advance(Duration.ofMinutes(2));
        Job job = p.await(id, Duration.ofSeconds(10));
        assertThat(job.state()).isEqualTo(JobState.FAILED);
        assertThat(job.error()).contains(ErrorCode.TIMED_OUT);
        assertThat(backend.find("vm-slow")).isEmpty();
    }

    @Test
    void submit_refusesRequestsBeyondTheEnginesLimits() {
        Provisioner p = start(engine(localSource).maxVolumeBytes(1L << 30));
        assertThatThrownBy(() -> p.submit(ProvisionRequest.builder().imageUri("s3://images/disk.qcow2")
                .volumeName("vm-huge").volumeSizeBytes(2L << 30).build()))
                .hasMessageStartingWith("volumeSizeBytes:");
        assertThatThrownBy(() -> p.submit(ProvisionRequest.builder().imageUri("http://10.0.0.1/images/disk.qcow2")
                .volumeName("vm-h").volumeSizeBytes(1 << 20).build()))
                .hasMessageStartingWith("imageUri:");
        assertThat(store.list(JobFilter.all())).isEmpty();
    }

    /** A job an engine that died left running, after it created the volume; its lease runs until the store's clock moves. */
    private void leftRunningByADeadEngine(String id, String volume) {
        Instant t = Instant.now();
        VolumeInfo v = backend.create(volume, VOLUME_SIZE);
        store.insert(Job.pending(id, request("disk.qcow2", volume), t).running(t).withVolume(v.path(), true, t),
                DEAD_ENGINE, LEASE);
    }

    @Test
    void start_failsJobsAnEarlierProcessLeftRunning_andDeletesVolumesTheyCreated() {
        leftRunningByADeadEngine("left-1", "vm-left");
        store.insert(Job.pending("left-2", request("disk.qcow2", "vm-left2"), Instant.now()), DEAD_ENGINE, LEASE);
        storeClock.advance(LEASE.plusSeconds(1));

        start(engine(localSource));
        Job failed = store.find("left-1").orElseThrow();
        assertThat(failed.state()).isEqualTo(JobState.FAILED);
        assertThat(failed.error()).contains(ErrorCode.INTERRUPTED);
        assertThat(backend.find("vm-left")).isEmpty();
        assertThat(store.find("left-2").orElseThrow().error()).contains(ErrorCode.INTERRUPTED);
    }

    @Test
    void start_resumesJobsAnEarlierProcessLeftRunning_whenAskedTo() throws Exception {
        leftRunningByADeadEngine("left-3", "vm-again");
        storeClock.advance(LEASE.plusSeconds(1));

        Provisioner p = start(engine(localSource).recoveryMode(Provisioner.RecoveryMode.RESUME));
        Job job = p.await("left-3", WAIT);
        assertThat(job.state()).isEqualTo(JobState.COMPLETED);
        assertThat(job.attempts()).isEqualTo(2);
        assertThat(job.createdVolume()).isTrue();
        assertVolumeHoldsImage("vm-again");
    }

    @Test
    void cacheDirectory_opensADiskCacheOwnedByTheEngine() {
        Path dir = work.resolve("own-cache");
        Provisioner p = Provisioner.builder().source(localSource).backend(backend).cacheDirectory(dir, 1L << 30)
                .build();
        try {
            assertThat(p.await(p.submit(request("disk.qcow2", "vm-own")), WAIT).state()).isEqualTo(JobState.COMPLETED);
        } finally {
            p.close();
        }
        // Closed with the engine: the directory can be opened again at once.
        DiskImageCache.builder().directory(dir).maxBytes(1L << 30).build().close();
    }

    @Test
    void build_withoutRequiredParts_namesTheMissingOne() {
        assertThatThrownBy(() -> Provisioner.builder().source(localSource).backend(backend).build())
                .isInstanceOf(IllegalStateException.class).hasMessageContaining("cache");
        assertThatThrownBy(() -> Provisioner.builder().source(localSource).cacheDirectory(work.resolve("c2"), 1 << 30)
                .build())
                .isInstanceOf(IllegalStateException.class).hasMessageContaining("backend");
        assertThatThrownBy(() -> Provisioner.builder().maxConcurrentJobs(0)).hasMessageContaining("maxConcurrentJobs");
    }

    @Test
    void close_isIdempotent_andRefusesNewWork() {
        Provisioner p = start(engine(localSource));
        p.close();
        p.close();
        assertThatThrownBy(() -> p.submit(request("disk.qcow2", "vm-late"))).isInstanceOf(IllegalStateException.class);
    }

    @Test
    void close_inCancelMode_cancelsRunningJobs() throws Exception {
        GatedImageSource gated = new GatedImageSource(localSource);
        Provisioner p = start(engine(gated).shutdown(Provisioner.ShutdownMode.CANCEL, Duration.ZERO));
        String id = p.submit(request("disk.qcow2", "vm-closing"));
        assertThat(gated.opened.await(30, TimeUnit.SECONDS)).isTrue();
        p.close();
        assertThat(store.find(id).orElseThrow().state()).isEqualTo(JobState.CANCELLED);
        assertThat(backend.find("vm-closing")).isEmpty();
    }

    @Test
    void aFailingListener_doesNotAffectTheJob() {
        Provisioner p = start(engine(localSource).listener(e -> {
            throw new IllegalStateException("listener bug");
        }));
        assertThat(run(p, request("disk.qcow2", "vm-l")).state()).isEqualTo(JobState.COMPLETED);
    }

    @Test
    void storeDownDuringAJob_jobGoesOn_progressWritesAreSpaced_andTheEndIsRecorded() throws Exception {
        OutageJobQueue down = new OutageJobQueue(store);
        AtomicInteger progressWhileDown = new AtomicInteger();
        AtomicInteger stagesWhileDown = new AtomicInteger();
        // Time stands still: a progress write is never due again while the store is down, however slow the machine.
        Provisioner p = start(engine(localSource).jobStore(down).ticker(new SettableTicker()).listener(e -> {
            if (down.down) {
                (e.kind() == JobEvent.Kind.PROGRESS ? progressWhileDown : stagesWhileDown).incrementAndGet();
            }
            if (e.kind() == JobEvent.Kind.PROGRESS && e.job().stage() == Stage.DOWNLOADING) {
                down.down = true;
            }
            if (e.kind() == JobEvent.Kind.STAGE && e.job().stage() == Stage.FINALIZING) {
                down.down = false;
            }
        }));
        Job job = run(p, request("disk.qcow2", "vm-store-down"));

        assertThat(job.state()).isEqualTo(JobState.COMPLETED);
        assertThat(store.find(job.id()).orElseThrow().state()).as("recorded once the store is back")
                .isEqualTo(JobState.COMPLETED);
        assertThat(progressWhileDown.get()).as("progress events while the store was down").isGreaterThanOrEqualTo(5);
        // Each stage change (and the volume's record) is tried; progress once per retry interval at most.
        assertThat(down.failed.get()).as("writes tried while the store was down")
                .isBetween(1, stagesWhileDown.get() + 2);
        assertVolumeHoldsImage("vm-store-down");
    }

    @Test
    void storeDownWhenTheJobEnds_theEndIsWrittenOnceTheStoreIsBack_atTheLatestOnClose() throws Exception {
        OutageJobQueue down = new OutageJobQueue(store);
        Provisioner p = start(engine(localSource).jobStore(down).sleeper(d -> { }).listener(e -> {
            if (e.kind() == JobEvent.Kind.STAGE && e.job().stage() == Stage.FINALIZING) {
                down.down = true;
            }
        }));
        Job job = run(p, request("disk.qcow2", "vm-end-late"));

        assertThat(job.state()).isEqualTo(JobState.COMPLETED);
        assertThat(store.find(job.id()).orElseThrow().state()).as("in the store while it is down")
                .isEqualTo(JobState.RUNNING);
        assertThat(p.status(job.id()).orElseThrow().state()).as("what the engine reports").isEqualTo(JobState.COMPLETED);
        down.down = false;
        p.close();
        assertThat(store.find(job.id()).orElseThrow()).isEqualTo(job);
    }

    @Test
    void watchdog_timesOutAJobOnTime_whileTheStoreHangsOnAnotherJobsEnd() throws Exception {
        SettableClock clock = new SettableClock();
        CountDownLatch partitionOver = new CountDownLatch(1);
        CountDownLatch hanging = new CountDownLatch(1);
        AtomicBoolean hang = new AtomicBoolean();
        // The first job's end does not reach the store; then writing it again hangs, as a write to a
        // partitioned database does.
        OutageJobQueue partitioned = new OutageJobQueue(store) {
            @Override
            public boolean update(Job job, String engine) {
                if (job.request().volumeName().equals("vm-first") && job.state().terminal()) {
                    if (hang.get()) {
                        hanging.countDown();
                        try {
                            partitionOver.await(60, TimeUnit.SECONDS);
                        } catch (InterruptedException e) {
                            Thread.currentThread().interrupt();
                        }
                    }
                    throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "no route to the database");
                }
                return super.update(job, engine);
            }
        };
        KeyGatedSource source = new KeyGatedSource(localSource, "other.qcow2");
        SettableTicker ticker = new SettableTicker();
        Provisioner p = start(engine(source).jobStore(partitioned).clock(clock).ticker(ticker).sleeper(d -> { })
                .watchdogInterval(Duration.ofMillis(20)).jobTimeout(Duration.ofMinutes(1)));
        try {
            String second = p.submit(request("other.qcow2", "vm-second"));
            assertThat(source.gate.opened.await(30, TimeUnit.SECONDS)).isTrue();
            Job first = p.await(p.submit(request("disk.qcow2", "vm-first")), WAIT);
            assertThat(first.state()).isEqualTo(JobState.COMPLETED);
            hang.set(true);
            ticker.advance(Duration.ofSeconds(5)); // the retry interval of the ends the store did not take
            assertThat(hanging.await(30, TimeUnit.SECONDS)).as("the engine writes the first end again").isTrue();

            clock.advance(Duration.ofMinutes(2));
            Job timedOut = p.await(second, Duration.ofSeconds(30));
            assertThat(timedOut.error()).as("the second job's deadline was checked").contains(ErrorCode.TIMED_OUT);
        } finally {
            partitionOver.countDown();
        }
    }

    // ---- fleet queue ----

    private static CompletableFuture<Job> endOf(String id, Provisioner.Builder b) {
        CompletableFuture<Job> ended = new CompletableFuture<>();
        b.listener(e -> {
            if (e.job().id().equals(id) && e.job().state().terminal()) {
                ended.complete(e.job());
            }
        });
        return ended;
    }

    @Test
    void queuedJob_isClaimedAndRun_withItsLeaseRenewedUntilItEnds() throws Exception {
        SettableClock clock = new SettableClock();
        CountingQueue q = new CountingQueue(InMemoryJobStore.builder().host("hv-1").clock(clock).build());
        Job job = Job.pending("queued-1", request("disk.qcow2", "vm-q1"), clock.instant());
        q.enqueue(job, "hv-1");
        GatedImageSource gated = new GatedImageSource(localSource);
        Provisioner.Builder b = engine(gated).jobStore(q).clock(clock).watchdogInterval(Duration.ofMillis(10))
                .queue(q, Duration.ofMillis(10)).jobLease(Duration.ofSeconds(60));
        CompletableFuture<Job> ended = endOf(job.id(), b);
        Provisioner p = start(b);

        assertThat(gated.opened.await(30, TimeUnit.SECONDS)).as("claimed and started").isTrue();
        clock.advance(Duration.ofSeconds(25));
        assertThat(q.renewed.await(30, TimeUnit.SECONDS)).as("lease renewed").isTrue();
        clock.advance(Duration.ofSeconds(50));
        assertThat(q.claim("hv-1", "another-engine", Duration.ofSeconds(60))).as("held past its first lease").isEmpty();
        assertThat(q.takeOver(job.id(), "another-engine", Duration.ofSeconds(60))).isEmpty();

        gated.release.countDown();
        Job done = ended.get(60, TimeUnit.SECONDS);
        assertThat(done.state()).isEqualTo(JobState.COMPLETED);
        assertThat(done.attempts()).isEqualTo(1);
        assertThat(q.find(job.id())).contains(done);
        assertVolumeHoldsImage("vm-q1");
        assertThat(q.renew(List.of(job.id()), p.engineId(), Duration.ofSeconds(60))).as("an ended job is not held")
                .isEmpty();
    }

    @Test
    void queuedJobADeadEngineLeftRunning_isFailedInterrupted_andItsVolumeDeleted() throws Exception {
        SettableClock clock = new SettableClock();
        InMemoryJobStore q = InMemoryJobStore.builder().host("hv-1").clock(clock).build();
        Job job = deadEnginesClaim(q, clock, "vm-dead");
        Provisioner.Builder b = engine(localSource).jobStore(q).clock(clock).queue(q, Duration.ofMillis(10));
        CompletableFuture<Job> ended = endOf(job.id(), b);
        start(b);

        Job failed = ended.get(60, TimeUnit.SECONDS);
        assertThat(failed.error()).contains(ErrorCode.INTERRUPTED);
        assertThat(failed.errorMessage()).contains("was deleted");
        assertThat(backend.find("vm-dead")).isEmpty();
        assertThat(q.find(job.id())).contains(failed);
    }

    @Test
    void queuedJobADeadEngineLeftRunning_isRunAgain_inResumeMode() throws Exception {
        SettableClock clock = new SettableClock();
        InMemoryJobStore q = InMemoryJobStore.builder().host("hv-1").clock(clock).build();
        Job job = deadEnginesClaim(q, clock, "vm-again-q");
        Provisioner.Builder b = engine(localSource).jobStore(q).clock(clock)
                .recoveryMode(Provisioner.RecoveryMode.RESUME)
                .queue(q, Duration.ofMillis(10));
        CompletableFuture<Job> ended = endOf(job.id(), b);
        start(b);

        Job done = ended.get(60, TimeUnit.SECONDS);
        assertThat(done.state()).isEqualTo(JobState.COMPLETED);
        assertThat(done.attempts()).isEqualTo(2);
        assertVolumeHoldsImage("vm-again-q");
    }

    /** A claim an engine made before it died: the job RUNNING with its volume created, the lease run out. */
    private Job deadEnginesClaim(InMemoryJobStore q, SettableClock clock, String volume) {
        q.enqueue(Job.pending("dead-" + volume, request("disk.qcow2", volume), clock.instant()), "hv-1");
        Job claimed = q.claim("hv-1", DEAD_ENGINE, Duration.ofSeconds(60)).orElseThrow();
        VolumeInfo v = backend.create(volume, VOLUME_SIZE);
        Job running = claimed.running(clock.instant()).withVolume(v.path(), true, clock.instant());
        q.update(running, DEAD_ENGINE);
        clock.advance(Duration.ofSeconds(61));
        return running;
    }

    @Test
    void queuedJobLargerThanTheEnginesMaximum_failsInvalidRequest_namingTheField_andCreatesNothing() throws Exception {
        SettableClock clock = new SettableClock();
        InMemoryJobStore q = InMemoryJobStore.builder().host("hv-1").clock(clock).build();
        Job job = Job.pending("too-big", request("disk.qcow2", "vm-too-big"), clock.instant());
        q.enqueue(job, "hv-1");
        Provisioner.Builder b = engine(localSource).jobStore(q).clock(clock).queue(q, Duration.ofMillis(10))
                .maxVolumeBytes(VOLUME_SIZE - 1);
        CompletableFuture<Job> ended = endOf(job.id(), b);
        start(b);

        Job failed = ended.get(60, TimeUnit.SECONDS);
        assertThat(failed.state()).isEqualTo(JobState.FAILED);
        assertThat(failed.error()).contains(ErrorCode.INVALID_REQUEST);
        assertThat(failed.errorMessage()).startsWith("volumeSizeBytes:");
        assertThat(failed.startedAt()).as("never ran").isNull();
        assertThat(backend.find("vm-too-big")).isEmpty();
        assertThat(q.find(job.id())).contains(failed);
    }

    @Test
    void recoveredJobThatNoLongerPassesTheEnginesChecks_failsInvalidRequest_andItsVolumeIsDeleted() {
        leftRunningByADeadEngine("left-big", "vm-left-big");
        storeClock.advance(LEASE.plusSeconds(1));

        start(engine(localSource).recoveryMode(Provisioner.RecoveryMode.RESUME).maxVolumeBytes(VOLUME_SIZE - 1));
        Job failed = store.find("left-big").orElseThrow();
        assertThat(failed.error()).contains(ErrorCode.INVALID_REQUEST);
        assertThat(failed.errorMessage()).startsWith("volumeSizeBytes:").contains("was deleted");
        assertThat(backend.find("vm-left-big")).isEmpty();
    }

    @Test
    void queue_refusesAnotherJobStore_andALeaseShorterThanThreeWatchdogIntervals() {
        InMemoryJobStore q = new InMemoryJobStore();
        assertThatThrownBy(() -> Provisioner.builder().source(localSource).cache(cache).backend(backend)
                .jobStore(new InMemoryJobStore()).queue(q, Duration.ofSeconds(1)).build())
                .isInstanceOf(IllegalStateException.class).hasMessageContaining("jobStore");
        assertThatThrownBy(() -> Provisioner.builder().source(localSource).cache(cache).backend(backend)
                .jobLease(Duration.ofSeconds(1)).watchdogInterval(Duration.ofMillis(500)).build())
                .isInstanceOf(IllegalStateException.class).hasMessageContaining("jobLease");
        assertThatThrownBy(() -> Provisioner.builder().jobLease(Duration.ofMillis(999))).hasMessageContaining("jobLease");
    }

    // ---- the engine's checks, without submitting ----

    @Test
    void validate_refusesWhatBuildAcceptsButSubmitWouldRefuse_namingTheField_andRecordsNothing() {
        Provisioner p = start(engine(localSource).maxVolumeBytes(1L << 30));
        ProvisionRequest foreignHost = ProvisionRequest.builder().imageUri("http://10.0.0.1:9000/images/disk.qcow2")
                .volumeName("vm-h").volumeSizeBytes(1 << 20).build();
        ProvisionRequest tooBig = ProvisionRequest.builder().imageUri("s3://images/disk.qcow2")
                .volumeName("vm-huge").volumeSizeBytes(2L << 30).build();
        assertThatThrownBy(() -> p.validate(foreignHost)).isInstanceOf(ProvisioningException.class)
                .satisfies(e -> assertThat(((ProvisioningException) e).code()).isEqualTo(ErrorCode.INVALID_REQUEST))
                .hasMessageStartingWith("imageUri:");
        assertThatThrownBy(() -> p.validate(tooBig)).hasMessageStartingWith("volumeSizeBytes:");
        p.validate(request("disk.qcow2", "vm-fine"));
        assertThat(store.list(JobFilter.all())).isEmpty();
        assertThat(backend.find("vm-fine")).isEmpty();
    }

    @Test
    void engineId_isGeneratedUniquePerEngine_orTheOneGiven_andRefusedWhenBlank() {
        Provisioner a = start(engine(localSource));
        Provisioner b = start(engine(localSource));
        assertThat(a.engineId()).isNotEqualTo(b.engineId()).isNotEqualTo(store.host());
        Provisioner named = start(engine(localSource).engineId("hv-17-engine-1"));
        assertThat(named.engineId()).isEqualTo("hv-17-engine-1");
        assertThatThrownBy(() -> Provisioner.builder().engineId(" ")).hasMessageContaining("engineId");
        assertThatThrownBy(() -> Provisioner.builder().engineId("a b")).hasMessageContaining("engineId");
    }

    // ---- decorators over the real source, to inject faults ----

    static final class FlakySource extends ForwardingImageSource {
        final AtomicInteger statCalls = new AtomicInteger();
        final List<Instant> statTimes = new CopyOnWriteArrayList<>();
        private final int failures;
        private final Clock clock;

        FlakySource(ImageSource d, int failures, Clock clock) {
            super(d);
            this.failures = failures;
            this.clock = clock;
        }

        @Override
        public ObjectInfo stat(ImageRef ref) {
            statTimes.add(clock.instant());
            if (statCalls.incrementAndGet() <= failures) {
                throw new ProvisioningException(ErrorCode.SOURCE_UNAVAILABLE, "503 Slow Down");
            }
            return delegate.stat(ref);
        }
    }

    /** Downloads of one key wait at their first read, as {@link GatedImageSource} does; others pass. */
    static final class KeyGatedSource extends ForwardingImageSource {
        final GatedImageSource gate;
        private final String key;

        KeyGatedSource(ImageSource d, String key) {
            super(d);
            this.gate = new GatedImageSource(d);
            this.key = key;
        }

        @Override
        public InputStream open(ImageRef ref, String etag, long offset, long length) {
            return ref.key().equals(key) ? gate.open(ref, etag, offset, length) : delegate.open(ref, etag, offset, length);
        }
    }

    /**
     * The first download stream breaks after {@code dropAfter} bytes; {@code onResume} runs before
     * each read that starts past byte 0.
     */
    static final class DroppingSource extends ForwardingImageSource {
        final List<Long> offsets = new CopyOnWriteArrayList<>();
        private final long dropAfter;
        private final Runnable onResume;

        DroppingSource(ImageSource d, long dropAfter) {
            this(d, dropAfter, () -> { });
        }

        DroppingSource(ImageSource d, long dropAfter, Runnable onResume) {
            super(d);
            this.dropAfter = dropAfter;
            this.onResume = onResume;
        }

        @Override
        public InputStream open(ImageRef ref, String etag, long offset, long length) {
            offsets.add(offset);
            if (offset > 0) {
                onResume.run();
            }
            InputStream in = delegate.open(ref, etag, offset, length);
            if (offsets.size() > 1) {
                return in;
            }
            return new java.io.FilterInputStream(in) {
                long read;

                @Override
                public int read(byte[] b, int off, int len) throws IOException {
                    if (read >= dropAfter) {
                        throw new IOException("Connection reset");
                    }
                    int n = super.read(b, off, (int) Math.min(len, dropAfter - read));
                    read += Math.max(n, 0);
                    return n;
                }
            };
        }
    }


    /** A real backend whose writer fails on its first write. */
    static final class FailingWriterBackend extends ForwardingVolumeBackend {
        FailingWriterBackend(VolumeBackend d) {
            super(d);
        }

        /** A writer with no local path (as a streamed upload) whose first write fails. */
        @Override
        public VolumeWriter openWriter(VolumeInfo volume) {
            return new ForwardingVolumeWriter(delegate.openWriter(volume)) {
                @Override
                public Optional<Path> localPath() {
                    return Optional.empty();
                }

                @Override
                public void write(java.nio.ByteBuffer src) throws IOException {
                    throw new IOException("Input/output error");
                }
            };
        }
    }

    /** Counts the writes of its writers, and holds the first one's caller until {@link #resume} opens. */
    /**
     * Pauses the job after its first write through the writer. Its writers have no local path (an
     * upload stream's shape), so that every byte of the volume goes through their {@code write}.
     */
    static final class PausingWriterBackend extends ForwardingVolumeBackend {
        final AtomicInteger writes = new AtomicInteger();
        final CountDownLatch firstWritten = new CountDownLatch(1);
        final CountDownLatch resume = new CountDownLatch(1);

        PausingWriterBackend(VolumeBackend d) {
            super(d);
        }

        @Override
        public VolumeWriter openWriter(VolumeInfo volume) {
            return new ForwardingVolumeWriter(delegate.openWriter(volume)) {
                @Override
                public Optional<Path> localPath() {
                    return Optional.empty();
                }

                @Override
                public void write(java.nio.ByteBuffer src) throws IOException {
                    super.write(src);
                    if (writes.incrementAndGet() == 1) {
                        firstWritten.countDown();
                        try {
                            assertThat(resume.await(60, TimeUnit.SECONDS)).isTrue();
                        } catch (InterruptedException e) {
                            Thread.currentThread().interrupt();
                        }
                    }
                }
            };
        }
    }

    /** A guard of one process whose locks a test can declare lost, as a shared guard would find them. */
    static final class LosableGuard implements VolumeGuard {
        private final java.util.Map<String, Object> held = new java.util.concurrent.ConcurrentHashMap<>();
        private final java.util.Map<String, String> lost = new java.util.concurrent.ConcurrentHashMap<>();

        void lose(String volumeName, String why) {
            lost.put(volumeName, why);
        }

        @Override
        public Optional<Lock> tryLock(String volumeName) {
            Object holder = new Object();
            if (held.putIfAbsent(volumeName, holder) != null) {
                return Optional.empty();
            }
            return Optional.of(new Lock() {
                @Override
                public Optional<String> lost() {
                    return Optional.ofNullable(lost.get(volumeName));
                }

                @Override
                public void close() {
                    held.remove(volumeName, holder);
                }
            });
        }
    }

    /** The in-memory queue, counting lease renewals. */
    static final class CountingQueue extends ForwardingJobQueue {
        final CountDownLatch renewed = new CountDownLatch(1);

        CountingQueue(JobQueue d) {
            super(d);
        }

        @Override
        public Set<String> renew(Collection<String> jobIds, String engine, Duration lease) {
            Set<String> held = super.renew(jobIds, engine, lease);
            if (!held.isEmpty()) {
                renewed.countDown();
            }
            return held;
        }
    }
}
