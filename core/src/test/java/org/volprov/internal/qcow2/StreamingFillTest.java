package org.volprov.internal.qcow2;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.Executor;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.IntSupplier;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;
import org.volprov.Cancellation;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;
import org.volprov.image.ImageFormat;
import org.volprov.internal.Writeback;
import org.volprov.testing.TestImages;
import org.volprov.volume.LocalVolumeWriter;

/**
 * The streaming fill: every corpus image fed in file order, in chunks of varying sizes (a few in
 * chunks of a few bytes), onto a local file (positional writes) and into a sequential writer (an
 * upload stream's shape), gives exactly the bytes of {@code qemu-img convert -O raw}, with the
 * volume past the image reading as zero; refusals come from the first bytes, before the volume is
 * opened.
 */
class StreamingFillTest {
    /** Room past the virtual size, not a multiple of any cluster size: the tail the fill must zero. */
    private static final long TAIL = 64 * 1024 + 512;
    private static ThreadPoolExecutor pool;
    /** Background flushes of volumes with a local path, as the engine's. */
    private static ExecutorService flushing;

    @TempDir
    Path work;

    @BeforeAll
    static void start() {
        pool = new ThreadPoolExecutor(2, 2, 0, TimeUnit.SECONDS, new LinkedBlockingQueue<>());
        flushing = Executors.newCachedThreadPool();
    }

    @AfterAll
    static void stop() {
        pool.shutdownNow();
        flushing.shutdown();
    }

    static List<Qcow2Corpus.Image> corpus() {
        return Qcow2Corpus.all();
    }

    private static final int[] CHUNKS = {1, 7, 512, 4096, 65536, 200_000, 1 << 20};

