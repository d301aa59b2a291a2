package org.volprov.contract;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.assertj.core.api.ThrowableAssert;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.volprov.Cancellation;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;
import org.volprov.image.ImageConverter;
import org.volprov.image.ImageFormat;
import org.volprov.image.ImageInfo;
import org.volprov.testing.TestImages;

/**
 * What every {@link ImageConverter} does with the same images (real files made with
 * {@code qemu-img}): the formats it reports, the images it refuses with {@code UNSUPPORTED_IMAGE},
 * the sizes it checks, the bytes it writes (the image's zero regions over stale bytes, nothing past
 * the virtual size) and how it stops when cancelled. An implementation's test extends this class;
 * its own tests may use the images made here.
 */
public abstract class ImageConverterContract {
    /** The virtual size of the test images: 24 MiB, one MiB region in three zero. */
    protected static final long SIZE = 24L << 20;
    @TempDir
    protected static Path dir;
    /** The raw image. */
    protected static Path raw;
    /** {@link #raw} as an uncompressed qcow2. */
    protected static Path qcow2;
    /** {@link #raw} as a compressed qcow2. */
    protected static Path compressed;

    /** The converter under test; the same instance for every call of one test. */
    protected abstract ImageConverter converter();

    @BeforeAll
    static void images() throws Exception {
        raw = TestImages.raw(dir.resolve("disk.raw"), SIZE, 1);
        qcow2 = TestImages.qcow2(raw, dir.resolve("disk.qcow2"), false);
        compressed = TestImages.qcow2(raw, dir.resolve("compressed.qcow2"), true);
    }

    @Test
    void inspect_qcow2_reportsItsFormatVirtualSizeAndFileSize() throws IOException {
        ImageInfo info = converter().inspect(qcow2, ImageFormat.AUTO);
        assertThat(info).isEqualTo(new ImageInfo(ImageFormat.QCOW2, SIZE, Files.size(qcow2)));
        assertThat(converter().inspect(qcow2, ImageFormat.QCOW2)).isEqualTo(info);
        assertThat(converter().inspect(compressed, ImageFormat.AUTO))
                .isEqualTo(new ImageInfo(ImageFormat.QCOW2, SIZE, Files.size(compressed)));
    }

    @Test
    void inspect_raw_isItsFileSize() {
        assertThat(converter().inspect(raw, ImageFormat.AUTO)).isEqualTo(new ImageInfo(ImageFormat.RAW, SIZE, SIZE));
        assertThat(converter().inspect(raw, ImageFormat.RAW)).isEqualTo(new ImageInfo(ImageFormat.RAW, SIZE, SIZE));
    }

    @Test
    void inspect_whenRequestedFormatDiffers_failsUnsupported() {
        assertUnsupported(() -> converter().inspect(raw, ImageFormat.QCOW2), "the request says QCOW2");
        assertUnsupported(() -> converter().inspect(qcow2, ImageFormat.RAW), "the request says RAW");
    }

    @Test
    void inspect_otherFormats_areRefused() throws Exception {
        Path vmdk = dir.resolve("x.vmdk");
        TestImages.run(List.of("qemu-img", "convert", "-f", "raw", "-O", "vmdk", raw.toString(), vmdk.toString()));
        assertUnsupported(() -> converter().inspect(vmdk, ImageFormat.AUTO), "neither qcow2 nor raw");
    }

    @Test
    void inspect_whenBackingFile_failsUnsupported_sayingToFlatten() throws Exception {
        Path overlay = TestImages.qcow2WithBacking(qcow2, dir.resolve("overlay.qcow2"));
        assertUnsupported(() -> converter().inspect(overlay, ImageFormat.AUTO), "backing file");
        assertUnsupported(() -> converter().inspect(overlay, ImageFormat.AUTO), "flatten");
    }

    @Test
    void inspect_whenExternalDataFile_failsUnsupported() throws Exception {
        Path f = dir.resolve("datafile.qcow2");
        TestImages.run(List.of("qemu-img", "create", "-q", "-f", "qcow2", "-o",
                "data_file=" + dir.resolve("datafile.raw"), f.toString(), "2M"));
        assertUnsupported(() -> converter().inspect(f, ImageFormat.AUTO), "external data file");
    }

