package org.volprov.image;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.volprov.Cancellation;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;
import org.volprov.contract.ImageConverterContract;
import org.volprov.testing.QemuImgWrappers;
import org.volprov.testing.TestImages;

/**
 * {@code qemu-img} as an {@link org.volprov.image.ImageConverter}: the contract, and what bounds it: the
 * volume's size before {@code check}, the output cap, the limits, the kill on cancellation and the
 * orphans of JVMs that are gone.
 */
class QemuImgConverterTest extends ImageConverterContract {
    private final QemuImgConverter converter = new QemuImgConverter();

    @Override
    protected ImageConverter converter() {
        return converter;
    }

    @Test
    void inspect_raw_needsNoQemuImg() {
        ImageInfo info = QemuImgConverter.builder().executable("/nonexistent/qemu-img").build()
                .inspect(raw, ImageFormat.AUTO);
        assertThat(info).isEqualTo(new ImageInfo(ImageFormat.RAW, SIZE, SIZE));
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

    // ---------------------------------------------------------------- hostile images, limits, cancellation, orphans

    /**
     * A qcow2 of {@code rawBytes} random bytes in 512-byte clusters whose refcount blocks are zeroed:
     * {@code qemu-img info} reads it, {@code check} reports every cluster, one line each (some 114
     * bytes of output per KiB of image).
     */
    private static Path refcountsZeroed(String name, int rawBytes) throws Exception {
        Path source = dir.resolve(name + ".raw");
        byte[] content = new byte[rawBytes];
        new java.util.Random(rawBytes).nextBytes(content);
        Files.write(source, content);
        Path image = dir.resolve(name + ".qcow2");
        TestImages.run(List.of("qemu-img", "convert", "-f", "raw", "-O", "qcow2", "-o", "cluster_size=512",
                source.toString(), image.toString()));
        try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
            f.seek(20);
            int clusterSize = 1 << f.readInt();
            f.seek(48);
            long tableOffset = f.readLong();
            int tableClusters = f.readInt();
            for (long i = 0; i < (long) tableClusters * clusterSize / 8; i++) {
                f.seek(tableOffset + 8 * i);
                long block = f.readLong();
                if (block != 0) {
                    f.seek(block);
                    f.write(new byte[clusterSize]);
                }
            }
        }
        return image;
    }

    @Test
    void inspect_whenTheImageIsLargerThanTheVolume_refusesItBeforeCheckWalksIt() throws Exception {
        Path corrupt = refcountsZeroed("too-large", 1 << 20);
        assertThatThrownBy(() -> converter.inspect(corrupt, ImageFormat.AUTO, (1 << 20) - 1, Cancellation.none()))
                .isInstanceOfSatisfying(ProvisioningException.class,
                        e -> assertThat(e.code()).isEqualTo(ErrorCode.VOLUME_TOO_SMALL));
        // Large enough, the same image fails the check it then reaches.
        assertUnsupported(() -> converter.inspect(corrupt, ImageFormat.AUTO, 1 << 20, Cancellation.none()),
                "corrupt");
    }

    @Test
    void inspect_whenCheckPrintsMoreThanTheCap_stopsItAndRefusesTheImage() throws Exception {
        // 16 MiB of clusters, about 3.7 MB of check output: beyond the 1 MiB cap.
        Path chatty = refcountsZeroed("chatty", 16 << 20);
        assertUnsupported(() -> converter.inspect(chatty, ImageFormat.AUTO), "printed more than 1048576 bytes");
    }

