package org.volprov.redis;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.volprov.ErrorCode;
import org.volprov.Job;
import org.volprov.JobState;
import org.volprov.ProvisionRequest;
import org.volprov.Provisioner;
import org.volprov.ProvisioningException;
import org.volprov.job.InMemoryJobStore;
import org.volprov.redis.testkit.RedisTestServer;
import org.volprov.source.LocalDirectoryImageSource;
import org.volprov.testing.TestImages;
import org.volprov.volume.FileVolumeBackend;
import org.volprov.volume.VolumeGuard;

/**
 * Two provisioner engines of one host, each with its own Redis coordination (as two processes
 * would have), one cache directory and one volume directory: a real qcow2 image goes through the
 * whole job in both.
 */
class TwoEnginesIT {
    private static final long VOLUME_SIZE = 8L << 20;
    private static final Duration WAIT = Duration.ofSeconds(120);
    private static RedisTestServer server;

    @TempDir
    static Path images;

    @TempDir
    Path work;

    private final String prefix = RedisTestServer.uniquePrefix("engines");
    private final List<AutoCloseable> opened = new ArrayList<>();

    @BeforeAll
    static void makeImage() throws Exception {
        server = RedisTestServer.shared();
        Path bucket = Files.createDirectories(images.resolve("images"));
        Path raw = TestImages.raw(images.resolve("disk.raw"), 6L << 20, 5);
        Path qcow2 = TestImages.qcow2(raw, bucket.resolve("disk.qcow2"), false);
        Files.writeString(bucket.resolve("disk.qcow2.sha256"), TestImages.sha256(qcow2) + "  disk.qcow2\n",
                StandardCharsets.US_ASCII);
    }

    @AfterEach
    void cleanUp() throws Exception {
        for (int i = opened.size() - 1; i >= 0; i--) {
            opened.get(i).close();
        }
        server.deleteKeys(prefix);
    }

    private record Engine(RedisCoordination redis, Provisioner provisioner) {
    }

    private Engine engine(String name) {
        RedisCoordination redis = RedisCoordination.create(server.config(prefix).hostId("host-1").build());
        opened.add(redis);
        var cache = redis.cache().directory(work.resolve("cache")).maxBytes(1L << 30).build();
        opened.add(cache);
        Provisioner p = Provisioner.builder()
                .source(new LocalDirectoryImageSource(images))
                .cache(cache)
                .volumeGuard(redis.volumeGuard())
                .backend(FileVolumeBackend.open(work.resolve("volumes")))
                .jobStore(new InMemoryJobStore())
                .workDirectory(work.resolve("work-" + name))
                .build();
        opened.add(p);
        return new Engine(redis, p);
    }

    private static ProvisionRequest request(String volume) {
        return ProvisionRequest.builder().imageUri("s3://images/disk.qcow2").volumeName(volume)
                .volumeSizeBytes(VOLUME_SIZE).build();
    }

    @Test
    void submit_whenTheOtherProcessHoldsTheVolume_failsWithVolumeBusyUntilItLetsGo() {
        Engine a = engine("a");
        Engine b = engine("b");
        VolumeGuard.Lock bsJob = b.redis().volumeGuard().tryLock("vm-1-root").orElseThrow();

        assertThatThrownBy(() -> a.provisioner().submit(request("vm-1-root")))
                .isInstanceOfSatisfying(ProvisioningException.class,
                        e -> assertThat(e.code()).isEqualTo(ErrorCode.VOLUME_BUSY));

        bsJob.close();
        Job job = a.provisioner().await(a.provisioner().submit(request("vm-1-root")), WAIT);
        assertThat(job.state()).isEqualTo(JobState.COMPLETED);
    }

    @Test
    void jobsForOneImageInTwoProcesses_downloadItOnce() {
        Engine a = engine("a");
        Engine b = engine("b");
        String ja = a.provisioner().submit(request("vm-a-root"));
        String jb = b.provisioner().submit(request("vm-b-root"));

        assertThat(a.provisioner().await(ja, WAIT).state()).isEqualTo(JobState.COMPLETED);
        assertThat(b.provisioner().await(jb, WAIT).state()).isEqualTo(JobState.COMPLETED);
        SharedCacheStats host = a.redis().fleet().stats("host-1");
        assertThat(host.misses()).isEqualTo(1);
        assertThat(host.admissions()).isEqualTo(1);
        assertThat(host.entries()).isEqualTo(1);
        assertThat(host.hits()).isGreaterThanOrEqualTo(1);
    }
}
