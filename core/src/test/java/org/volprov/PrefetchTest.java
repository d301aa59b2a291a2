package org.volprov;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.volprov.cache.CacheEviction;
import org.volprov.cache.CacheVerification;
import org.volprov.cache.CachedImage;
import org.volprov.cache.DiskImageCache;
import org.volprov.job.InMemoryJobStore;
import org.volprov.job.JobJson;
import org.volprov.source.ImageSource;
import org.volprov.source.LocalDirectoryImageSource;
import org.volprov.testing.GatedImageSource;
import org.volprov.testing.SettableClock;
import org.volprov.testing.TestImages;
import org.volprov.volume.FileVolumeBackend;
import org.volprov.volume.VolumeBackend;
import org.volprov.volume.VolumeGuard;

/**
 * Prefetch jobs against real files and a real cache: the backend and the volume guard count every
 * call, and a prefetch must make none.
 */
class PrefetchTest {
    private static final long IMAGE_SIZE = 6L << 20;
    private static final Duration WAIT = Duration.ofSeconds(60);

    @TempDir
    static Path images;

    @TempDir
    Path work;
    private DiskImageCache cache;
    private InMemoryJobStore store;
    /** The store's clock: leases run out when a test moves it. */
    private SettableClock storeClock;
    private CountingBackend backend;
    private final AtomicInteger locks = new AtomicInteger();
    private final List<JobEvent> events = new CopyOnWriteArrayList<>();
    private final List<Provisioner> engines = new ArrayList<>();

    @BeforeAll
    static void makeImages() throws Exception {
        Path bucket = Files.createDirectories(images.resolve("images"));
        Path raw = TestImages.raw(images.resolve("disk.raw"), IMAGE_SIZE, 5);
        publish(TestImages.qcow2(raw, bucket.resolve("disk.qcow2"), false));
        Path bad = Files.copy(bucket.resolve("disk.qcow2"), bucket.resolve("bad.qcow2"));
        Files.writeString(bucket.resolve("bad.qcow2.sha256"), "0".repeat(64) + "  bad.qcow2\n");
        publish(TestImages.qcow2WithBacking(bucket.resolve("disk.qcow2"), bucket.resolve("overlay.qcow2")));
        publish(TestImages.qcow2CorruptPastHeader(bucket.resolve("disk.qcow2"), bucket.resolve("corrupt.qcow2")));
    }

    private static void publish(Path image) throws IOException {
        TestImages.publishChecksum(image);
    }

    @BeforeEach
    void setUp() {
        cache = DiskImageCache.builder().directory(work.resolve("cache")).maxBytes(1L << 30).build();
        storeClock = new SettableClock();
        store = InMemoryJobStore.builder().clock(storeClock).build();
        backend = new CountingBackend(FileVolumeBackend.open(work.resolve("volumes")));
    }

    @AfterEach
    void tearDown() {
        engines.forEach(Provisioner::close);
        cache.close();
    }

    private Provisioner start(ImageSource source) {
        return start(source, Provisioner.RecoveryMode.FAIL);
    }

    private Provisioner start(ImageSource source, Provisioner.RecoveryMode recovery) {
        VolumeGuard guard = name -> {
            locks.incrementAndGet();
            return Optional.of(() -> {
            });
        };
        Provisioner p = Provisioner.builder().source(source).cache(cache).backend(backend.backend).jobStore(store)
                .volumeGuard(guard).workDirectory(work).listener(events::add).recoveryMode(recovery).build();
        engines.add(p);
        return p;
    }

    private Provisioner start() {
        return start(new LocalDirectoryImageSource(images));
    }

    private static String uri(String image) {
        return "s3://images/" + image;
    }

    private List<Stage> stagesOf(String id) {
        return events.stream().filter(e -> e.job().id().equals(id) && e.kind() == JobEvent.Kind.STAGE)
                .map(e -> e.job().stage()).distinct().toList();
    }

    private void assertNoVolumeWasTouched() {
        assertThat(backend.calls.get()).as("backend calls").isZero();
        assertThat(locks.get()).as("volume locks taken").isZero();
    }

