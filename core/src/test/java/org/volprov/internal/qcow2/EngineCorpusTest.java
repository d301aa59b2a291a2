package org.volprov.internal.qcow2;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.volprov.Job;
import org.volprov.JobState;
import org.volprov.ProvisionRequest;
import org.volprov.Provisioner;
import org.volprov.cache.DiskImageCache;
import org.volprov.job.InMemoryJobStore;
import org.volprov.source.LocalDirectoryImageSource;
import org.volprov.testing.ForwardingVolumeBackend;
import org.volprov.testing.TestImages;
import org.volprov.volume.FileVolumeBackend;

/**
 * The differential corpus through the engine: every image provisioned cold (decoded while it
 * downloads) and then warm (decoded from the cache file), with {@code LOCAL} writes (the file
 * backend's path, written in place) and {@code STREAM} writes (the same backend behind writers
 * without a local path: guest order, as into an upload stream). Each volume holds exactly what
 * {@code qemu-img convert -O raw} makes of the image, and reads as zero past it.
 */
class EngineCorpusTest {
    /** Room past the virtual size, not a multiple of any cluster size: the tail the job must zero. */
    private static final long TAIL = 64 * 1024 + 512;
    private static final Duration WAIT = Duration.ofSeconds(120);

    @TempDir
    static Path work;
    private static FileVolumeBackend files;
    private static Provisioner local;
    private static Provisioner stream;
    private static DiskImageCache localCache;
    private static DiskImageCache streamCache;

    static List<Qcow2Corpus.Image> corpus() {
        return Qcow2Corpus.all();
    }

    @BeforeAll
    static void start() throws IOException {
        Path bucket = Files.createDirectories(work.resolve("source/images"));
        for (Qcow2Corpus.Image image : corpus()) {
            Files.copy(image.file(), bucket.resolve(image.name() + ".qcow2"));
        }
        files = FileVolumeBackend.open(work.resolve("volumes"));
        localCache = DiskImageCache.builder().directory(work.resolve("cache-local")).maxBytes(1L << 30).build();
        streamCache = DiskImageCache.builder().directory(work.resolve("cache-stream")).maxBytes(1L << 30).build();
        local = engine(localCache, files);
        stream = engine(streamCache, ForwardingVolumeBackend.withoutLocalPaths(files));
    }

    private static Provisioner engine(DiskImageCache cache, org.volprov.volume.VolumeBackend backend) {
        return Provisioner.builder().source(new LocalDirectoryImageSource(work.resolve("source"))).cache(cache)
                .backend(backend).jobStore(InMemoryJobStore.builder().build()).workDirectory(work).build();
    }

    @AfterAll
    static void stop() {
        local.close();
        stream.close();
        localCache.close();
        streamCache.close();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("corpus")
    void corpusImage_coldThenWarm_localWrites_giveQemuImgBytesAndAZeroTail(Qcow2Corpus.Image image) throws IOException {
        coldThenWarm(local, image, "local");
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("corpus")
    void corpusImage_coldThenWarm_streamWrites_giveQemuImgBytesAndAZeroTail(Qcow2Corpus.Image image)
            throws IOException {
        coldThenWarm(stream, image, "stream");
    }

    private static void coldThenWarm(Provisioner engine, Qcow2Corpus.Image image, String mode) throws IOException {
        String cold = "vm-" + image.name() + "-" + mode + "-cold";
        assertThat(provision(engine, image, cold).cacheHit()).as("cold").isFalse();
        assertHoldsImage(cold, image);
        String warm = "vm-" + image.name() + "-" + mode + "-warm";
        assertThat(provision(engine, image, warm).cacheHit()).as("warm").isTrue();
        assertHoldsImage(warm, image);
        files.delete(cold);
        files.delete(warm);
    }

    private static Job provision(Provisioner engine, Qcow2Corpus.Image image, String volume) {
        ProvisionRequest r = ProvisionRequest.builder().imageUri("s3://images/" + image.name() + ".qcow2")
                .volumeName(volume).volumeSizeBytes(image.virtualSize() + TAIL).build();
        Job job = engine.await(engine.submit(r), WAIT);
        assertThat(job.state()).as("%s: %s %s", volume, job.errorCode(), job.errorMessage())
                .isEqualTo(JobState.COMPLETED);
        return job;
    }

    private static void assertHoldsImage(String volume, Qcow2Corpus.Image image) throws IOException {
        Path file = work.resolve("volumes").resolve(volume);
        long size = Files.size(file);
        assertThat(size).isGreaterThanOrEqualTo(image.virtualSize() + TAIL);
        assertThat(TestImages.sha256(file, image.virtualSize())).as("%s against qemu-img convert", volume)
                .isEqualTo(image.rawSha256());
        assertThat(TestImages.zerosBetween(file, image.virtualSize(), size)).as("%s tail", volume).isTrue();
    }
}
