package org.volprov.image;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.assertj.core.api.ThrowableAssert;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.volprov.Cancellation;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;
import org.volprov.testing.TestImages;

/** The Java decoder as an {@link org.volprov.image.ImageConverter}: what it reads, what it refuses and how. */
class Qcow2ConverterTest {
    private static final long SIZE = 24L << 20;
    @TempDir
    static Path dir;
    static Path raw;
    static Path qcow2;
    private final Qcow2Converter converter = new Qcow2Converter(2);

    @BeforeAll
    static void images() throws Exception {
        raw = TestImages.raw(dir.resolve("disk.raw"), SIZE, 1);
        qcow2 = TestImages.qcow2(raw, dir.resolve("disk.qcow2"), false);
    }

    @Test
    void inspect_qcow2_reportsVirtualAndFileSize() throws IOException {
        ImageInfo info = converter.inspect(qcow2, ImageFormat.AUTO);
        assertThat(info).isEqualTo(new ImageInfo(ImageFormat.QCOW2, SIZE, Files.size(qcow2)));
        assertThat(converter.inspect(qcow2, ImageFormat.QCOW2)).isEqualTo(info);
    }

    @Test
    void inspect_raw_isItsFileSize() {
        assertThat(converter.inspect(raw, ImageFormat.AUTO)).isEqualTo(new ImageInfo(ImageFormat.RAW, SIZE, SIZE));
    }

    @Test
    void inspect_whenRequestedFormatDiffers_failsUnsupported() {
        assertUnsupported(() -> converter.inspect(raw, ImageFormat.QCOW2), "the request says QCOW2");
        assertUnsupported(() -> converter.inspect(qcow2, ImageFormat.RAW), "the request says RAW");
    }

    @Test
    void inspect_otherFormats_areRefused() throws Exception {
        Path vmdk = dir.resolve("x.vmdk");
        TestImages.run(List.of("qemu-img", "convert", "-f", "raw", "-O", "vmdk", raw.toString(), vmdk.toString()));
        assertUnsupported(() -> converter.inspect(vmdk, ImageFormat.AUTO), "neither qcow2 nor raw");
    }

    @Test
    void inspect_whenBackingFile_failsUnsupported_namingItAndSayingToFlatten() throws Exception {
        Path overlay = TestImages.qcow2WithBacking(qcow2, dir.resolve("overlay.qcow2"));
        assertUnsupported(() -> converter.inspect(overlay, ImageFormat.AUTO), "backing file ('" + qcow2 + "')");
        assertUnsupported(() -> converter.inspect(overlay, ImageFormat.AUTO), "flatten");
    }

    @Test
    void inspect_whenExternalDataFile_failsUnsupported() throws Exception {
        Path f = dir.resolve("datafile.qcow2");
        TestImages.run(List.of("qemu-img", "create", "-q", "-f", "qcow2", "-o",
                "data_file=" + dir.resolve("datafile.raw"), f.toString(), "2M"));
        assertUnsupported(() -> converter.inspect(f, ImageFormat.AUTO), "external data file");
    }

    @Test
    void inspect_whenEncrypted_failsUnsupported_withTheMethod() throws Exception {
        for (String format : new String[] {"luks", "aes"}) {
            Path f = TestImages.qcow2Encrypted(dir.resolve("enc-" + format + ".qcow2"), format);
            assertUnsupported(() -> converter.inspect(f, ImageFormat.AUTO), "encrypted (" + format.toUpperCase() + ")");
        }
    }

    @Test
    void inspect_whenUnknownIncompatibleFeature_failsUnsupported_namingTheBit() throws Exception {
        Path f = patched("unknown-feature.qcow2", 72 + 7, (byte) 0x20); // bit 5 of incompatible_features
        assertUnsupported(() -> converter.inspect(f, ImageFormat.AUTO), "bit 5");
    }

    @Test
    void inspect_whenMarkedCorrupt_failsUnsupported() throws Exception {
        Path f = patched("marked-corrupt.qcow2", 72 + 7, (byte) 0x02);
        assertUnsupported(() -> converter.inspect(f, ImageFormat.AUTO), "marked corrupt");
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
        assertUnsupported(() -> converter.inspect(bad, ImageFormat.AUTO), "corrupt");
    }