    @Test
    void prefetch_downloadsTheImageIntoTheCache_asARecordedJob_withoutTouchingAVolume() throws Exception {
        Provisioner p = start();
        String id = p.prefetch(uri("disk.qcow2"));
        Job job = p.await(id, WAIT);

        assertThat(job.state()).isEqualTo(JobState.COMPLETED);
        assertThat(job.kind()).isEqualTo(JobKind.PREFETCH);
        assertThat(job.cacheHit()).isFalse();
        assertThat(job.imageDigest()).isEqualTo(TestImages.sha256(images.resolve("images/disk.qcow2")));
        assertThat(job.volumePath()).isNull();
        assertThat(job.createdVolume()).isFalse();
        assertThat(store.find(id)).contains(job);
        assertThat(stagesOf(id)).containsExactly(Stage.RESOLVING, Stage.DOWNLOADING, Stage.INSPECTING);
        assertThat(events).filteredOn(e -> e.kind() == JobEvent.Kind.PROGRESS && e.job().stage() == Stage.DOWNLOADING)
                .last().satisfies(e -> assertThat(e.job().progress().bytesDone())
                        .isEqualTo(Files.size(images.resolve("images/disk.qcow2"))));
        assertThat(events).filteredOn(e -> e.kind() == JobEvent.Kind.STATE && e.job().id().equals(id))
                .extracting(e -> e.job().state()).containsExactly(JobState.PENDING, JobState.RUNNING, JobState.COMPLETED);
        assertThat(p.cacheStats().entries()).isOne();
        assertThat(p.cache()).as("the engine's own cache").isSameAs(cache);
        assertThat(p.cache().stats().admissions()).isOne();
        assertNoVolumeWasTouched();

        Job provision = p.await(p.submit(ProvisionRequest.builder().imageUri(uri("disk.qcow2")).volumeName("vm-1")
                .volumeSizeBytes(8L << 20).build()), WAIT);
        assertThat(provision.state()).isEqualTo(JobState.COMPLETED);
        assertThat(provision.cacheHit()).as("the provision after the prefetch").isTrue();
    }

    @Test
    void prefetch_ofAnImageAlreadyCached_completesAtOnceAsAHit_withoutADownload() {
        Provisioner p = start();
        assertThat(p.await(p.prefetch(uri("disk.qcow2")), WAIT).cacheHit()).isFalse();
        String second = p.prefetch(uri("disk.qcow2"));
        Job hit = p.await(second, WAIT);

        assertThat(hit.state()).isEqualTo(JobState.COMPLETED);
        assertThat(hit.cacheHit()).isTrue();
        assertThat(stagesOf(second)).doesNotContain(Stage.DOWNLOADING);
        assertThat(p.cacheStats().admissions()).isOne();
        assertThat(p.cacheStats().hits()).isOne();
        assertNoVolumeWasTouched();
    }

    @Test
    void prefetch_failsWithTheCodesOfAProvisionsDownload_andCachesNothingBad() {
        Provisioner p = start();
        assertThat(p.await(p.prefetch(uri("missing.qcow2")), WAIT).error()).contains(ErrorCode.IMAGE_NOT_FOUND);
        assertThat(p.await(p.prefetch(uri("bad.qcow2")), WAIT).error()).contains(ErrorCode.CHECKSUM_MISMATCH);
        Job overlay = p.await(p.prefetch(uri("overlay.qcow2")), WAIT);
        assertThat(overlay.error()).contains(ErrorCode.UNSUPPORTED_IMAGE);
        assertThat(overlay.errorMessage()).contains("backing file");
        Job corrupt = p.await(p.prefetch(uri("corrupt.qcow2")), WAIT);
        assertThat(corrupt.error()).as("corrupt past its header").contains(ErrorCode.UNSUPPORTED_IMAGE);
        assertThat(corrupt.state()).isEqualTo(JobState.FAILED);

        assertThat(p.cacheStats().entries()).isZero();
        assertThat(p.cacheStats().bytesInUse()).isZero();
        assertNoVolumeWasTouched();
    }

    @Test
    void cancel_stopsAPrefetchsDownload_andLeavesNothingCached() throws Exception {
        GatedImageSource gated = new GatedImageSource(new LocalDirectoryImageSource(images));
        Provisioner p = start(gated);
        String id = p.prefetch(uri("disk.qcow2"));
        assertThat(gated.opened.await(30, TimeUnit.SECONDS)).isTrue();
        assertThat(p.status(id).orElseThrow().stage()).isEqualTo(Stage.DOWNLOADING);
        assertThat(p.cancel(id)).isTrue();

        Job job = p.await(id, Duration.ofSeconds(10));
        assertThat(job.state()).isEqualTo(JobState.CANCELLED);
        assertThat(job.error()).contains(ErrorCode.CANCELLED);
        assertThat(p.cacheStats().entries()).isZero();
        assertNoVolumeWasTouched();
    }

