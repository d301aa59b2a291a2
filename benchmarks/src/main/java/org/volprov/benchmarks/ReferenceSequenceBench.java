package org.volprov.benchmarks;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;
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
import org.volprov.source.PublishedChecksum;
import org.volprov.testing.TestImages;
import software.amazon.awssdk.services.s3.S3Client;

/**
 * The reference system's sequence, the bar cold provisioning must beat: one GET of the whole image
 * copied to a file through a 32 MiB buffer, then a separate SHA-256 pass over that file checked
 * against the published {@code .sha256}, then {@code qemu-img convert -O raw} into a new file. It
 * uses the AWS SDK directly, not this library, and reads the same image from the same server as
 * {@link ProvisionBench}. Nothing is fsynced, as in that system: neither the download nor the
 * converted volume ({@code qemu-img convert} writes its target with cache mode {@code unsafe} by
 * default), where the engine fsyncs both the cache entry and the volume.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Fork(1)
@Warmup(iterations = 2, time = 1, timeUnit = TimeUnit.SECONDS)
@Measurement(iterations = 5, time = 1, timeUnit = TimeUnit.SECONDS)
@State(Scope.Benchmark)
public class ReferenceSequenceBench {
    private static final int BUFFER = 32 << 20;

    @Param({"256"})
    public int sizeMiB;

    private Fixture fixture;
    private S3Client s3;
    private String bucket;
    private String key;
    private long virtualSize;
    private Path dir;
    private Path download;
    private Path volume;

    @Setup(Level.Trial)
    public void connect() {
        fixture = Fixture.obtain(sizeMiB);
        s3 = fixture.plainClient();
        bucket = fixture.imageRef().bucket();
        key = fixture.imageRef().key();
        virtualSize = fixture.images().size();
        dir = Fixture.scratch("reference");
        download = dir.resolve("image.qcow2");
        volume = dir.resolve("volume.raw");
    }

    @Setup(Level.Invocation)
    public void removeLast() throws IOException {
        Files.deleteIfExists(download);
        Files.deleteIfExists(volume);
    }

    @Benchmark
    public String downloadHashConvert(Bytes bytes) throws IOException {
        byte[] buf = new byte[BUFFER];
        try (InputStream in = s3.getObject(b -> b.bucket(bucket).key(key));
                OutputStream out = Files.newOutputStream(download)) {
            for (int n; (n = in.read(buf)) > 0; ) {
                out.write(buf, 0, n);
            }
        }
        String published = PublishedChecksum.parse(new String(
                s3.getObjectAsBytes(b -> b.bucket(bucket).key(key + ".sha256")).asByteArray(),
                StandardCharsets.US_ASCII)).orElseThrow();

        MessageDigest md = MemoryImageSource.newDigest();
        try (InputStream in = Files.newInputStream(download)) {
            for (int n; (n = in.read(buf)) > 0; ) {
                md.update(buf, 0, n);
            }
        }
        String actual = HexFormat.of().formatHex(md.digest());
        if (!actual.equals(published)) {
            throw new IllegalStateException("downloaded image hashes to " + actual + ", published " + published);
        }

        TestImages.run(List.of("qemu-img", "convert", "-f", "qcow2", "-O", "raw", download.toString(), volume.toString()));
        bytes.bytes += virtualSize;
        return actual;
    }

    @TearDown(Level.Trial)
    public void remove() {
        s3.close();
        fixture.close();
        Fixture.discard(dir);
    }
}
