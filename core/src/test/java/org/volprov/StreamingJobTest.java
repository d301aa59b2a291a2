package org.volprov;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.volprov.cache.DiskImageCache;
import org.volprov.image.QemuImgConverter;
import org.volprov.job.InMemoryJobStore;
import org.volprov.source.ImageSource;
import org.volprov.source.LocalDirectoryImageSource;
import org.volprov.source.ObjectInfo;
import org.volprov.testing.ForwardingImageSource;
import org.volprov.testing.ForwardingVolumeBackend;
import org.volprov.testing.ForwardingVolumeWriter;
import org.volprov.testing.TestImages;
import org.volprov.volume.FileVolumeBackend;
import org.volprov.volume.VolumeBackend;
import org.volprov.volume.VolumeInfo;
import org.volprov.volume.VolumeWriter;

/**
 * The engine's cold path with core's decoder, on real files: the qcow2 image goes onto the volume
 * while it downloads, with {@code LOCAL} writes (the file backend's path, written in place) and
 * {@code STREAM} writes (the same backend behind writers without a local path, the shape of an
 * upload stream). Every failure after the volume got bytes ends in the one rollback.
 */
class StreamingJobTest {
    private static final long IMAGE_SIZE = 12L << 20;
    private static final long VOLUME_SIZE = 16L << 20;
    private static final Duration WAIT = Duration.ofSeconds(60);

    enum Mode { LOCAL, STREAM }

    @TempDir
    static Path images;
    static Path bucket;
    /** Two versions of one image: v2 has zeros where v1 has data, so a restart must write zeros too. */
    static byte[] v1;
    static byte[] v2;
    static String v1Raw;
    static String v2Raw;
    static Path v2Reference;

    @TempDir
    Path work;
    private DiskImageCache cache;
    private FileVolumeBackend files;
    private final List<Provisioner> engines = new ArrayList<>();
    private final List<JobEvent> events = new CopyOnWriteArrayList<>();

    @BeforeAll
    static void makeImages() throws Exception {
        bucket = Files.createDirectories(images.resolve("images"));
        Path raw1 = TestImages.raw(images.resolve("v1.raw"), IMAGE_SIZE, 31);
        Path q1 = TestImages.qcow2(raw1, images.resolve("v1.qcow2"), false);
        Path q2 = TestImages.qcow2(TestImages.raw(images.resolve("v2.raw"), IMAGE_SIZE, 32),
                images.resolve("v2.qcow2"), false);
        TestImages.run(List.of("qemu-io", "-f", "qcow2", "-c", "write -z 0 1M", "-c", "write -z 6M 1M",
                q2.toString()));
        v1 = Files.readAllBytes(q1);
        v2 = Files.readAllBytes(q2);
        v1Raw = TestImages.sha256(raw1);
        v2Reference = TestImages.toRaw(q2, images.resolve("v2-reference.raw"));
        v2Raw = TestImages.sha256(v2Reference, IMAGE_SIZE);
        assertThat(v2Raw).isNotEqualTo(v1Raw);
        Files.write(bucket.resolve("disk.qcow2"), v1);
        publish(bucket.resolve("disk.qcow2"), TestImages.sha256(q1));
        Files.write(bucket.resolve("bad.qcow2"), v1);
        publish(bucket.resolve("bad.qcow2"), "0".repeat(64));
        Path overlay = TestImages.qcow2WithBacking(q1, bucket.resolve("overlay.qcow2"));
        TestImages.run(List.of("qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 8M", overlay.toString()));
        publish(overlay, TestImages.sha256(overlay));
    }

    private static void publish(Path image, String digest) throws IOException {
        Files.writeString(image.resolveSibling(image.getFileName() + ".sha256"),
                digest + "  " + image.getFileName() + "\n", StandardCharsets.US_ASCII);
    }

    @BeforeEach
    void setUp() {
        cache = DiskImageCache.builder().directory(work.resolve("cache")).maxBytes(1L << 30).build();
        files = FileVolumeBackend.open(work.resolve("volumes"));
    }

    @AfterEach
    void tearDown() {
        engines.forEach(Provisioner::close);
        cache.close();
    }

    private Provisioner start(ImageSource source, VolumeBackend backend) {
        Provisioner p = Provisioner.builder().source(source).cache(cache).backend(backend)
                .jobStore(InMemoryJobStore.builder().build()).workDirectory(work).sleeper(d -> { })
                .listener(events::add).build();
        engines.add(p);
        return p;
    }

