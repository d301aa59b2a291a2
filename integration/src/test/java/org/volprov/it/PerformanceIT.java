package org.volprov.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.Optional;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.volprov.Job;
import org.volprov.JobState;
import org.volprov.libvirt.testkit.LibvirtTestPool;
import org.volprov.s3.testkit.FaultProxy;
import org.volprov.s3.testkit.S3TestServer;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.s3.S3Configuration;
import software.amazon.awssdk.services.s3.presigner.S3Presigner;

/**
 * Cold (download, verify, convert, write) against cached (convert, write) provisioning of the 1 GiB
 * image, timed in the same run: the cached run must take at most half the cold one.
 *
 * <p>The cold download crosses a link shaped to 1 Gbit/s, a hypervisor's usual uplink: on loopback
 * the "network" outruns this host's disk, and both runs are bound by the same two fsyncs of the
 * image's data, which is not the situation the cache is for. The loopback figure is measured and
 * reported too. The figures go to {@code target/it-results/performance.txt} and stdout; speed
 * targets live in the benchmarks, this test holds the ratio only.
 *
 * <p>The same cold job also crosses a link the kernel shapes to 1 Gbit/s ({@link ShapedLink}: a veth
 * pair into a network namespace, {@code tbf} on both ends), timed against {@code curl} fetching the
 * same object over the same link in the same run: a ratio of times, never an absolute one.
 */
@Tag(Category.PERFORMANCE)
class PerformanceIT {
    @RegisterExtension
    static final LibvirtTestPool POOL = new LibvirtTestPool();
    private static final long LINK_BYTES_PER_SECOND = 125_000_000L;
    /**
     * Generous: a cold job that downloads, then converts and writes, costs the download plus the
     * conversion; the target for a job that does both in one pass is 1.15.
     */
    private static final double SHAPED_COLD_OVER_CURL = 2.5;

    @TempDir
    Path work;

    @Test
    void cachedProvisioning_takesAtMostHalfTheColdOne() throws IOException {
        TestImage image = ImageSet.get(ImageSet.LARGE);
        String uri = Uploads.uri(image);
        long size = image.virtualSize();
        long fileSize = Files.size(image.file());
        Duration cold;
        Duration cached;
        Duration loopback;
        try (FaultProxy link = FaultProxy.start(Services.s3().endpoint());
             Stack stack = Stack.builder(POOL, work.resolve("shaped")).endpoint(link.endpoint()).build()) {
            link.bandwidth(LINK_BYTES_PER_SECOND);
            cold = timed(stack, uri, "perf-cold", image, false);
            cached = timed(stack, uri, "perf-cached", image, true);
        }
        try (Stack stack = Stack.builder(POOL, work.resolve("loopback")).build()) {
            loopback = timed(stack, uri, "perf-loopback", image, false);
        }
        double ratio = seconds(cached) / seconds(cold);
        String report = String.format("""
                performance, %s
                image                   %s: %d MiB virtual, %d MiB qcow2
                cold, 1 Gbit/s link     %6.2f s  (%4.0f MB/s of volume)
                cold, loopback          %6.2f s  (%4.0f MB/s of volume)
                cached                  %6.2f s  (%4.0f MB/s of volume)
                cached / cold           %6.2f    (must be <= 0.50)
                cached / cold loopback  %6.2f    (reported only)
                """, Instant.now(), image.name(), size >> 20, fileSize >> 20,
                seconds(cold), size / 1e6 / seconds(cold),
                seconds(loopback), size / 1e6 / seconds(loopback),
                seconds(cached), size / 1e6 / seconds(cached),
                ratio, seconds(cached) / seconds(loopback));
        System.out.print(report);
        Path results = Files.createDirectories(Path.of("target", "it-results"));
        Files.writeString(results.resolve("performance.txt"), report);
        assertThat(ratio).as("cached / cold provisioning time").isLessThanOrEqualTo(0.5);
    }