    @Test
    void prefetchesOfOneImage_runTogether_sharingOneDownload() throws Exception {
        GatedImageSource gated = new GatedImageSource(new LocalDirectoryImageSource(images));
        Provisioner p = start(gated);
        String first = p.prefetch(uri("disk.qcow2"));
        String second = p.prefetch(uri("disk.qcow2"));
        assertThat(gated.opened.await(30, TimeUnit.SECONDS)).isTrue();
        gated.release.countDown();

        assertThat(p.await(first, WAIT).state()).isEqualTo(JobState.COMPLETED);
        assertThat(p.await(second, WAIT).state()).isEqualTo(JobState.COMPLETED);
        assertThat(p.cacheStats().admissions()).isOne();
        assertNoVolumeWasTouched();
    }

    @Test
    void queuedPrefetch_isClaimedAndRunByTheEngineOfItsHost() throws Exception {
        InMemoryJobStore q = InMemoryJobStore.builder().host("hv-1").build();
        Job job = Job.pending("prefetch-1", ProvisionRequest.prefetch(uri("disk.qcow2")), java.time.Instant.now());
        CompletableFuture<Job> ended = new CompletableFuture<>();
        q.enqueue(job, "hv-1");
        Provisioner p = Provisioner.builder().source(new LocalDirectoryImageSource(images)).cache(cache)
                .backend(backend.backend).queue(q, Duration.ofMillis(10)).workDirectory(work)
                .volumeGuard(name -> {
                    locks.incrementAndGet();
                    return Optional.empty();
                })
                .listener(e -> {
                    if (e.job().id().equals(job.id()) && e.job().state().terminal()) {
                        ended.complete(e.job());
                    }
                }).build();
        engines.add(p);

        Job done = ended.get(60, TimeUnit.SECONDS);
        assertThat(done.state()).isEqualTo(JobState.COMPLETED);
        assertThat(done.kind()).isEqualTo(JobKind.PREFETCH);
        assertThat(q.find(job.id())).contains(done);
        assertThat(p.cacheStats().entries()).isOne();
        assertNoVolumeWasTouched();
    }

    @Test
    void prefetchADeadEngineLeftRunning_isResumedInResumeMode_orFailedInterrupted_withoutTouchingAVolume() {
        Instant t = Instant.now();
        ProvisionRequest prefetch = ProvisionRequest.prefetch(uri("disk.qcow2"));
        store.insert(Job.pending("left-1", prefetch, t).running(t), "dead-engine", Duration.ofSeconds(30));
        storeClock.advance(Duration.ofSeconds(31));
        Provisioner resuming = start(new LocalDirectoryImageSource(images), Provisioner.RecoveryMode.RESUME);
        Job resumed = resuming.await("left-1", WAIT);
        assertThat(resumed.state()).isEqualTo(JobState.COMPLETED);
        assertThat(resumed.attempts()).isEqualTo(2);
        assertThat(cache.stats().entries()).isOne();
        resuming.close(); // so that only the next engine recovers the next job

        store.insert(Job.pending("left-2", prefetch, t).running(t), "dead-engine", Duration.ofSeconds(30));
        storeClock.advance(Duration.ofSeconds(31));
        start();
        Job failed = store.find("left-2").orElseThrow();
        assertThat(failed.state()).isEqualTo(JobState.FAILED);
        assertThat(failed.error()).contains(ErrorCode.INTERRUPTED);
        assertNoVolumeWasTouched();
    }

