package org.volprov.internal.qcow2;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.volprov.Cancellation;
import org.volprov.ImageFormat;
import org.volprov.ImageInfo;
import org.volprov.embedded.Qcow2Converter;
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
}