    private static ProvisionRequest request(String image, String volume) {
        return ProvisionRequest.builder().imageUri("s3://images/" + image).volumeName(volume)
                .volumeSizeBytes(VOLUME_SIZE).build();
    }

    private static Job run(Provisioner p, ProvisionRequest r) {
        Job job = p.await(p.submit(r), WAIT);
        assertThat(job.state().terminal()).as("job ended").isTrue();
        return job;
    }

    private void assertVolumeHolds(String volume, String rawDigest) throws IOException {
        Path file = work.resolve("volumes").resolve(volume);
        assertThat(Files.size(file)).isEqualTo(VOLUME_SIZE);
        assertThat(TestImages.sha256(file, IMAGE_SIZE)).isEqualTo(rawDigest);
        assertThat(TestImages.zerosBetween(file, IMAGE_SIZE, VOLUME_SIZE)).as("tail reads as zeros").isTrue();
    }

    /** Whether the volume had been made while the image was still downloading. */
    private boolean volumeOpenedDuringTheDownload() {
        return events.stream().anyMatch(e -> e.job().stage() == Stage.DOWNLOADING && e.job().volumePath() != null);
    }

    private void assertNothingCached(Provisioner p) throws IOException {
        assertThat(p.cacheStats().entries()).isZero();
        try (Stream<Path> f = Files.walk(work.resolve("cache"))) {
            assertThat(f.filter(Files::isRegularFile).map(x -> x.getFileName().toString()))
                    .noneMatch(n -> n.contains("tmp") || n.matches("[0-9a-f]{64}.*"));
        }
    }

    private StreamBackend backend(Mode mode) {
        return new StreamBackend(files, mode == Mode.STREAM);
    }

    @ParameterizedTest
    @EnumSource(Mode.class)
    void coldQcow2Job_writesTheVolumeWhileItDownloads_andEndsWithQemuImgsBytes(Mode mode) throws Exception {
        StreamBackend backend = backend(mode);
        Provisioner p = start(new LocalDirectoryImageSource(images), backend);
        Job job = run(p, request("disk.qcow2", "vm-cold"));

        assertThat(job.state()).as("%s %s", job.errorCode(), job.errorMessage()).isEqualTo(JobState.COMPLETED);
        assertThat(job.cacheHit()).isFalse();
        assertVolumeHolds("vm-cold", v1Raw);
        assertThat(volumeOpenedDuringTheDownload()).isTrue();
        if (mode == Mode.STREAM) {
            assertThat(backend.writesDuringDownload.get()).as("writes made while the image downloaded").isPositive();
        }
        assertThat(backend.finishes.get()).isOne();
    }

    @ParameterizedTest
    @EnumSource(Mode.class)
    void checksumMismatch_afterTheVolumeGotBytes_rollsBack_andCachesNothing(Mode mode) throws Exception {
        StreamBackend backend = backend(mode);
        Provisioner p = start(new LocalDirectoryImageSource(images), backend);
        Job job = run(p, request("bad.qcow2", "vm-bad"));

        assertThat(job.error()).contains(ErrorCode.CHECKSUM_MISMATCH);
        assertThat(job.errorMessage()).contains("was deleted");
        assertThat(volumeOpenedDuringTheDownload()).as("the volume was made during the download").isTrue();
        if (mode == Mode.STREAM) {
            assertThat(backend.writesDuringDownload.get()).isPositive();
        }
        assertThat(backend.finishes.get()).as("the volume was never finished").isZero();
        assertThat(files.find("vm-bad")).isEmpty();
        assertNothingCached(p);
    }

    @ParameterizedTest
    @EnumSource(Mode.class)
    void imageReplacedMidStream_restartsTheDecoder_andTheVolumeHoldsExactlyTheNewVersion(Mode mode) throws Exception {
        Path changing = bucket.resolve("changing.qcow2");
        Files.write(changing, v1);
        StreamBackend backend = backend(mode);
        RewritingSource source = new RewritingSource(new LocalDirectoryImageSource(images), changing, v2);
        Provisioner p = start(source, backend);
        ProvisionRequest r = ProvisionRequest.builder().imageUri("s3://images/changing.qcow2").volumeName("vm-changed")
                .volumeSizeBytes(VOLUME_SIZE).build();
        Job job = run(p, r);

        assertThat(job.state()).as("%s %s", job.errorCode(), job.errorMessage()).isEqualTo(JobState.COMPLETED);
        assertThat(source.rewrites).hasValue(1);
        assertThat(source.writesAtRewrite.get()).as("the volume's writes from the first version").isPositive();
        assertVolumeHolds("vm-changed", v2Raw);
        if (mode == Mode.STREAM) {
            assertThat(backend.opened.get()).as("a new upload for the new version").isEqualTo(2);
        }
        assertThat(backend.finishes.get()).isOne();
    }

