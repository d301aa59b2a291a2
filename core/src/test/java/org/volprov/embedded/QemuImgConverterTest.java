package org.volprov.embedded;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.volprov.Cancellation;
import org.volprov.ErrorCode;
import org.volprov.ImageFormat;
import org.volprov.ImageInfo;
import org.volprov.ProvisioningException;
import org.volprov.testing.TestImages;

class QemuImgConverterTest {
    private static final long SIZE = 24L << 20;
    @TempDir
    static Path dir;
    static Path raw;
    static Path qcow2;
    private final QemuImgConverter converter = new QemuImgConverter();

    @BeforeAll
    static void images() throws Exception {
        raw = TestImages.raw(dir.resolve("disk.raw"), SIZE, 1);
        qcow2 = TestImages.qcow2(raw, dir.resolve("disk.qcow2"), false);
    }

    @Test
    void inspect_qcow2_reportsVirtualSize() {
        ImageInfo info = converter.inspect(qcow2, ImageFormat.AUTO);
        assertThat(info.format()).isEqualTo(ImageFormat.QCOW2);
        assertThat(info.virtualSize()).isEqualTo(SIZE);
        assertThat(converter.inspect(qcow2, ImageFormat.QCOW2).virtualSize()).isEqualTo(SIZE);
    }

    @Test
    void inspect_raw_needsNoQemuImg() {
        ImageInfo info = new QemuImgConverter("/nonexistent/qemu-img").inspect(raw, ImageFormat.AUTO);
        assertThat(info).isEqualTo(new ImageInfo(ImageFormat.RAW, SIZE, SIZE));
    }

    @Test
    void inspect_whenRequestedFormatDiffers_failsUnsupported() {
        assertUnsupported(() -> converter.inspect(raw, ImageFormat.QCOW2), "the request says QCOW2");
        assertUnsupported(() -> converter.inspect(qcow2, ImageFormat.RAW), "the request says RAW");
    }

    @Test
    void inspect_whenBackingFile_failsUnsupported() throws Exception {
        Path overlay = TestImages.qcow2WithBacking(qcow2, dir.resolve("overlay.qcow2"));
        assertUnsupported(() -> converter.inspect(overlay, ImageFormat.AUTO), "backing file");
    }

    @Test
    void inspect_whenHeaderCorrupt_failsUnsupported() throws Exception {
        Path bad = dir.resolve("corrupt.qcow2");
        Files.copy(qcow2, bad);
        try (RandomAccessFile f = new RandomAccessFile(bad.toFile(), "rw")) {
            f.seek(40); // l1_size and l1_table_offset
            f.write(new byte[] {(byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff, 0x7f, 0x7f, 0x7f, 0x7f});
        }
        assertUnsupported(() -> converter.inspect(bad, ImageFormat.AUTO), "");
    }

    @Test
    void inspect_otherFormats_areRefused() throws Exception {
        Path vmdk = dir.resolve("x.vmdk");
        TestImages.run(List.of("qemu-img", "convert", "-f", "raw", "-O", "vmdk", raw.toString(), vmdk.toString()));
        assertUnsupported(() -> converter.inspect(vmdk, ImageFormat.AUTO), "neither qcow2 nor raw");
    }

    @Test
    void convert_writesTheRawContentInPlace_withProgress() throws Exception {
        Path target = dir.resolve("target-" + System.nanoTime());
        try (RandomAccessFile f = new RandomAccessFile(target.toFile(), "rw")) {
            f.setLength(SIZE + (4 << 20));
            f.seek(SIZE - 10);
            f.write(new byte[] {9, 9, 9, 9, 9, 9, 9, 9, 9, 9}); // stale data the conversion must overwrite
        }
        List<Long> progress = new ArrayList<>();
        ImageInfo info = converter.inspect(qcow2, ImageFormat.AUTO);
        converter.convertToRaw(qcow2, info, target, false, progress::add, Cancellation.none());
        assertThat(TestImages.sha256(target, SIZE)).isEqualTo(TestImages.sha256(raw));
        assertThat(progress).isNotEmpty().isSorted().last().isEqualTo(SIZE);
    }

    @Test
    void convert_neverCreatesTheTarget() {
        Path missing = dir.resolve("missing-target");
        ImageInfo info = converter.inspect(qcow2, ImageFormat.AUTO);
        assertThatThrownBy(() -> converter.convertToRaw(qcow2, info, missing, false, p -> { }, Cancellation.none()))
                .isInstanceOf(ProvisioningException.class);
        assertThat(missing).doesNotExist();
    }

    @Test
    void convert_whenCancelled_killsQemuImgPromptly() throws Exception {
        Path bigRaw = TestImages.raw(dir.resolve("big.raw"), 512L << 20, 5);
        Path big = TestImages.qcow2(bigRaw, dir.resolve("big.qcow2"), true);
        Files.delete(bigRaw);
        Path target = dir.resolve("big-target");
        try (RandomAccessFile f = new RandomAccessFile(target.toFile(), "rw")) {
            f.setLength(512L << 20);
        }
        ImageInfo info = converter.inspect(big, ImageFormat.AUTO);
        Cancellation c = Cancellation.none();
        CompletableFuture<Long> firstProgress = new CompletableFuture<>();
        CompletableFuture<Throwable> outcome = CompletableFuture.supplyAsync(() -> {
            try {
                converter.convertToRaw(big, info, target, false, firstProgress::complete, c);
                return null;
            } catch (Throwable t) {
                return t;
            }
        });
        firstProgress.get(60, TimeUnit.SECONDS);
        c.cancel(ErrorCode.CANCELLED, "test");
        Throwable t = outcome.get(10, TimeUnit.SECONDS);
        assertThat(t).isInstanceOf(ProvisioningException.class);
        assertThat(((ProvisioningException) t).code()).isEqualTo(ErrorCode.CANCELLED);
    }

    private static void assertUnsupported(org.assertj.core.api.ThrowableAssert.ThrowingCallable call, String text) {
        assertThatThrownBy(call)
                .isInstanceOf(ProvisioningException.class)
                .hasMessageContaining(text)
                .satisfies(e -> assertThat(((ProvisioningException) e).code()).isEqualTo(ErrorCode.UNSUPPORTED_IMAGE));
    }
}
