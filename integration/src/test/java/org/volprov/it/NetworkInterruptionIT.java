package org.volprov.it;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.volprov.ErrorCode;
import org.volprov.Job;
import org.volprov.JobEvent;
import org.volprov.JobState;
import org.volprov.RetryPolicy;
import org.volprov.Stage;
import org.volprov.libvirt.testkit.LibvirtTestPool;
import org.volprov.s3.testkit.FaultProxy;

/**
 * A TCP proxy between the adapter and the S3 server breaks the download: a dropped connection is
 * resumed where it broke, not fetched again from zero; an outage longer than the retry budget fails
 * the job with SOURCE_UNAVAILABLE and leaves nothing behind.
 */
@Tag(Category.NETWORK_INTERRUPTION)
class NetworkInterruptionIT {
    @RegisterExtension
    static final LibvirtTestPool POOL = new LibvirtTestPool();
    /** Headers, the HEAD, the checksum sibling and the resumed request's headers: far below 1 MiB. */
    private static final long OVERHEAD = 1L << 20;
    /** Three attempts in all: a budget a test can outlast. */
    private static final RetryPolicy SHORT_BUDGET = new RetryPolicy(3, Duration.ofMillis(100), Duration.ofMillis(400),
            Duration.ofSeconds(20), 0.5);

    @TempDir
    Path work;

    @ParameterizedTest(name = "{0}")
    @EnumSource(Stack.Adapter.class)
    void connectionDroppedMidDownload_resumesFromTheLastByte_andCompletes(Stack.Adapter adapter) throws Exception {
        TestImage image = ImageSet.get(ImageSet.MEDIUM);
        long fileSize = Files.size(image.file());
        String uri = Uploads.uri(image);
        try (FaultProxy proxy = FaultProxy.start(Services.s3().endpoint());
             Stack stack = Stack.builder(POOL, work).adapter(adapter).endpoint(proxy.endpoint()).build()) {
            proxy.cutOnceAfter(fileSize / 3);
            Job job = stack.run(Stack.request(uri, stack.volume("resume-" + adapter), image.virtualSize()));

            assertThat(job.state()).as("%s %s", job.errorCode(), job.errorMessage()).isEqualTo(JobState.COMPLETED);
            assertThat(proxy.cuts()).isEqualTo(1);
            assertThat(proxy.connections()).as("a new connection after the cut").isGreaterThanOrEqualTo(2);
            assertThat(proxy.bytesToClient()).as("bytes fetched in all, for a %d-byte image cut at a third", fileSize)
                    .isBetween(fileSize, fileSize + OVERHEAD);
            assertThat(job.imageDigest()).isEqualTo(image.fileSha256());
            Volumes.assertHolds(POOL, stack.volume("resume-" + adapter), image);
        }
    }

    @Test
    void connectionResetThreeTimes_stillCompletes_withoutRefetching() throws Exception {
        TestImage image = ImageSet.get(ImageSet.SMALL);
        long fileSize = Files.size(image.file());
        try (FaultProxy proxy = FaultProxy.start(Services.s3().endpoint());
             Stack stack = Stack.builder(POOL, work).endpoint(proxy.endpoint()).build()) {
            String uri = Uploads.uri(image);
            proxy.resetAfter(fileSize / 5, 3);
            Job job = stack.run(Stack.request(uri, stack.volume("resets"), image.virtualSize()));
            assertThat(job.state()).as("%s %s", job.errorCode(), job.errorMessage()).isEqualTo(JobState.COMPLETED);
            assertThat(proxy.cuts()).isEqualTo(3);
            // A reset may discard bytes the client had not read yet; those are fetched again, nothing more.
            assertThat(proxy.bytesToClient()).isBetween(fileSize, fileSize + 3 * (4L << 20) + OVERHEAD);
            Volumes.assertHolds(POOL, stack.volume("resets"), image);
        }
    }

    @Test
    void outageLongerThanTheRetryBudget_failsWithSourceUnavailable_andLeavesNothing() throws Exception {
        TestImage image = ImageSet.get(ImageSet.SMALL);
        String uri = Uploads.uri(image);
        try (FaultProxy proxy = FaultProxy.start(Services.s3().endpoint());
             Stack stack = Stack.builder(POOL, work).endpoint(proxy.endpoint()).readTimeout(Duration.ofSeconds(2))
                     .engine(b -> b.retryPolicy(SHORT_BUDGET)).build()) {
            List<String> entriesBefore = Leftovers.cacheEntries(stack.cache.directory());
            AtomicBoolean down = new AtomicBoolean();
            // The network goes silent once the download is under way, and stays so.
            stack.engine.addListener(e -> {
                if (e.kind() == JobEvent.Kind.PROGRESS && e.job().stage() == Stage.DOWNLOADING
                        && down.compareAndSet(false, true)) {
                    proxy.outage(FaultProxy.Mode.BLACK_HOLE);
                }
            });
            Job job = stack.run(Stack.request(uri, stack.volume("outage"), image.virtualSize()));

            assertThat(down).isTrue();
            assertThat(job.state()).isEqualTo(JobState.FAILED);
            assertThat(job.errorCode()).as(job.errorMessage()).isEqualTo(ErrorCode.SOURCE_UNAVAILABLE);
            Leftovers.assertNothingLeft(stack, POOL, job, entriesBefore);
            assertThat(stack.cache.stats().entries()).isEqualTo(entriesBefore.size());

            // The same request succeeds once the network is back.
            proxy.endOutage();
            Job again = stack.run(Stack.request(uri, stack.volume("outage"), image.virtualSize()));
            assertThat(again.state()).as("%s %s", again.errorCode(), again.errorMessage()).isEqualTo(JobState.COMPLETED);
            Volumes.assertHolds(POOL, stack.volume("outage"), image);
        }
    }

    @Test
    void serverRefusingConnections_failsWithSourceUnavailable_afterRetrying() throws Exception {
        TestImage image = ImageSet.get(ImageSet.SMALL);
        String uri = Uploads.uri(image);
        try (FaultProxy proxy = FaultProxy.start(Services.s3().endpoint());
             Stack stack = Stack.builder(POOL, work).endpoint(proxy.endpoint())
                     .engine(b -> b.retryPolicy(SHORT_BUDGET)).build()) {
            proxy.outage(FaultProxy.Mode.REFUSE);
            Job job = stack.run(Stack.request(uri, stack.volume("refused"), image.virtualSize()));
            assertThat(job.state()).isEqualTo(JobState.FAILED);
            assertThat(job.errorCode()).as(job.errorMessage()).isEqualTo(ErrorCode.SOURCE_UNAVAILABLE);
            assertThat(proxy.connections()).as("connections tried").isGreaterThanOrEqualTo(3);
            Leftovers.assertNoVolume(POOL, stack.volume("refused"));
        }
    }
}
