package org.volprov.cache;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.security.MessageDigest;
import java.time.Instant;
import java.util.HexFormat;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.volprov.Cancellation;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;

class CacheFilesTest {
    @TempDir
    Path dir;

    private static byte[] bytes(int n) {
        byte[] b = new byte[n];
        new Random(n).nextBytes(b);
        return b;
    }

    private static String sha256(byte[] b) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
    }

    private long files() throws Exception {
        try (Stream<Path> s = Files.list(dir)) {
            return s.count();
        }
    }

    @Test
    void fill_writtenInPiecesAndInstalled_hashesLikeOneShotAndLandsUnderItsDigest() throws Exception {
        CacheFiles files = CacheFiles.open(dir);
        byte[] b = bytes(100_000);
        Path installed;
        try (Fill fill = files.newFill(b.length, Cancellation.none(), n -> { })) {
            fill.write(ByteBuffer.wrap(b, 0, 12_345));
            assertThat(fill.position()).isEqualTo(12_345);
            fill.write(ByteBuffer.wrap(b, 12_345, b.length - 12_345));
            assertThat(fill.finish(Optional.of(sha256(b)))).isEqualTo(sha256(b));
            installed = files.install(fill);
        }
        assertThat(installed.getFileName().toString()).isEqualTo(sha256(b));
        assertThat(Files.readAllBytes(installed)).isEqualTo(b);
        assertThat(files.scan(false).entries()).extracting(CacheIndex.Entry::sha256).containsExactly(sha256(b));
    }

    @Test
    void fill_hashedOnOtherThreads_seesTheBytesInWriteOrder_whateverTheWriteSizes() throws Exception {
        CacheFiles files = CacheFiles.open(dir);
        byte[] b = bytes(23 * 1024 * 1024 + 17);
        int[] sizes = {1, 100, 64 * 1024 - 1, 64 * 1024, 1 << 20, 3 * (1 << 20) + 512 * 1024, 7, 5 * (1 << 20)};
        // Several threads: only the chaining of the hash tasks keeps them in order.
        ExecutorService pool = Executors.newFixedThreadPool(3);
        try (Fill fill = files.newFill(b.length, Cancellation.none(), n -> { }, pool)) {
            // The caller reuses one buffer, as a download loop does: the hash must not see later bytes.
            ByteBuffer reused = ByteBuffer.allocate(5 * (1 << 20));
            for (int off = 0, i = 0; off < b.length; i++) {
                int n = Math.min(sizes[i % sizes.length], b.length - off);
                reused.clear();
                reused.put(b, off, n).flip();
                fill.write(reused);
                off += n;
            }
            assertThat(fill.finish(Optional.empty())).isEqualTo(sha256(b));
            assertThat(Files.readAllBytes(files.install(fill))).isEqualTo(b);
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void fill_whoseLastHandedOverWriteFindsTheDiskFull_failsFinishWithInsufficientSpace() throws Exception {
        // 3 MiB fit; the fourth slice, written on the hashing thread after the caller's last write returned, does not.
        CacheFiles files = CacheFiles.open(dir, (p, o) -> new FullDiskChannel(FileChannel.open(p, o), 3L << 20));
        byte[] b = bytes(4 << 20);
        ExecutorService pool = Executors.newSingleThreadExecutor();
        try (Fill fill = files.newFill(b.length, Cancellation.none(), n -> { }, pool)) {
            fill.write(ByteBuffer.wrap(b));
            assertThat(fill.position()).isEqualTo(b.length);
            assertThatThrownBy(() -> fill.finish(Optional.of(sha256(b))))
                    .isInstanceOfSatisfying(ProvisioningException.class,
                            e -> assertThat(e.code()).isEqualTo(ErrorCode.INSUFFICIENT_SPACE));
        } finally {
            pool.shutdownNow();
        }
        assertThat(files()).isZero();
    }

    @Test
    void fill_afterAHandedOverWriteFailed_refusesTheNextWriteWithTheDisksError() throws Exception {
        CacheFiles files = CacheFiles.open(dir, (p, o) -> new FullDiskChannel(FileChannel.open(p, o), 512 << 10));
        byte[] b = bytes(8 << 20);
        ExecutorService pool = Executors.newSingleThreadExecutor();
        try (Fill fill = files.newFill(b.length, Cancellation.none(), n -> { }, pool)) {
            fill.write(ByteBuffer.wrap(b, 0, 1 << 20)); // one slice, half of which fits
            pool.submit(() -> { }).get(); // queued behind that slice's task: it has run
            assertThatThrownBy(() -> fill.write(ByteBuffer.wrap(b, 2 << 20, 1 << 20)))
                    .isInstanceOfSatisfying(ProvisioningException.class,
                            e -> assertThat(e.code()).isEqualTo(ErrorCode.INSUFFICIENT_SPACE));
            assertThatThrownBy(() -> fill.write(ByteBuffer.wrap(b, 3 << 20, 1 << 20)))
                    .isInstanceOfSatisfying(ProvisioningException.class,
                            e -> assertThat(e.getMessage()).contains("an earlier write"));
        } finally {
            pool.shutdownNow();
        }
        assertThat(files()).isZero();
    }

    @Test
    void write_beyondAnnouncedSize_isRefused() throws Exception {
        CacheFiles files = CacheFiles.open(dir);
        try (Fill fill = files.newFill(10, Cancellation.none(), n -> { })) {
            assertThatThrownBy(() -> fill.write(ByteBuffer.allocate(11))).isInstanceOf(ProvisioningException.class);
        }
        assertThat(files()).isZero();
    }

    @Test
    void write_whenCancelled_throwsCancelledAndCloseRemovesTheTempFile() throws Exception {
        CacheFiles files = CacheFiles.open(dir);
        Cancellation c = Cancellation.none();
        try (Fill fill = files.newFill(100, c, n -> { })) {
            fill.write(ByteBuffer.allocate(50));
            assertThat(files()).isEqualTo(1);
            c.cancel(ErrorCode.CANCELLED, "stop");
            assertThatThrownBy(() -> fill.write(ByteBuffer.allocate(50)))
                    .isInstanceOfSatisfying(ProvisioningException.class,
                            e -> assertThat(e.code()).isEqualTo(ErrorCode.CANCELLED));
        }
        assertThat(files()).isZero();
    }

    @Test
    void finish_whenShort_failsAndRemovesTheTempFile() throws Exception {
        CacheFiles files = CacheFiles.open(dir);
        Fill fill = files.newFill(100, Cancellation.none(), n -> { });
        fill.write(ByteBuffer.allocate(99));
        assertThatThrownBy(() -> fill.finish(Optional.empty())).isInstanceOf(ProvisioningException.class);
        assertThat(files()).isZero();
    }

    @Test
    void install_whenDigestIsAlreadyCached_keepsTheExistingFile() throws Exception {
        CacheFiles files = CacheFiles.open(dir);
        byte[] b = bytes(1000);
        Path first = null;
        for (int i = 0; i < 2; i++) {
            try (Fill fill = files.newFill(b.length, Cancellation.none(), n -> { })) {
                fill.write(ByteBuffer.wrap(b));
                fill.finish(Optional.empty());
                Path p = files.install(fill);
                first = first == null ? p : first;
                assertThat(p).isEqualTo(first);
            }
        }
        assertThat(files()).isEqualTo(2); // data and .meta
    }

    @Test
    void scan_withSweepCutoff_sparesYoungTempAndLoneMetaFilesAndRemovesOldOnes() throws Exception {
        CacheFiles files = CacheFiles.open(dir);
        Instant now = Instant.parse("2024-05-01T12:00:00Z");
        String lone = sha256(bytes(10));
        Path youngTmp = Files.write(dir.resolve("0123456789abcdef0123456789abcdef.tmp"), bytes(100));
        Path youngMeta = Files.writeString(dir.resolve(lone + ".meta"), "sha256=" + lone + "\nsize=10\n");
        Path oldTmp = Files.write(dir.resolve("fedcba9876543210fedcba9876543210.tmp"), bytes(200));
        Files.setLastModifiedTime(youngTmp, FileTime.from(now.minusSeconds(60)));
        Files.setLastModifiedTime(youngMeta, FileTime.from(now.minusSeconds(60)));
        Files.setLastModifiedTime(oldTmp, FileTime.from(now.minusSeconds(7200)));

        CacheFiles.Scan c = files.scan(false, now.minusSeconds(3600));

        assertThat(c.removed()).isEqualTo(1);
        assertThat(Files.exists(oldTmp)).isFalse();
        assertThat(Files.exists(youngTmp)).isTrue();
        assertThat(Files.exists(youngMeta)).isTrue();
        assertThat(c.entries()).isEmpty();
        // Without a cutoff (a directory no one else uses) everything stray goes.
        assertThat(files.scan(false).removed()).isEqualTo(2);
        assertThat(files()).isZero();
    }

    @Test
    void scan_leavesTheEnginesStateDirectoryAlone_evenWhenItIsEmpty() throws Exception {
        CacheFiles files = CacheFiles.open(dir);
        Path state = Files.createDirectory(dir.resolve(DiskImageCache.STATE_DIRECTORY));

        assertThat(files.scan(false).removed()).isZero();
        assertThat(state).isDirectory();
        Path kept = Files.writeString(state.resolve("0".repeat(64) + ".end"), "{}");
        assertThat(files.scan(false).removed()).isZero();
        assertThat(kept).exists();
    }
}