    @Test
    void theEnginesCache_listsAPrefetchedImage_reVerifiesAndDropsItWhenDamaged_andEvictsIt() throws Exception {
        Provisioner p = start();
        Job warmed = p.await(p.prefetch(uri("disk.qcow2")), WAIT);
        String sha = warmed.imageDigest();

        List<CachedImage> listed = p.cache().list();
        assertThat(listed).singleElement().satisfies(image -> {
            assertThat(image.sha256()).isEqualTo(sha);
            assertThat(image.size()).isEqualTo(Files.size(images.resolve("images/disk.qcow2")));
            assertThat(image.sources()).anySatisfy(source -> assertThat(source).contains("images/disk.qcow2"));
            assertThat(image.leased()).as("no job holds it now").isFalse();
        });
        assertThat(p.cache().verifyAll(Cancellation.none()).ok()).containsExactly(sha);

        try (RandomAccessFile f = new RandomAccessFile(work.resolve("cache").resolve(sha).toFile(), "rw")) {
            f.seek(1 << 20);
            int b = f.read();
            f.seek(1 << 20);
            f.write(~b);
        }
        CacheVerification damaged = p.cache().verify(sha, Cancellation.none());
        assertThat(damaged.dropped()).extracting(CacheVerification.Result::sha256).containsExactly(sha);
        assertThat(p.cache().list()).isEmpty();

        Job again = p.await(p.prefetch(uri("disk.qcow2")), WAIT);
        assertThat(again.cacheHit()).as("downloaded again after the damaged entry was dropped").isFalse();
        assertThat(p.cache().evict(sha)).isEqualTo(CacheEviction.EVICTED);
        assertThat(p.cache().list()).isEmpty();
        assertThat(p.cache().evict(sha)).isEqualTo(CacheEviction.NOT_CACHED);
        assertNoVolumeWasTouched();
    }

    @Test
    void prefetchRequest_hasNoVolume_andAProvisionStillNeedsOne() {
        ProvisionRequest r = ProvisionRequest.prefetch(uri("disk.qcow2"));
        assertThat(r.kind()).isEqualTo(JobKind.PREFETCH);
        assertThat(r.volumeName()).isNull();
        assertThat(r.volumeSizeBytes()).isZero();
        assertThatThrownBy(() -> ProvisionRequest.builder().kind(JobKind.PREFETCH).imageUri(uri("disk.qcow2"))
                .volumeName("vm-1").build()).hasMessageContaining("volumeName");
        assertThatThrownBy(() -> ProvisionRequest.builder().kind(JobKind.PREFETCH).imageUri(uri("disk.qcow2"))
                .volumeSizeBytes(1).build()).hasMessageContaining("volumeSizeBytes");
        assertThatThrownBy(() -> ProvisionRequest.builder().imageUri(uri("disk.qcow2")).build())
                .hasMessageContaining("volumeName");
        assertThatThrownBy(() -> ProvisionRequest.prefetch("ftp://nowhere")).hasMessageContaining("imageUri");
        assertThat(new ProvisionRequest(uri("disk.qcow2"), "vm-1", 1, org.volprov.image.ImageFormat.AUTO, null,
                null).kind()).isEqualTo(JobKind.PROVISION);
    }

    @Test
    void jobJson_keepsTheKind_andReadsARequestStoredWithoutOneAsAProvision() {
        ProvisionRequest prefetch = ProvisionRequest.builder().kind(JobKind.PREFETCH).imageUri(uri("disk.qcow2"))
                .correlationId("warm-1").label("rollout", "r7").build();
        assertThat(JobJson.readRequest(JobJson.writeRequest(prefetch))).isEqualTo(prefetch);
        Job job = Job.pending("j-1", prefetch, java.time.Instant.parse("2026-12-01T00:00:00Z"));
        assertThat(JobJson.readJob(JobJson.writeJob(job))).isEqualTo(job);

        String old = "{\"imageUri\":\"s3://images/disk.qcow2\",\"volumeName\":\"vm-1\",\"volumeSizeBytes\":1024,"
                + "\"format\":\"AUTO\",\"labels\":{}}";
        assertThat(JobJson.readRequest(old).kind()).isEqualTo(JobKind.PROVISION);
        assertThatThrownBy(() -> JobJson.readRequest(old.replace("{}}", "{},\"kind\":\"MIRROR\"}")))
                .hasMessageContaining("kind");
    }

    /** A real backend that counts every call made to it. */
    static final class CountingBackend {
        final AtomicInteger calls = new AtomicInteger();
        final VolumeBackend backend;

        CountingBackend(VolumeBackend delegate) {
            backend = (VolumeBackend) Proxy.newProxyInstance(VolumeBackend.class.getClassLoader(),
                    new Class<?>[] {VolumeBackend.class}, (proxy, method, args) -> {
                        calls.incrementAndGet();
                        try {
                            return method.invoke(delegate, args);
                        } catch (InvocationTargetException e) {
                            throw e.getCause();
                        }
                    });
        }
    }
}
