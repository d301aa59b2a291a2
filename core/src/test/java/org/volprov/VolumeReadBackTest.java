package org.volprov;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.volprov.cache.DiskImageCache;
import org.volprov.image.QemuImgConverter;
import org.volprov.source.LocalDirectoryImageSource;
import org.volprov.testing.ForwardingVolumeBackend;
import org.volprov.testing.ForwardingVolumeWriter;
import org.volprov.testing.TestImages;
import org.volprov.volume.FileVolumeBackend;
import org.volprov.volume.VolumeBackend;
import org.volprov.volume.VolumeInfo;
import org.volprov.volume.VolumeWriter;

/**
 * The {@code verifyWrittenVolume} option against real files and a real cache: a backend whose
 * writer changes one byte of the real volume file after its flush, before the read-back, stands for
 * a write path or a disk that lost a write.
 */
class VolumeReadBackTest {
    private static final long IMAGE_SIZE = 6L << 20;
    private static final long VOLUME_SIZE = 8L << 20;
    private static final Duration WAIT = Duration.ofSeconds(60);

    @TempDir
    static Path images;
    static String rawDigest;

    @TempDir
    Path work;
    private DiskImageCache cache;
    private FileVolumeBackend files;
    private final List<Provisioner> engines = new ArrayList<>();