    @ParameterizedTest(name = "{0}")
    @MethodSource("corpus")
    void corpus_ontoALocalFile_givesQemuImgBytesAndAZeroTail(Qcow2Corpus.Image image) throws IOException {
        Path volume = localVolume(image.virtualSize() + TAIL, image.virtualSize() <= 64L << 20);
        boolean readsAsZero = image.virtualSize() > 64L << 20;
        Qcow2Stream.Stats stats;
        try (LocalVolumeWriter w = LocalVolumeWriter.open(volume, false)) {
            stats = fill(image.file(), w, image.virtualSize() + TAIL, readsAsZero, randomChunks(image.name()));
        }
        assertThat(Files.size(volume)).isEqualTo(image.virtualSize() + TAIL);
        assertThat(TestImages.sha256(volume, image.virtualSize())).isEqualTo(image.rawSha256());
        assertThat(TestImages.zerosBetween(volume, image.virtualSize(), image.virtualSize() + TAIL)).isTrue();
        if (usualLayout(image)) {
            assertThat(stats.finishBytes()).as("bytes written after the download, %s", stats).isZero();
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("corpus")
    void corpus_intoASequentialWriter_givesQemuImgBytesInGuestOrder(Qcow2Corpus.Image image) throws IOException {
        PagedVolumeWriter w = new PagedVolumeWriter(image.virtualSize() + TAIL);
        Qcow2Stream.Stats stats = fill(image.file(), w, image.virtualSize() + TAIL, false, randomChunks(image.name()));
        assertThat(w.disk.next()).as("guest-order writes cover the volume").isEqualTo(image.virtualSize() + TAIL);
        assertThat(w.disk.sha256(image.virtualSize())).isEqualTo(image.rawSha256());
        assertThat(w.finishes()).isEqualTo(1);
        if (usualLayout(image)) {
            assertThat(stats.finishBytes()).as("bytes written after the download, %s", stats).isZero();
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"v3-512", "v2-512", "deflate-512", "zstd-4k", "out-of-order-512", "odd-size",
        "extended-l2-edited", "zero-and-discard"})
    void corpus_inChunksOfAFewBytes_givesQemuImgBytesBothWays(String name) throws IOException {
        Qcow2Corpus.Image image = Qcow2Corpus.get(name);
        PagedVolumeWriter sequential = new PagedVolumeWriter(image.virtualSize());
        fill(image.file(), sequential, image.virtualSize(), true, tinyChunks(name));
        assertThat(sequential.disk.next()).isEqualTo(image.virtualSize());
        assertThat(sequential.disk.sha256(image.virtualSize())).isEqualTo(image.rawSha256());

        Path volume = localVolume(image.virtualSize(), true);
        try (LocalVolumeWriter w = LocalVolumeWriter.open(volume, false)) {
            fill(image.file(), w, image.virtualSize(), false, tinyChunks(name));
        }
        assertThat(TestImages.sha256(volume)).isEqualTo(image.rawSha256());
    }

    @Test
    void aLocalVolume_isFlushedInTheBackgroundWhileItIsWritten_andHoldsTheImage() throws IOException {
        Path raw = TestImages.raw(work.resolve("image.raw"), 2 * Writeback.EVERY + 4096 + 7, 43);
        long size = Files.size(raw);
        AtomicInteger flushes = new AtomicInteger();
        Executor counting = task -> {
            flushes.incrementAndGet();
            flushing.execute(task);
        };
        Path volume = localVolume(size, true);
        try (LocalVolumeWriter w = LocalVolumeWriter.open(volume, false)) {
            StreamingFill f = new StreamingFill(size, ImageFormat.AUTO, i -> new StreamingFill.Target(w, size, false),
                    pool, 2, counting, d -> { }, Cancellation.none(), Qcow2Stream.Limits.defaults());
            feedAll(raw, f, randomChunks("writeback"));
        }
        assertThat(flushes.get()).as("background flushes of %s bytes", size).isBetween(1, 2);
        assertThat(TestImages.sha256(volume)).isEqualTo(TestImages.sha256(raw));
    }

    @ParameterizedTest(name = "targetReadsAsZero={0}")
    @ValueSource(booleans = {true, false})
    void raw_passesStraightThrough_bothWays(boolean readsAsZero) throws IOException {
        Path raw = TestImages.raw(work.resolve("image.raw"), (5L << 20) + 4096 + 7, 41);
        long size = Files.size(raw);
        PagedVolumeWriter sequential = new PagedVolumeWriter(size + TAIL);
        Qcow2Stream.Stats stats = fill(raw, sequential, size + TAIL, readsAsZero, randomChunks("raw"));
        assertThat(sequential.disk.next()).isEqualTo(size + TAIL);
        assertThat(sequential.disk.sha256(size)).isEqualTo(TestImages.sha256(raw));
        assertThat(stats.liveBytes()).isEqualTo(size);

        Path volume = localVolume(size + TAIL, !readsAsZero);
        try (LocalVolumeWriter w = LocalVolumeWriter.open(volume, false)) {
            fill(raw, w, size + TAIL, readsAsZero, randomChunks("raw"));
        }
        assertThat(TestImages.sha256(volume, size)).isEqualTo(TestImages.sha256(raw));
        assertThat(TestImages.zerosBetween(volume, size, size + TAIL)).isTrue();
    }

    @Test
    void emptyObject_isAnEmptyRawImage_andTheVolumeIsZeroed() throws IOException {
        Path empty = Files.createFile(work.resolve("empty.raw"));
        PagedVolumeWriter w = new PagedVolumeWriter(4096);
        StreamingFill f = new StreamingFill(0, ImageFormat.AUTO, i -> new StreamingFill.Target(w, 4096, false), pool,
                2, null, d -> { }, Cancellation.none(), Qcow2Stream.Limits.defaults());
        try (FileChannel ch = FileChannel.open(empty, StandardOpenOption.READ)) {
            f.finish(ch);
        }
        assertThat(f.image().orElseThrow().format()).isEqualTo(ImageFormat.RAW);
        assertThat(w.disk.next()).isEqualTo(4096);
    }

    @Test
    void hostileHeaders_areRefusedFromTheFirstBytes_beforeTheVolumeIsOpened() throws IOException {
        Qcow2Corpus.Image valid = Qcow2Corpus.get("v3-64k");
        byte[] badClusterBits = Files.readAllBytes(valid.file());
        ByteBuffer.wrap(badClusterBits).putInt(20, 31);
        byte[] hugeL1 = Files.readAllBytes(valid.file());
        ByteBuffer.wrap(hugeL1).putInt(36, Integer.MAX_VALUE);
        byte[] vmdk = Arrays.copyOf("KDMV".getBytes(java.nio.charset.StandardCharsets.US_ASCII), 1 << 20);
        List<Path> hostile = List.of(Qcow2Corpus.backingFile(work), Qcow2Corpus.externalDataFile(work),
                Qcow2Corpus.encrypted(work, "aes"), Files.write(work.resolve("bits.qcow2"), badClusterBits),
                Files.write(work.resolve("l1.qcow2"), hugeL1), Files.write(work.resolve("x.vmdk"), vmdk));
        for (Path image : hostile) {
            byte[] bytes = Files.readAllBytes(image);
            AtomicInteger opened = new AtomicInteger();
            PagedVolumeWriter w = new PagedVolumeWriter(64L << 20);
            StreamingFill f = new StreamingFill(bytes.length, ImageFormat.AUTO, i -> {
                opened.incrementAndGet();
                return new StreamingFill.Target(w, 64L << 20, true);
            }, pool, 2, null, d -> { }, Cancellation.none(), Qcow2Stream.Limits.defaults());
            ProvisioningException refused = null;
            int at = 0;
            for (; at < bytes.length && refused == null; at += 16) {
                try {
                    f.feed(ByteBuffer.wrap(bytes, at, Math.min(16, bytes.length - at)));
                } catch (ProvisioningException e) {
                    refused = e;
                }
            }
            assertThat(refused).as(image.toString()).isNotNull();
            assertThat(refused.code()).as(image.toString()).isEqualTo(ErrorCode.UNSUPPORTED_IMAGE);
            assertThat(at).as("bytes fed before %s was refused", image).isLessThanOrEqualTo(64 * 1024);
            assertThat(opened).as(image.toString()).hasValue(0);
            assertThat(w.disk.next()).isZero();
            f.abort();
        }
    }

    @Test
    void requestedFormat_otherThanTheImage_isRefusedFromTheFirstBytes() {
        byte[] raw = new byte[8192];
        StreamingFill f = new StreamingFill(raw.length, ImageFormat.QCOW2, i -> {
            throw new AssertionError("opened");
        }, pool, 2, null, d -> { }, Cancellation.none(), Qcow2Stream.Limits.defaults());
        assertThatThrownBy(() -> f.feed(ByteBuffer.wrap(raw, 0, FormatProbe.HEAD_BYTES)))
                .isInstanceOfSatisfying(ProvisioningException.class,
                        e -> assertThat(e.code()).isEqualTo(ErrorCode.UNSUPPORTED_IMAGE));
    }

    @Test
    void targetSmallerThanTheImage_isRefusedBeforeAnythingIsWritten() {
        Qcow2Corpus.Image image = Qcow2Corpus.get("v3-4k");
        PagedVolumeWriter w = new PagedVolumeWriter(image.virtualSize());
        StreamingFill f = new StreamingFill(image.file().toFile().length(), ImageFormat.AUTO,
                i -> new StreamingFill.Target(w, image.virtualSize() - 512, true), pool, 2, null, d -> { },
                Cancellation.none(), Qcow2Stream.Limits.defaults());
        assertThatThrownBy(() -> f.feed(ByteBuffer.wrap(Files.readAllBytes(image.file()))))
                .isInstanceOfSatisfying(ProvisioningException.class,
                        e -> assertThat(e.code()).isEqualTo(ErrorCode.VOLUME_TOO_SMALL));
        assertThat(w.disk.next()).isZero();
    }

    @Test
    void abort_midDecode_leavesNoTaskOnTheExecutor_andRefusesMoreBytes() throws IOException {
        Path image = compressible(8L << 20);
        long virtualSize = 8L << 20;
        byte[] bytes = Files.readAllBytes(image);
        AtomicInteger submitted = new AtomicInteger();
        java.util.concurrent.Executor counting = task -> {
            submitted.incrementAndGet();
            pool.execute(task);
        };
        PagedVolumeWriter w = new PagedVolumeWriter(virtualSize);
        StreamingFill f = new StreamingFill(bytes.length, ImageFormat.AUTO,
                i -> new StreamingFill.Target(w, virtualSize, true), counting, 2, null, d -> { }, Cancellation.none(),
                Qcow2Stream.Limits.defaults());
        f.feed(ByteBuffer.wrap(bytes, 0, bytes.length / 2));
        f.abort();
        assertThat(pool.getQueue()).as("tasks left queued").isEmpty();
        assertThat(submitted.get()).as("clusters handed to the executor before the abort").isPositive();
        long written = w.position();
        assertThatThrownBy(() -> f.feed(ByteBuffer.wrap(bytes, bytes.length / 2, 16)))
                .isInstanceOf(IllegalStateException.class);
        assertThat(w.position()).isEqualTo(written);
        f.abort(); // idempotent
    }

    @Test
    void finish_beforeEveryByteWasFed_isRefused() throws IOException {
        Qcow2Corpus.Image image = Qcow2Corpus.get("v3-4k");
        byte[] bytes = Files.readAllBytes(image.file());
        StreamingFill f = new StreamingFill(bytes.length, ImageFormat.AUTO,
                i -> new StreamingFill.Target(new PagedVolumeWriter(image.virtualSize()), image.virtualSize(), true),
                pool, 2, null, d -> { }, Cancellation.none(), Qcow2Stream.Limits.defaults());
        f.feed(ByteBuffer.wrap(bytes, 0, bytes.length - 1));
        try (FileChannel ch = FileChannel.open(image.file(), StandardOpenOption.READ)) {
            assertThatThrownBy(() -> f.finish(ch)).isInstanceOf(IllegalStateException.class);
        }
        f.abort();
    }

    @Test
    void progress_countsGuestBytes_upToTheCapacity() throws IOException {
        Qcow2Corpus.Image image = Qcow2Corpus.get("zstd-64k");
        AtomicLong last = new AtomicLong(-1);
        AtomicInteger backwards = new AtomicInteger();
        PagedVolumeWriter w = new PagedVolumeWriter(image.virtualSize() + TAIL);
        StreamingFill f = new StreamingFill(Files.size(image.file()), ImageFormat.AUTO,
                i -> new StreamingFill.Target(w, image.virtualSize() + TAIL, true), pool, 2, null, d -> {
                    if (d < last.getAndSet(d)) {
                        backwards.incrementAndGet();
                    }
                }, Cancellation.none(), Qcow2Stream.Limits.defaults());
        feedAll(image.file(), f, randomChunks("progress"));
        assertThat(backwards).hasValue(0);
        assertThat(last).hasValue(image.virtualSize() + TAIL);
    }

    /** A deflate-compressed qcow2 whose clusters do compress (text), so each is inflated on the executor. */
    private Path compressible(long size) throws IOException {
        Path raw = work.resolve("text.raw");
        StringBuilder text = new StringBuilder();
        for (int i = 0; text.length() < 1 << 20; i++) {
            text.append("line ").append(i).append(" of a compressible disk\n");
        }
        byte[] block = Arrays.copyOf(text.toString().getBytes(java.nio.charset.StandardCharsets.US_ASCII), 1 << 20);
        try (FileChannel ch = FileChannel.open(raw, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            for (long at = 0; at < size; at += block.length) {
                ch.write(ByteBuffer.wrap(block), at);
            }
        }
        Path qcow2 = work.resolve("text.qcow2");
        TestImages.run(List.of("qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", "-c", raw.toString(),
                qcow2.toString()));
        return qcow2;
    }

    /** A local volume file of {@code capacity} bytes: sparse, or filled with an earlier tenant's bytes. */
    private Path localVolume(long capacity, boolean earlierTenant) throws IOException {
        Path volume = work.resolve("volume.raw");
        Files.deleteIfExists(volume);
        try (RandomAccessFile f = new RandomAccessFile(volume.toFile(), "rw")) {
            f.setLength(capacity);
            if (earlierTenant) {
                byte[] junk = new byte[1 << 20];
                Arrays.fill(junk, (byte) 0xee);
                for (long at = 0; at < capacity; at += junk.length) {
                    f.write(junk, 0, (int) Math.min(junk.length, capacity - at));
                }
            }
        }
        return volume;
    }

    private static Qcow2Stream.Stats fill(Path image, org.volprov.volume.VolumeWriter w, long capacity, boolean readsAsZero,
            IntSupplier chunks) throws IOException {
        StreamingFill f = new StreamingFill(Files.size(image), ImageFormat.AUTO,
                i -> new StreamingFill.Target(w, capacity, readsAsZero), pool, 2, flushing, d -> { }, Cancellation.none(),
                Qcow2Stream.Limits.defaults());
        feedAll(image, f, chunks);
        return f.stats().orElseThrow();
    }

    /** Feeds the file in chunks whose sizes the random picks, as a download's writes into the cache, then finishes. */
    private static void feedAll(Path image, StreamingFill f, IntSupplier chunks) throws IOException {
        try (f; FileChannel ch = FileChannel.open(image, StandardOpenOption.READ)) {
            ByteBuffer buf = ByteBuffer.allocate(1 << 20);
            for (long at = 0; at < ch.size(); ) {
                buf.clear().limit((int) Math.min(chunks.getAsInt(), ch.size() - at));
                Qcow2Image.readFully(ch, buf, at);
                at += buf.position();
                buf.flip();
                f.feed(buf);
                assertThat(buf.position()).as("feed leaves the buffer for the cache").isZero();
            }
            f.finish(ch);
        }
    }

    /** Chunk sizes from {@link #CHUNKS}, fixed by the name. */
    private static IntSupplier randomChunks(String name) {
        Random r = new Random(name.hashCode());
        return () -> CHUNKS[r.nextInt(CHUNKS.length)];
    }

    /** Chunks of 1 to 13 bytes, fixed by the name. */
    private static IntSupplier tinyChunks(String name) {
        Random r = new Random(name.hashCode());
        return () -> 1 + r.nextInt(13);
    }

    /** Images written by qemu-img convert alone: header, tables, then data in guest order. */
    private static boolean usualLayout(Qcow2Corpus.Image image) {
        return image.name().matches("(v2|v3|deflate|zstd)-.*|extended-l2|refcount-bits-.*|odd-size-compressed|empty-2g");
    }
}
