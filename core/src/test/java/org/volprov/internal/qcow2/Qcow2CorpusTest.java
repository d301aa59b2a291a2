package org.volprov.internal.qcow2;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.volprov.Cancellation;
import org.volprov.image.ImageFormat;
import org.volprov.image.ImageInfo;
import org.volprov.image.Qcow2Converter;
import org.volprov.testing.TestImages;

/**
 * Every corpus image through every way of decoding it gives exactly the bytes of
 * {@code qemu-img convert -O raw}: the converter onto a file, the random-access decoder into a
 * guest-order sink, and the push decoder fed in file order into a positional and a guest-order sink.
 */
class Qcow2CorpusTest {
    private static ExecutorService pool;

    @TempDir
    Path work;

    @BeforeAll
    static void start() {
        pool = Executors.newFixedThreadPool(2);
    }

    @AfterAll
    static void stop() {
        pool.shutdownNow();
    }

    static List<Qcow2Corpus.Image> corpus() {
        return Qcow2Corpus.all();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("corpus")
    void converter_ontoAFile_givesQemuImgBytes(Qcow2Corpus.Image image) throws IOException {
        Qcow2Converter converter = new Qcow2Converter(2);
        ImageInfo info = converter.inspect(image.file(), ImageFormat.AUTO);
        assertThat(info.format()).isEqualTo(ImageFormat.QCOW2);
        assertThat(info.virtualSize()).isEqualTo(image.virtualSize());
        Path target = work.resolve("volume.raw");
        try (RandomAccessFile f = new RandomAccessFile(target.toFile(), "rw")) {
            f.setLength(info.virtualSize());
        }
        converter.convertToRaw(image.file(), info, target, true, done -> { }, Cancellation.none());
        assertThat(TestImages.sha256(target)).isEqualTo(image.rawSha256());
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("corpus")
    void randomAccess_intoAGuestOrderSink_givesQemuImgBytes(Qcow2Corpus.Image image) throws IOException {
        PagedSink sink = new PagedSink(GuestSink.Order.GUEST, image.virtualSize());
        try (FileChannel ch = FileChannel.open(image.file(), StandardOpenOption.READ)) {
            Qcow2Image.open(ch).decode(sink, pool, 2, done -> { }, Cancellation.none());
        }
        assertThat(sink.next()).isEqualTo(image.virtualSize());
        assertThat(sink.sha256(image.virtualSize())).isEqualTo(image.rawSha256());
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("corpus")
    void push_intoAPositionalSink_givesQemuImgBytes(Qcow2Corpus.Image image) throws IOException {
        PagedSink sink = new PagedSink(GuestSink.Order.ANY, image.virtualSize());
        Qcow2Stream.Stats stats = push(image, sink);
        assertThat(sink.sha256(image.virtualSize())).isEqualTo(image.rawSha256());
        if (usualLayout(image)) {
            assertThat(stats.finishBytes()).as("bytes decoded after the download, %s", stats).isZero();
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("corpus")
    void push_intoAGuestOrderSink_givesQemuImgBytes(Qcow2Corpus.Image image) throws IOException {
        PagedSink sink = new PagedSink(GuestSink.Order.GUEST, image.virtualSize());
        Qcow2Stream.Stats stats = push(image, sink);
        assertThat(sink.next()).isEqualTo(image.virtualSize());
        assertThat(sink.sha256(image.virtualSize())).isEqualTo(image.rawSha256());
        if (usualLayout(image)) {
            assertThat(stats.finishBytes()).as("bytes decoded after the download, %s", stats).isZero();
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("corpus")
    void push_withLimitsTooSmallForTheImage_stillGivesQemuImgBytes(Qcow2Corpus.Image image) throws IOException {
        Qcow2Stream.Limits tiny = new Qcow2Stream.Limits(64 << 10, 3, 2, 96 << 10);
        for (GuestSink.Order order : GuestSink.Order.values()) {
            PagedSink sink = new PagedSink(order, image.virtualSize());
            push(image, sink, tiny);
            assertThat(sink.sha256(image.virtualSize())).as(order.name()).isEqualTo(image.rawSha256());
        }
    }

    private static Qcow2Stream.Stats push(Qcow2Corpus.Image image, GuestSink sink) throws IOException {
        return push(image, sink, Qcow2Stream.Limits.defaults());
    }

    /** Feeds the image in chunks of varying sizes (fixed by its name), as a download would. */
    private static Qcow2Stream.Stats push(Qcow2Corpus.Image image, GuestSink sink, Qcow2Stream.Limits limits)
            throws IOException {
        Random random = new Random(image.name().hashCode());
        try (FileChannel ch = FileChannel.open(image.file(), StandardOpenOption.READ);
             Qcow2Stream stream = new Qcow2Stream(ch.size(), sink, pool, 2, done -> { }, Cancellation.none(),
                     limits)) {
            ByteBuffer buf = ByteBuffer.allocate(1 << 20);
            for (long at = 0; at < ch.size(); ) {
                int[] sizes = {1, 7, 512, 4096, 65536, 200_000, 1 << 20};
                buf.clear().limit((int) Math.min(sizes[random.nextInt(sizes.length)], ch.size() - at));
                Qcow2Image.readFully(ch, buf, at);
                at += buf.position();
                stream.feed(buf.flip());
            }
            stream.finish(ch);
            return stream.stats();
        }
    }

    /** Images written by qemu-img convert alone: header, tables, then data in guest order. */
    private static boolean usualLayout(Qcow2Corpus.Image image) {
        return image.name().matches("(v2|v3|deflate|zstd)-.*|extended-l2|refcount-bits-.*|odd-size-compressed|empty-2g");
    }
}