    @ParameterizedTest
    @EnumSource(Mode.class)
    void connectionBrokenMidStream_resumes_andTheDecoderGoesOn(Mode mode) throws Exception {
        StreamBackend backend = backend(mode);
        AtomicLong volumeBytesAtResume = new AtomicLong(-1);
        ProvisionerTest.DroppingSource dropping = new ProvisionerTest.DroppingSource(
                new LocalDirectoryImageSource(images), 3_000_000, () -> {
                    try {
                        volumeBytesAtResume.compareAndSet(-1, volumeBytesSoFar());
                    } catch (IOException e) {
                        throw new UncheckedIOException(e);
                    }
                });
        Provisioner p = start(dropping, backend);
        Job job = run(p, request("disk.qcow2", "vm-resumed"));

        assertThat(job.state()).as("%s %s", job.errorCode(), job.errorMessage()).isEqualTo(JobState.COMPLETED);
        assertThat(dropping.offsets).containsExactly(0L, 3_000_000L);
        assertVolumeHolds("vm-resumed", v1Raw);
        assertThat(volumeBytesAtResume.get()).as("volume bytes written before the connection broke").isPositive();
        assertThat(backend.opened.get()).as("one writer: the decoder went on").isOne();
    }

    @ParameterizedTest
    @EnumSource(Mode.class)
    void unsupportedHeader_isRefusedFromTheFirstBytes_beforeAVolumeIsMade_andNothingIsCached(Mode mode)
            throws Exception {
        AtomicLong read = new AtomicLong();
        ImageSource counting = new ForwardingImageSource(new LocalDirectoryImageSource(images)) {
            @Override
            public InputStream open(ImageRef ref, String etag, long offset, long length) {
                return new FilterInputStream(delegate.open(ref, etag, offset, length)) {
                    @Override
                    public int read(byte[] b, int off, int len) throws IOException {
                        int n = super.read(b, off, len);
                        read.addAndGet(Math.max(n, 0));
                        return n;
                    }
                };
            }
        };
        StreamBackend backend = backend(mode);
        Provisioner p = start(counting, backend);
        Job job = run(p, request("overlay.qcow2", "vm-overlay"));

        assertThat(job.error()).contains(ErrorCode.UNSUPPORTED_IMAGE);
        assertThat(job.errorMessage()).contains("backing file");
        assertThat(read.get()).as("bytes fetched").isLessThan(Files.size(bucket.resolve("overlay.qcow2")) / 4);
        assertThat(backend.created.get()).as("volumes made").isZero();
        assertThat(files.find("vm-overlay")).isEmpty();
        assertThat(p.cacheStats().admissions()).isZero();
        assertNothingCached(p);
    }

    @Test
    void volumeLockLostWhileTheImageStreamsInPlace_stopsTheJob_volumeBusy_andLeavesTheVolume() throws Exception {
        ProvisionerTest.LosableGuard guard = new ProvisionerTest.LosableGuard();
        AtomicBoolean lost = new AtomicBoolean();
        StreamBackend backend = backend(Mode.LOCAL);
        Provisioner p = Provisioner.builder().source(new LocalDirectoryImageSource(images)).cache(cache)
                .backend(backend).jobStore(InMemoryJobStore.builder().build()).workDirectory(work)
                .volumeGuard(guard).listener(e -> {
                    if (e.kind() == JobEvent.Kind.PROGRESS && e.job().stage() == Stage.DOWNLOADING
                            && e.job().volumePath() != null && lost.compareAndSet(false, true)) {
                        guard.lose("vm-fenced", "another process holds it now");
                    }
                }).build();
        engines.add(p);
        Job job = run(p, request("disk.qcow2", "vm-fenced"));

        assertThat(lost).isTrue();
        assertThat(job.error()).contains(ErrorCode.VOLUME_BUSY);
        assertThat(job.errorMessage()).contains("another process holds it now").contains("not deleted");
        assertThat(backend.finishes.get()).as("never flushed as if complete").isZero();
        assertThat(files.find("vm-fenced")).as("the new holder's volume").isPresent();
    }