    @Test
    void convert_writesTheRawContentInPlace_overStaleBytes_withProgress() throws Exception {
        Path target = dir.resolve("target-" + System.nanoTime());
        try (RandomAccessFile f = new RandomAccessFile(target.toFile(), "rw")) {
            f.setLength(SIZE + (4 << 20));
            byte[] stale = new byte[4096];
            java.util.Arrays.fill(stale, (byte) 9);
            for (long at = 0; at < SIZE; at += 1 << 20) {
                f.seek(at);
                f.write(stale); // an earlier tenant's bytes, also where the image is zero
            }
        }
        List<Long> progress = new ArrayList<>();
        ImageInfo info = converter.inspect(qcow2, ImageFormat.AUTO);
        converter.convertToRaw(qcow2, info, target, false, progress::add, Cancellation.none());
        assertThat(TestImages.sha256(target, SIZE)).isEqualTo(TestImages.sha256(raw));
        assertThat(progress).isNotEmpty().isSorted().last().isEqualTo(SIZE);
    }

    @Test
    void convert_compressedImage_givesTheRawContent() throws Exception {
        Path compressed = TestImages.qcow2(raw, dir.resolve("compressed.qcow2"), true);
        Path target = dir.resolve("target-c-" + System.nanoTime());
        try (RandomAccessFile f = new RandomAccessFile(target.toFile(), "rw")) {
            f.setLength(SIZE);
        }
        ImageInfo info = converter.inspect(compressed, ImageFormat.AUTO);
        converter.convertToRaw(compressed, info, target, true, p -> { }, Cancellation.none());
        assertThat(TestImages.sha256(target)).isEqualTo(TestImages.sha256(raw));
    }

    @Test
    void convert_neverCreatesTheTarget() {
        Path missing = dir.resolve("missing-target");
        ImageInfo info = converter.inspect(qcow2, ImageFormat.AUTO);
        assertThatThrownBy(() -> converter.convertToRaw(qcow2, info, missing, false, p -> { }, Cancellation.none()))
                .isInstanceOfSatisfying(ProvisioningException.class,
                        e -> assertThat(e.code()).isEqualTo(ErrorCode.BACKEND_FAILURE));
        assertThat(missing).doesNotExist();
    }

    @Test
    void convert_whenCancelledMidway_stopsWithTheCancellationsCode() throws Exception {
        Path compressed = TestImages.qcow2(raw, dir.resolve("compressed-cancel.qcow2"), true);
        Path target = dir.resolve("cancel-target");
        try (RandomAccessFile f = new RandomAccessFile(target.toFile(), "rw")) {
            f.setLength(SIZE);
        }
        for (Path image : new Path[] {qcow2, compressed}) {
            ImageInfo info = converter.inspect(image, ImageFormat.AUTO);
            Cancellation c = Cancellation.none();
            List<Long> progress = new ArrayList<>();
            assertThatThrownBy(() -> converter.convertToRaw(image, info, target, true, done -> {
                progress.add(done);
                c.cancel(ErrorCode.CANCELLED, "test");
            }, c)).isInstanceOfSatisfying(ProvisioningException.class,
                    e -> assertThat(e.code()).isEqualTo(ErrorCode.CANCELLED));
            assertThat(progress).hasSize(1);
        }
    }

    private static Path patched(String name, long offset, byte orBits) throws IOException {
        Path f = dir.resolve(name);
        Files.copy(qcow2, f);
        try (RandomAccessFile r = new RandomAccessFile(f.toFile(), "rw")) {
            r.seek(offset);
            int b = r.read();
            r.seek(offset);
            r.write(b | orBits);
        }
        return f;
    }

    private static void assertUnsupported(ThrowableAssert.ThrowingCallable call, String text) {
        assertThatThrownBy(call)
                .isInstanceOf(ProvisioningException.class)
                .hasMessageContaining(text)
                .satisfies(e -> assertThat(((ProvisioningException) e).code()).isEqualTo(ErrorCode.UNSUPPORTED_IMAGE));
    }
}