    @Test
    void inspect_whenEncrypted_failsUnsupported() throws Exception {
        for (String format : new String[] {"luks", "aes"}) {
            Path f = dir.resolve("enc-" + format + ".qcow2");
            if (!Files.exists(f)) {
                TestImages.qcow2Encrypted(f, format);
            }
            assertUnsupported(() -> converter().inspect(f, ImageFormat.AUTO), "encrypted");
        }
    }

    @Test
    void inspect_whenTheL1TableLiesPastTheEnd_failsUnsupported() throws Exception {
        Path bad = dir.resolve("corrupt-header.qcow2");
        Files.copy(qcow2, bad);
        try (RandomAccessFile f = new RandomAccessFile(bad.toFile(), "rw")) {
            f.seek(40); // l1_size and l1_table_offset
            f.write(new byte[] {(byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff, 0x7f, 0x7f, 0x7f, 0x7f});
        }
        assertUnsupported(() -> converter().inspect(bad, ImageFormat.AUTO), "");
    }

    @Test
    void inspect_whenAnL1EntryPointsPastTheEnd_failsUnsupported_corrupt() throws Exception {
        Path bad = dir.resolve("corrupt-l1.qcow2");
        Files.copy(qcow2, bad);
        try (RandomAccessFile f = new RandomAccessFile(bad.toFile(), "rw")) {
            f.seek(40);
            long l1 = f.readLong();
            f.seek(l1);
            f.writeLong(0x00f0_0000_0000_0000L);
        }
        assertUnsupported(() -> converter().inspect(bad, ImageFormat.AUTO), "corrupt");
    }

    @Test
    void inspect_forAVolume_whenTheImageIsLarger_failsVolumeTooSmall() {
        for (Path image : new Path[] {raw, qcow2}) {
            assertThatThrownBy(() -> converter().inspect(image, ImageFormat.AUTO, SIZE - 1, Cancellation.none()))
                    .isInstanceOfSatisfying(ProvisioningException.class,
                            e -> assertThat(e.code()).isEqualTo(ErrorCode.VOLUME_TOO_SMALL));
            assertThat(converter().inspect(image, ImageFormat.AUTO, SIZE, Cancellation.none()).virtualSize())
                    .isEqualTo(SIZE);
        }
    }

    @Test
    void inspect_forAVolume_whenAlreadyCancelled_throwsTheCancellationsCode() {
        Cancellation c = Cancellation.none();
        c.cancel(ErrorCode.TIMED_OUT, "the test's timeout");
        assertThatThrownBy(() -> converter().inspect(qcow2, ImageFormat.AUTO, SIZE, c))
                .isInstanceOfSatisfying(ProvisioningException.class,
                        e -> assertThat(e.code()).isEqualTo(ErrorCode.TIMED_OUT));
    }

    @Test
    void convert_overStaleBytes_writesTheRawContentZerosIncluded_withProgress() throws Exception {
        Path target = dir.resolve("stale-target-" + System.nanoTime());
        try (RandomAccessFile f = new RandomAccessFile(target.toFile(), "rw")) {
            f.setLength(SIZE + (4 << 20));
            byte[] stale = new byte[4096];
            Arrays.fill(stale, (byte) 9);
            for (long at = 0; at < SIZE; at += 1 << 20) {
                f.seek(at);
                f.write(stale); // an earlier tenant's bytes, also where the image is zero
            }
            f.seek(SIZE - stale.length);
            f.write(stale); // and at the image's last bytes
        }
        List<Long> progress = new ArrayList<>();
        ImageInfo info = converter().inspect(qcow2, ImageFormat.AUTO);
        converter().convertToRaw(qcow2, info, target, false, progress::add, Cancellation.none());
        assertThat(TestImages.sha256(target, SIZE)).isEqualTo(TestImages.sha256(raw));
        assertThat(progress).isNotEmpty().isSorted().last().isEqualTo(SIZE);
    }

    @Test
    void convert_compressedOntoAZeroTarget_givesTheRawContent_andLeavesTheTailPastTheImageZero() throws Exception {
        Path target = dir.resolve("zero-target-" + System.nanoTime());
        try (RandomAccessFile f = new RandomAccessFile(target.toFile(), "rw")) {
            f.setLength(SIZE + (4 << 20));
        }
        ImageInfo info = converter().inspect(compressed, ImageFormat.AUTO);
        converter().convertToRaw(compressed, info, target, true, p -> { }, Cancellation.none());
        assertThat(TestImages.sha256(target, SIZE)).isEqualTo(TestImages.sha256(raw));
        assertThat(Files.size(target)).isEqualTo(SIZE + (4 << 20));
        assertThat(TestImages.zerosBetween(target, SIZE, SIZE + (4 << 20))).as("tail reads as zeros").isTrue();
    }

    @Test
    void convert_neverCreatesTheTarget() {
        Path missing = dir.resolve("missing-target");
        ImageInfo info = converter().inspect(qcow2, ImageFormat.AUTO);
        assertThatThrownBy(() -> converter().convertToRaw(qcow2, info, missing, false, p -> { }, Cancellation.none()))
                .isInstanceOfSatisfying(ProvisioningException.class,
                        e -> assertThat(e.code()).isEqualTo(ErrorCode.BACKEND_FAILURE));
        assertThat(missing).doesNotExist();
    }

    @Test
    void convert_whenCancelledAtTheFirstProgress_stopsWithTheCancellationsCode() throws Exception {
        Path target = dir.resolve("cancel-target-" + System.nanoTime());
        try (RandomAccessFile f = new RandomAccessFile(target.toFile(), "rw")) {
            f.setLength(SIZE);
        }
        for (Path image : new Path[] {qcow2, compressed}) {
            ImageInfo info = converter().inspect(image, ImageFormat.AUTO);
            Cancellation c = Cancellation.none();
            List<Long> progress = new ArrayList<>();
            assertThatThrownBy(() -> converter().convertToRaw(image, info, target, true, done -> {
                progress.add(done);
                c.cancel(ErrorCode.CANCELLED, "test");
            }, c)).as(image.getFileName().toString())
                    .isInstanceOfSatisfying(ProvisioningException.class,
                            e -> assertThat(e.code()).isEqualTo(ErrorCode.CANCELLED));
            assertThat(progress).isNotEmpty().doesNotContain(SIZE);
        }
    }

    @Test
    void convert_whenAlreadyCancelled_throwsTheCancellationsCode() throws Exception {
        Path target = dir.resolve("cancelled-target-" + System.nanoTime());
        try (RandomAccessFile f = new RandomAccessFile(target.toFile(), "rw")) {
            f.setLength(SIZE);
        }
        ImageInfo info = converter().inspect(qcow2, ImageFormat.AUTO);
        Cancellation c = Cancellation.none();
        c.cancel(ErrorCode.CANCELLED, "test");
        List<Long> progress = new ArrayList<>();
        assertThatThrownBy(() -> converter().convertToRaw(qcow2, info, target, true, progress::add, c))
                .isInstanceOfSatisfying(ProvisioningException.class,
                        e -> assertThat(e.code()).isEqualTo(ErrorCode.CANCELLED));
        assertThat(progress).isEmpty();
        assertThat(TestImages.zerosBetween(target, 0, SIZE)).as("nothing written").isTrue();
    }

    /** Asserts that {@code call} fails with {@code UNSUPPORTED_IMAGE} and a message containing {@code text}. */
    protected static void assertUnsupported(ThrowableAssert.ThrowingCallable call, String text) {
        assertThatThrownBy(call)
                .isInstanceOf(ProvisioningException.class)
                .hasMessageContaining(text)
                .satisfies(e -> assertThat(((ProvisioningException) e).code()).isEqualTo(ErrorCode.UNSUPPORTED_IMAGE));
    }
}
