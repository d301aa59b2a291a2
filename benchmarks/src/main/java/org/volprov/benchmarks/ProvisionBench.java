package org.volprov.benchmarks;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
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
import org.volprov.Job;
import org.volprov.JobState;
import org.volprov.ProvisionRequest;
import org.volprov.Provisioner;
import org.volprov.cache.DiskImageCache;
import org.volprov.image.ImageFormat;
import org.volprov.source.ImageSource;

/**
 * The whole job through the engine: the qcow2 image (random content, every cluster allocated) from
 * the S3 server into a new volume. {@code cold} starts with an empty cache (download, SHA-256 check,
 * fsync, inspection, conversion onto the volume, fsync) and runs on a file-backed volume and on a
 * libvirt {@code dir} pool in LOCAL and in STREAM mode; {@code coldShaped} is the cold job on a
 * file-backed volume with the object read across a link shaped to 1 Gbit/s (the one
 * {@code scripts/bench.sh} makes, named in {@value Fixture#SHAPED_ENV}); {@code warm} finds the
 * image in the cache. Compare cold with the reference sequence and with the slowest single stage,
 * STREAM with LOCAL, and the shaped cold job with {@code curl} of the same image over the same link.
 * {@code coldReadBack} and {@code warmReadBack} are the file-backed cold and warm jobs with
 * {@code verifyWrittenVolume}, which reads the volume back and hashes it against the image decoded
 * once more: compare each with the same job without it.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Fork(1)
@Warmup(iterations = 2, time = 1, timeUnit = TimeUnit.SECONDS)
@Measurement(iterations = 5, time = 1, timeUnit = TimeUnit.SECONDS)
public class ProvisionBench {
    private static final String VOLUME = "bench-e2e";

    @Benchmark
    public Job cold(Cold s, Bytes bytes) {
        return coldJob(s, bytes);
    }

    @Benchmark
    public Job coldShaped(ShapedCold s, Bytes bytes) {
        return coldJob(s, bytes);
    }

    @Benchmark
    public Job coldReadBack(ColdReadBack s, Bytes bytes) {
        return coldJob(s, bytes);
    }

    private static Job coldJob(Engine s, Bytes bytes) {
        Job job = s.provision();
        if (job.cacheHit()) {
            throw new IllegalStateException("a cold run found the image cached");
        }
        bytes.bytes += s.size;
        return job;
    }

    @Benchmark
    public Job warm(Warm s, Bytes bytes) {
        return warmJob(s, bytes);
    }

    @Benchmark
    public Job warmReadBack(WarmReadBack s, Bytes bytes) {
        return warmJob(s, bytes);
    }

    private static Job warmJob(Engine s, Bytes bytes) {
        Job job = s.provision();
        if (!job.cacheHit()) {
            throw new IllegalStateException("a warm run downloaded the image");
        }
        bytes.bytes += s.size;
        return job;
    }

    /**
     * The engine and what it is wired to; subclasses decide when the cache is emptied, the volume
     * backend (each its own {@code backend} parameter, so that only the cold job runs on every one)
     * and the link.
     */
    @State(Scope.Benchmark)
    public abstract static class Engine {
        @Param({"256"})
        public int sizeMiB;

        @Param({"s3"})
        public String adapter;

        /** Ranged parts in flight; 1 is the engine's default, a single stream. */
        @Param({"1"})
        public int parts;

        long size;
        private Fixture fixture;
        private String sha256;
        private ImageSource source;
        private String imageUri;
        private Path dir;
        private Path cacheDir;
        private BenchBackend volumes;
        private DiskImageCache cache;
        private Provisioner engine;

        @Setup(Level.Trial)
        public void wire() throws IOException {
            fixture = Fixture.obtain(sizeMiB);
            size = fixture.images().size();
            sha256 = fixture.images().imageSha256();
            source = shaped() ? fixture.shapedSource(adapter) : fixture.source(adapter);
            imageUri = fixture.imageRef().toString();
            dir = Fixture.scratch("provision");
            cacheDir = dir.resolve("cache");
            volumes = BenchBackend.open(backendKind(), dir.resolve("volumes"), (long) sizeMiB << 20);
            prepare();
        }

        /** A {@link BenchBackend} kind. */
        abstract String backendKind();

        /** Whether the object is read across the shaped link rather than loopback. */
        boolean shaped() {
            return false;
        }

        /** Whether the engine reads each written volume back ({@code verifyWrittenVolume}). */
        boolean readBack() {
            return false;
        }

        /** Called once the engine's parts exist. */
        void prepare() throws IOException {
        }

        /** Before each cold job: no volume, a new engine on an empty cache. */
        void emptyCacheAndVolume() throws IOException {
            deleteVolume();
            startEmpty();
        }

        /** A new engine on a new, empty cache. */
        void startEmpty() throws IOException {
            stop();
            Images.deleteTree(cacheDir);
            cache = DiskImageCache.builder().directory(cacheDir).maxBytes(2 * size + (64L << 20)).build();
            engine = Provisioner.builder()
                    .source(source)
                    .cache(cache)
                    .backend(volumes.backend())
                    .workDirectory(dir)
                    .parallelDownload(parts, 32L << 20)
                    .verifyWrittenVolume(readBack())
                    .build();
        }

        void deleteVolume() {
            volumes.backend().delete(VOLUME);
        }

        Job provision() {
            String id = engine.submit(ProvisionRequest.builder()
                    .imageUri(imageUri)
                    .volumeName(VOLUME)
                    .volumeSizeBytes(size)
                    .format(ImageFormat.QCOW2)
                    .build());
            Job job = engine.await(id, Duration.ofHours(1));
            if (job.state() != JobState.COMPLETED) {
                throw new IllegalStateException("job ended " + job.state() + " " + job.errorCode() + ": " + job.errorMessage());
            }
            if (!sha256.equals(job.imageDigest())) {
                throw new IllegalStateException("the job provisioned image " + job.imageDigest() + ", not " + sha256);
            }
            return job;
        }

        private void stop() {
            if (engine != null) {
                engine.close();
                engine = null;
            }
            if (cache != null) {
                cache.close();
                cache = null;
            }
        }

        @TearDown(Level.Trial)
        public void remove() {
            try {
                stop();
                if (volumes != null) {
                    deleteVolume();
                    volumes.close();
                }
            } finally {
                if (source != null) {
                    source.close();
                }
                if (fixture != null) {
                    fixture.close();
                }
                Fixture.discard(dir);
            }
        }
    }

    @State(Scope.Benchmark)
    public static class Cold extends Engine {
        /** LOCAL mode on a file and on a dir pool's volume, and STREAM mode (libvirt's upload) on the same pool. */
        @Param({"file", "libvirt-local", "libvirt-stream"})
        public String backend;

        @Override
        String backendKind() {
            return backend;
        }

        @Setup(Level.Invocation)
        public void beforeJob() throws IOException {
            emptyCacheAndVolume();
        }
    }

    @State(Scope.Benchmark)
    public static class ShapedCold extends Engine {
        @Override
        String backendKind() {
            return "file";
        }

        @Override
        boolean shaped() {
            return true;
        }

        @Setup(Level.Invocation)
        public void beforeJob() throws IOException {
            emptyCacheAndVolume();
        }
    }

    @State(Scope.Benchmark)
    public static class Warm extends Engine {
        @Param({"file"})
        public String backend;

        @Override
        String backendKind() {
            return backend;
        }

        /** One job fills the cache; every measured one finds the image there. */
        @Override
        void prepare() throws IOException {
            startEmpty();
            provision();
        }

        @Setup(Level.Invocation)
        public void deleteLastVolume() {
            deleteVolume();
        }
    }

    @State(Scope.Benchmark)
    public static class ColdReadBack extends Engine {
        @Override
        String backendKind() {
            return "file";
        }

        @Override
        boolean readBack() {
            return true;
        }

        @Setup(Level.Invocation)
        public void beforeJob() throws IOException {
            emptyCacheAndVolume();
        }
    }

    @State(Scope.Benchmark)
    public static class WarmReadBack extends Warm {
        @Override
        boolean readBack() {
            return true;
        }
    }
}