    @BeforeAll
    static void makeImages() throws Exception {
        Path bucket = Files.createDirectories(images.resolve("images"));
        Path raw = TestImages.raw(bucket.resolve("disk.raw"), IMAGE_SIZE, 9);
        rawDigest = TestImages.sha256(raw);
        TestImages.publishChecksum(raw);
        TestImages.publishChecksum(TestImages.qcow2(raw, bucket.resolve("disk.qcow2"), false));
        TestImages.publishChecksum(TestImages.qcow2(raw, bucket.resolve("packed.qcow2"), true));
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

    private Provisioner start(VolumeBackend backend, boolean verify) {
        return start(Provisioner.builder().backend(backend).verifyWrittenVolume(verify));
    }

    private Provisioner start(Provisioner.Builder b) {
        Provisioner p = b.source(new LocalDirectoryImageSource(images)).cache(cache).workDirectory(work).build();
        engines.add(p);
        return p;
    }

    private static Job run(Provisioner p, String image, String volume) {
        return p.await(p.submit(ProvisionRequest.builder().imageUri("s3://images/" + image).volumeName(volume)
                .volumeSizeBytes(VOLUME_SIZE).build()), WAIT);
    }

    private boolean holdsImage(String volume) throws IOException {
        Path file = files.directory().resolve(volume);
        return TestImages.sha256(file, IMAGE_SIZE).equals(rawDigest)
                && TestImages.zerosBetween(file, IMAGE_SIZE, VOLUME_SIZE);
    }

    @Test
    void verifiedWrites_ofQcow2CompressedAndRawImages_complete_withTheVolumeReadBackToItsEnd() throws Exception {
        List<JobEvent> events = new java.util.concurrent.CopyOnWriteArrayList<>();
        Provisioner p = start(Provisioner.builder().backend(files).verifyWrittenVolume(true).listener(events::add));
        for (String image : List.of("disk.qcow2", "packed.qcow2", "disk.raw")) {
            String volume = "vm-" + image.replace('.', '-');
            Job job = run(p, image, volume);
            assertThat(job.state()).as(image).isEqualTo(JobState.COMPLETED);
            assertThat(holdsImage(volume)).as(image).isTrue();
        }
        assertThat(events).filteredOn(e -> e.kind() == JobEvent.Kind.PROGRESS && e.job().stage() == Stage.FINALIZING)
                .extracting(e -> e.job().progress().bytesDone()).as("read back to the volume's end")
                .contains(VOLUME_SIZE);
    }

    @Test
    void aByteOfTheImageChangedAfterTheFlush_failsTheJobVolumeVerifyFailed_andTheVolumeItMadeIsDeleted() {
        Provisioner p = start(new CorruptingBackend(files, IMAGE_SIZE / 2), true);
        for (String image : List.of("disk.qcow2", "disk.raw")) {
            Job job = run(p, image, "vm-bad");
            assertThat(job.state()).as(image).isEqualTo(JobState.FAILED);
            assertThat(job.error()).as(image).contains(ErrorCode.VOLUME_VERIFY_FAILED);
            assertThat(job.errorMessage()).contains("vm-bad").contains("hash to").contains("was deleted");
            assertThat(files.find("vm-bad")).as(image).isEmpty();
        }
    }

    @Test
    void aByteChangedPastTheImage_failsTheJob_namingItsOffset() {
        Provisioner p = start(new CorruptingBackend(files, VOLUME_SIZE - 1), true);
        Job job = run(p, "disk.qcow2", "vm-tail");
        assertThat(job.error()).contains(ErrorCode.VOLUME_VERIFY_FAILED);
        assertThat(job.errorMessage()).contains("byte " + (VOLUME_SIZE - 1)).contains("is not zero");
        assertThat(files.find("vm-tail")).isEmpty();
    }

    @Test
    void withoutTheOption_theSameChangedByteGoesUnnoticed() throws Exception {
        Provisioner p = start(new CorruptingBackend(files, IMAGE_SIZE / 2), false);
        Job job = run(p, "disk.qcow2", "vm-unchecked");
        assertThat(job.state()).isEqualTo(JobState.COMPLETED);
        assertThat(holdsImage("vm-unchecked")).as("the volume is damaged").isFalse();
    }

    @Test
    void aVolumeWrittenByQemuImg_isCheckedAgainstTheImageDecodedApartFromIt() {
        Provisioner p = start(Provisioner.builder().backend(new CorruptingBackend(files, 4096))
                .verifyWrittenVolume(true).converter(QemuImgConverter.builder().build()));
        Job job = run(p, "disk.qcow2", "vm-qemu");
        assertThat(job.error()).contains(ErrorCode.VOLUME_VERIFY_FAILED);
    }

    @Test
    void aReusedVolumeThatFailsTheCheck_isLeftInPlace_andTheJobSaysSo() {
        files.create("vm-old", VOLUME_SIZE);
        Provisioner p = start(new CorruptingBackend(files, 0), true);
        Job job = run(p, "disk.qcow2", "vm-old");
        assertThat(job.error()).contains(ErrorCode.VOLUME_VERIFY_FAILED);
        assertThat(job.errorMessage()).contains("existed before this job and was left in place");
        assertThat(files.find("vm-old")).isPresent();
    }

    @Test
    void aStreamedWrite_withoutALocalPath_isReadBackThroughTheBackendToo() throws Exception {
        VolumeBackend streamed = ForwardingVolumeBackend.withoutLocalPaths(files);
        Provisioner p = start(streamed, true);
        assertThat(run(p, "disk.qcow2", "vm-stream").state()).isEqualTo(JobState.COMPLETED);
        assertThat(holdsImage("vm-stream")).isTrue();
        Job bad = run(start(new CorruptingBackend(streamed, 12345), true), "disk.qcow2", "vm-stream-bad");
        assertThat(bad.error()).contains(ErrorCode.VOLUME_VERIFY_FAILED);
    }

    @Test
    void build_refusesTheOption_forABackendThatCannotReadVolumesBack() {
        VolumeBackend writeOnly = new ForwardingVolumeBackend(files) {
            @Override
            public boolean readsBack() {
                return false;
            }
        };
        assertThatThrownBy(() -> start(writeOnly, true)).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("verifyWrittenVolume");
        assertThat(run(start(writeOnly, false), "disk.raw", "vm-plain").state()).isEqualTo(JobState.COMPLETED);
    }

    /** A real backend whose writer, once it has flushed, flips the bits of the byte at {@code offset} of the volume file. */
    static final class CorruptingBackend extends ForwardingVolumeBackend {
        private final long offset;

        CorruptingBackend(VolumeBackend delegate, long offset) {
            super(delegate);
            this.offset = offset;
        }

        @Override
        public VolumeWriter openWriter(VolumeInfo volume) {
            return new ForwardingVolumeWriter(delegate.openWriter(volume)) {
                @Override
                public void finish() throws IOException {
                    super.finish();
                    try (RandomAccessFile f = new RandomAccessFile(volume.path(), "rw")) {
                        f.seek(offset);
                        int b = f.read();
                        f.seek(offset);
                        f.write(~b);
                    }
                }
            };
        }
    }
}
