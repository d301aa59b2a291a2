package org.volprov.micrometer;

import static org.assertj.core.api.Assertions.assertThat;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.volprov.Job;
import org.volprov.JobEvent;
import org.volprov.JobState;
import org.volprov.ProvisionRequest;
import org.volprov.Provisioner;
import org.volprov.Stage;
import org.volprov.cache.DiskImageCache;
import org.volprov.source.LocalDirectoryImageSource;
import org.volprov.testing.SettableTicker;
import org.volprov.testing.TestImages;
import org.volprov.volume.FileVolumeBackend;

class ProvisionerMetricsTest {
    @TempDir
    Path dir;

    @Test
    void jobsStagesBytesAndCache_arePublished() throws Exception {
        Path bucket = Files.createDirectories(dir.resolve("src/images"));
        Path raw = TestImages.raw(dir.resolve("d.raw"), 6L << 20, 3);
        Path qcow2 = TestImages.qcow2(raw, bucket.resolve("d.qcow2"), false);
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        try (DiskImageCache cache = DiskImageCache.builder().directory(dir.resolve("cache")).maxBytes(1L << 30).build();
                Provisioner p = Provisioner.builder().source(new LocalDirectoryImageSource(dir.resolve("src")))
                        .cache(cache).backend(FileVolumeBackend.open(dir.resolve("vol"))).build();
                ProvisionerMetrics metrics = ProvisionerMetrics.bind(p, registry)) {
            for (String v : new String[] {"m-1", "m-2"}) {
                Job job = p.await(p.submit(ProvisionRequest.builder().imageUri("s3://images/d.qcow2").volumeName(v)
                        .volumeSizeBytes(8L << 20).build()), Duration.ofSeconds(60));
                assertThat(job.state()).isEqualTo(JobState.COMPLETED);
            }
            Job failed = p.await(p.submit(ProvisionRequest.builder().imageUri("s3://images/missing").volumeName("m-3")
                    .volumeSizeBytes(8L << 20).build()), Duration.ofSeconds(60));
            assertThat(failed.state()).isEqualTo(JobState.FAILED);

            assertThat(registry.get("volprov.jobs").tags("outcome", "COMPLETED", "error", "none").counter().count())
                    .isEqualTo(2);
            assertThat(registry.get("volprov.jobs").tags("outcome", "FAILED", "error", "IMAGE_NOT_FOUND").counter()
                    .count()).isEqualTo(1);
            assertThat(registry.get("volprov.stage.duration").tag("stage", "WRITING").timer().count()).isEqualTo(2);
            assertThat(registry.get("volprov.stage.duration").tag("stage", "DOWNLOADING").timer().count()).isEqualTo(1);
            assertThat(registry.get("volprov.bytes").tag("direction", "downloaded").counter().count())
                    .isEqualTo(Files.size(qcow2));
            assertThat(registry.get("volprov.bytes").tag("direction", "written").counter().count())
                    .isEqualTo(2.0 * (8L << 20));
            assertThat(registry.get("volprov.cache.requests").tag("result", "hit").functionCounter().count()).isEqualTo(1);
            assertThat(registry.get("volprov.cache.requests").tag("result", "miss").functionCounter().count()).isEqualTo(1);
            assertThat(registry.get("volprov.queue.depth").gauge().value()).isZero();
            metrics.close();
            assertThat(registry.find("volprov.queue.depth").gauge()).isNull();
        }
    }

    @Test
    void prefetchJobs_areCountedLikeAnyJob_withTheirDownload_andNothingWritten() throws Exception {
        Path bucket = Files.createDirectories(dir.resolve("src/images"));
        Path qcow2 = TestImages.qcow2(TestImages.raw(dir.resolve("d.raw"), 6L << 20, 3), bucket.resolve("d.qcow2"), false);
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        try (DiskImageCache cache = DiskImageCache.builder().directory(dir.resolve("cache")).maxBytes(1L << 30).build();
                Provisioner p = Provisioner.builder().source(new LocalDirectoryImageSource(dir.resolve("src")))
                        .cache(cache).backend(FileVolumeBackend.open(dir.resolve("vol"))).build();
                ProvisionerMetrics metrics = ProvisionerMetrics.bind(p, registry)) {
            assertThat(p.await(p.prefetch("s3://images/d.qcow2"), Duration.ofSeconds(60)).state())
                    .isEqualTo(JobState.COMPLETED);
            assertThat(p.await(p.prefetch("s3://images/missing"), Duration.ofSeconds(60)).state())
                    .isEqualTo(JobState.FAILED);

            assertThat(registry.get("volprov.jobs").tags("outcome", "COMPLETED", "error", "none").counter().count())
                    .isEqualTo(1);
            assertThat(registry.get("volprov.jobs").tags("outcome", "FAILED", "error", "IMAGE_NOT_FOUND").counter()
                    .count()).isEqualTo(1);
            assertThat(registry.get("volprov.stage.duration").tag("stage", "DOWNLOADING").timer().count()).isEqualTo(1);
            assertThat(registry.get("volprov.bytes").tag("direction", "downloaded").counter().count())
                    .isEqualTo(Files.size(qcow2));
            assertThat(registry.find("volprov.bytes").tag("direction", "written").counter())
                    .satisfiesAnyOf(c -> assertThat(c).isNull(), c -> assertThat(c.count()).isZero());
        }
    }

    @Test
    void stageDurations_areTimedOnTheGivenTicker() throws Exception {
        Path bucket = Files.createDirectories(dir.resolve("src/images"));
        TestImages.raw(bucket.resolve("d.raw"), 1L << 20, 4);
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        SettableTicker ticker = new SettableTicker();
        try (DiskImageCache cache = DiskImageCache.builder().directory(dir.resolve("cache")).maxBytes(1L << 30).build();
                Provisioner p = Provisioner.builder().source(new LocalDirectoryImageSource(dir.resolve("src")))
                        .cache(cache).backend(FileVolumeBackend.open(dir.resolve("vol"))).ticker(ticker)
                        .listener(e -> {
                            // Runs before the metrics hear of the stage: WRITING lasted exactly these 7 s.
                            if (e.kind() == JobEvent.Kind.STAGE && e.job().stage() == Stage.FINALIZING) {
                                ticker.advance(Duration.ofSeconds(7));
                            }
                        }).build();
                ProvisionerMetrics metrics = ProvisionerMetrics.bind(p, registry, ticker)) {
            Job job = p.await(p.submit(ProvisionRequest.builder().imageUri("s3://images/d.raw").volumeName("t-1")
                    .volumeSizeBytes(1L << 20).build()), Duration.ofSeconds(60));
            assertThat(job.state()).isEqualTo(JobState.COMPLETED);
            assertThat(registry.get("volprov.stage.duration").tag("stage", "WRITING").timer().totalTime(TimeUnit.SECONDS))
                    .isEqualTo(7.0);
        }
    }
}