    @Test
    void qemuImgConverter_whenConfigured_keepsTheOldPath_theVolumeIsWrittenAfterTheDownload() throws Exception {
        StreamBackend backend = backend(Mode.STREAM);
        Provisioner p = Provisioner.builder().source(new LocalDirectoryImageSource(images)).cache(cache)
                .backend(backend).jobStore(InMemoryJobStore.builder().build()).workDirectory(work)
                .converter(QemuImgConverter.builder().build()).listener(events::add).build();
        engines.add(p);
        Job job = run(p, request("disk.qcow2", "vm-qemu"));

        assertThat(job.state()).as("%s %s", job.errorCode(), job.errorMessage()).isEqualTo(JobState.COMPLETED);
        assertVolumeHolds("vm-qemu", v1Raw);
        assertThat(volumeOpenedDuringTheDownload()).isFalse();
        assertThat(backend.writesDuringDownload.get()).isZero();
    }

    /**
     * The file backend, its writers seen with or without their local path; counts what reaches it.
     * Writes are counted as made during the download until the job's image is in the cache (the
     * INSPECTING stage).
     */
    final class StreamBackend extends ForwardingVolumeBackend {
        final AtomicInteger created = new AtomicInteger();
        final AtomicInteger opened = new AtomicInteger();
        final AtomicInteger finishes = new AtomicInteger();
        final AtomicLong writesAfterDownload = new AtomicLong();
        final AtomicLong writesDuringDownload = new AtomicLong();
        private final boolean stream;

        StreamBackend(VolumeBackend d, boolean stream) {
            super(d);
            this.stream = stream;
        }

        long writes() {
            return writesDuringDownload.get() + writesAfterDownload.get();
        }

        @Override
        public VolumeInfo create(String name, long capacityBytes) {
            created.incrementAndGet();
            return super.create(name, capacityBytes);
        }

        @Override
        public VolumeWriter openWriter(VolumeInfo volume) {
            opened.incrementAndGet();
            return new ForwardingVolumeWriter(delegate.openWriter(volume)) {
                @Override
                public Optional<Path> localPath() {
                    return stream ? Optional.empty() : super.localPath();
                }

                @Override
                public void write(ByteBuffer src) throws IOException {
                    boolean downloading = events.stream().noneMatch(e -> e.job().stage() == Stage.INSPECTING);
                    (downloading ? writesDuringDownload : writesAfterDownload).incrementAndGet();
                    super.write(src);
                }

                @Override
                public void finish() throws IOException {
                    finishes.incrementAndGet();
                    super.finish();
                }
            };
        }
    }

    /** A real source over a file that is replaced once, when a download has read 2 MiB of it. */
    final class RewritingSource extends ForwardingImageSource {
        final AtomicInteger rewrites = new AtomicInteger();
        final AtomicLong writesAtRewrite = new AtomicLong();
        private final Path file;
        private final byte[] next;
        private final AtomicLong readSinceStat = new AtomicLong();

        RewritingSource(ImageSource delegate, Path file, byte[] next) {
            super(delegate);
            this.file = file;
            this.next = next;
        }

        @Override
        public synchronized ObjectInfo stat(ImageRef ref) {
            readSinceStat.set(0);
            return delegate.stat(ref);
        }

        @Override
        public InputStream open(ImageRef ref, String etag, long offset, long length) {
            return new FilterInputStream(delegate.open(ref, etag, offset, length)) {
                @Override
                public int read(byte[] b, int off, int len) throws IOException {
                    int n = super.read(b, off, len);
                    long after = n > 0 ? readSinceStat.addAndGet(n) : 0;
                    if (after >= 2 << 20 && after - n < 2 << 20) {
                        rewrite();
                    }
                    return n;
                }
            };
        }

        private synchronized void rewrite() throws IOException {
            if (rewrites.get() == 0) {
                rewrites.incrementAndGet();
                writesAtRewrite.set(volumeBytesSoFar());
                FileTime before = Files.getLastModifiedTime(file);
                Files.write(file, next, StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE);
                Files.setLastModifiedTime(file, FileTime.fromMillis(before.toMillis() + 1000));
            }
        }
    }

    /** Bytes of the volume file that are not zero so far: what the first version put there. */
    private long volumeBytesSoFar() throws IOException {
        try (Stream<Path> f = Files.list(work.resolve("volumes"))) {
            long nonZero = 0;
            for (Path v : f.filter(Files::isRegularFile).toList()) {
                byte[] b = Files.readAllBytes(v);
                for (byte x : b) {
                    nonZero += x != 0 ? 1 : 0;
                }
            }
            return nonZero;
        }
    }
}