    @Test
    void inspect_whenCancelledWhileCheckRuns_killsQemuImgAndThrowsTheCancellationsCode() throws Exception {
        Path wrapper = QemuImgWrappers.stoppingBefore(dir, "check");
        QemuImgConverter stalling = QemuImgConverter.builder().executable(wrapper.toString()).build();
        Cancellation c = Cancellation.none();
        CompletableFuture<Throwable> outcome = CompletableFuture.supplyAsync(() -> {
            try {
                stalling.inspect(qcow2, ImageFormat.AUTO, SIZE, c);
                return null;
            } catch (Throwable t) {
                return t;
            }
        });
        ProcessHandle check = QemuImgWrappers.awaitStopped(wrapper, Duration.ofSeconds(30));

        c.cancel(ErrorCode.CANCELLED, "cancelled by the test");
        // A stopped qemu-img never ends by itself: only the kill ends the inspection.
        Throwable t = outcome.get(30, TimeUnit.SECONDS);
        assertThat(t).isInstanceOfSatisfying(ProvisioningException.class,
                e -> assertThat(e.code()).isEqualTo(ErrorCode.CANCELLED));
        assertThat(check.onExit().get(10, TimeUnit.SECONDS).isAlive()).isFalse();
    }

    @Test
    void inspect_runsQemuImgUnderTheAddressSpaceAndCpuLimits() throws Exception {
        Path limits = dir.resolve("limits.txt");
        Path wrapper = QemuImgWrappers.script(dir.resolve("qemu-img-limits"),
                "[ \"$1\" = info ] && cat /proc/self/limits > " + limits + "\nexec qemu-img \"$@\"\n");
        QemuImgConverter limited = QemuImgConverter.builder().executable(wrapper.toString())
                .inspectLimits(512L << 20, Duration.ofSeconds(7)).build();
        assertThat(limited.limited()).isTrue();

        assertThat(limited.inspect(qcow2, ImageFormat.AUTO).virtualSize()).isEqualTo(SIZE);
        assertThat(Files.readString(limits))
                .containsPattern("Max cpu time +7 +7 +seconds")
                .containsPattern("Max address space +536870912 +536870912 +bytes")
                .containsPattern("Max core file size +0 +0 +bytes");
    }

    @Test
    void build_withoutPrlimit_runsQemuImgUnlimited() {
        QemuImgConverter unlimited = QemuImgConverter.builder().prlimit("/nonexistent/prlimit").build();
        assertThat(unlimited.limited()).isFalse();
        assertThat(unlimited.inspect(qcow2, ImageFormat.AUTO).virtualSize()).isEqualTo(SIZE);
        assertThat(unlimited.toString()).contains("no limits");
    }

    @Test
    void endOrphans_endsQemuImgLeftByAJvmThatIsGone_andLeavesThoseOfLiveOnes() throws Exception {
        // One qemu-img of this JVM, and a process marked as a dead JVM's child (its mark names no process).
        Path wrapper = QemuImgWrappers.stoppingBefore(dir, "info");
        Cancellation c = Cancellation.none();
        CompletableFuture<Throwable> live = CompletableFuture.supplyAsync(() -> {
            try {
                QemuImgConverter.builder().executable(wrapper.toString()).build().inspect(qcow2, ImageFormat.AUTO,
                        SIZE, c);
                return null;
            } catch (Throwable t) {
                return t;
            }
        });
        ProcessHandle ours = QemuImgWrappers.awaitStopped(wrapper, Duration.ofSeconds(30));
        ProcessBuilder orphanBuilder = new ProcessBuilder("sleep", "600");
        orphanBuilder.environment().put(QemuImgChildren.VARIABLE, "999999999:1");
        Process orphan = orphanBuilder.start();
        try {
            assertThat(QemuImgConverter.endOrphans()).isEqualTo(1);
            assertThat(orphan.waitFor(10, TimeUnit.SECONDS)).as("the orphan was ended").isTrue();
            assertThat(ours.isAlive()).as("this live JVM's qemu-img is left alone").isTrue();
        } finally {
            c.cancel(ErrorCode.CANCELLED, "done");
            orphan.destroyForcibly();
        }
        assertThat(live.get(30, TimeUnit.SECONDS)).isInstanceOf(ProvisioningException.class);
    }
}