    @Test
    void coldOverAKernelShapedLink_takesAtMostTwoAndAHalfTimesCurlsTimeForTheSameObject() throws Exception {
        Optional<String> unavailable = ShapedLink.unavailable();
        assumeTrue(unavailable.isEmpty(), () -> unavailable.get());
        TestImage image = ImageSet.get(ImageSet.LARGE);
        String uri = Uploads.uri(image);
        long fileSize = Files.size(image.file());
        Duration curl;
        Duration cold;
        try (ShapedLink link = ShapedLink.open(Services.s3().endpoint(), "1gbit");
             Stack stack = Stack.builder(POOL, work.resolve("kernel-shaped")).endpoint(link.endpoint()).build()) {
            String url = presignedUrl(link.endpoint(), URI.create(uri));
            curl(url, fileSize); // once untimed: the server reads the object from the page cache in every run
            // curl before and after the job: a host whose load changes during the test moves both alike.
            Duration before = curl(url, fileSize);
            cold = timed(stack, uri, "perf-shaped-cold", image, false);
            curl = before.plus(curl(url, fileSize)).dividedBy(2);
        }
        double ratio = seconds(cold) / seconds(curl);
        String report = String.format("""
                performance over a link shaped by the kernel to 1 Gbit/s (tbf on a veth pair), %s
                image                   %s: %d MiB qcow2, %d MiB virtual
                curl of the image       %6.2f s  (%4.0f MB/s of the file; mean of a run before and one after the job)
                cold provisioning       %6.2f s  (%4.0f MB/s of the file)
                cold / curl             %6.2f    (must be <= %.2f; the issue's target is 1.15)
                """, Instant.now(), image.name(), fileSize >> 20, image.virtualSize() >> 20,
                seconds(curl), fileSize / 1e6 / seconds(curl),
                seconds(cold), fileSize / 1e6 / seconds(cold),
                ratio, SHAPED_COLD_OVER_CURL);
        System.out.print(report);
        Path results = Files.createDirectories(Path.of("target", "it-results"));
        Files.writeString(results.resolve("performance-shaped-link.txt"), report);
        assertThat(ratio).as("cold provisioning time / curl's time, same object, same link")
                .isLessThanOrEqualTo(SHAPED_COLD_OVER_CURL);
    }

    /** A GET URL of {@code s3://bucket/key} at {@code endpoint}, signed with the suite's S3 keys. */
    private static String presignedUrl(URI endpoint, URI object) {
        S3TestServer s3 = Services.s3();
        try (S3Presigner presigner = S3Presigner.builder()
                .endpointOverride(endpoint)
                .region(Region.of(s3.region()))
                .credentialsProvider(StaticCredentialsProvider.create(
                        AwsBasicCredentials.create(s3.accessKey(), s3.secretKey())))
                .serviceConfiguration(S3Configuration.builder().pathStyleAccessEnabled(true).build())
                .build()) {
            return presigner.presignGetObject(r -> r.signatureDuration(Duration.ofHours(1))
                    .getObjectRequest(g -> g.bucket(object.getHost()).key(object.getPath().substring(1))))
                    .url().toString();
        }
    }

    /** {@code curl} of {@code url} into nothing; checks it received {@code bytes} and returns its time. */
    private static Duration curl(String url, long bytes) throws IOException, InterruptedException {
        long t0 = System.nanoTime();
        Process p = new ProcessBuilder("curl", "-sS", "--fail", "-o", "/dev/null", "-w", "%{size_download}", url)
                .redirectError(ProcessBuilder.Redirect.INHERIT).start();
        String got = new String(p.getInputStream().readAllBytes(), StandardCharsets.US_ASCII).strip();
        int status = p.waitFor();
        Duration took = Duration.ofNanos(System.nanoTime() - t0);
        assertThat(status).as("curl's exit status").isZero();
        assertThat(got).as("bytes curl received").isEqualTo(Long.toString(bytes));
        return took;
    }

    /** Provisions {@code image} into a new volume, checks it, and returns the job's running time. */
    private static Duration timed(Stack stack, String uri, String volume, TestImage image, boolean hit) {
        Job job = stack.run(Stack.request(uri, stack.volume(volume), image.virtualSize()));
        assertThat(job.state()).as("%s %s", job.errorCode(), job.errorMessage()).isEqualTo(JobState.COMPLETED);
        assertThat(job.cacheHit()).isEqualTo(hit);
        Volumes.assertHolds(POOL, stack.volume(volume), image);
        return Duration.between(job.startedAt(), job.finishedAt());
    }

    private static double seconds(Duration d) {
        return d.toNanos() / 1e9;
    }
}
