package org.volprov.benchmarks;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;
import org.volprov.Cancellation;
import org.volprov.image.ImageConverter;
import org.volprov.image.ImageFormat;
import org.volprov.image.ImageInfo;
import org.volprov.image.Qcow2Converter;
import org.volprov.image.QemuImgConverter;

/**
 * The conversion stage: {@link ImageConverter#convertToRaw} of a cached image onto a fresh sparse
 * volume file, as the engine does for a volume with a local path, by the engine's default
 * {@link Qcow2Converter} ({@code converter=java}, inflating on as many threads as there are cores)
 * or by {@link QemuImgConverter} ({@code converter=qemu-img}). Compare with a plain
 * {@code qemu-img convert -O raw} of the same image in the same run. {@code raw} is a raw image
 * copied by the same converter: the copy without any decoding. Neither side flushes the target
 * ({@code qemu-img convert} writes with cache mode {@code unsafe} by default); the engine fsyncs
 * the volume afterwards, which the volume-write and end-to-end figures include.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Fork(1)
@Warmup(iterations = 2, time = 1, timeUnit = TimeUnit.SECONDS)
@Measurement(iterations = 5, time = 1, timeUnit = TimeUnit.SECONDS)
@State(Scope.Benchmark)
public class ConvertBench {
    @Param({"256"})
    public int sizeMiB;

    @Param({"random", "halfzero", "compressed", "raw"})
    public String image;

    @Param({"java", "qemu-img"})
    public String converter;

    private ImageConverter impl;
    private Path source;
    private ImageInfo info;
    private Path dir;
    private Path target;

    @Setup(Level.Trial)
    public void inspect() {
        impl = switch (converter) {
            case "java" -> new Qcow2Converter();
            case "qemu-img" -> new QemuImgConverter();
            default -> throw new IllegalArgumentException("no converter " + converter + "; use java or qemu-img");
        };
        source = Fixture.images(sizeMiB).byKind(image);
        info = impl.inspect(source, ImageFormat.AUTO);
        dir = Fixture.scratch("convert");
        target = dir.resolve("volume.raw");
    }

    /** A new sparse file each time, like a volume just created: it reads as zeros. */
    @Setup(Level.Invocation)
    public void freshTarget() throws IOException {
        Files.deleteIfExists(target);
        try (RandomAccessFile f = new RandomAccessFile(target.toFile(), "rw")) {
            f.setLength(info.virtualSize());
        }
    }

    @Benchmark
    public long convert(Bytes bytes) {
        impl.convertToRaw(source, info, target, true, done -> { }, Cancellation.none());
        bytes.bytes += info.virtualSize();
        return info.virtualSize();
    }

    @TearDown(Level.Trial)
    public void remove() {
        Fixture.discard(dir);
    }
}
