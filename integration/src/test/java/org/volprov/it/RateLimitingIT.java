package org.volprov.it;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.volprov.ErrorCode;
import org.volprov.Job;
import org.volprov.JobFilter;
import org.volprov.JobState;
import org.volprov.ProvisioningException;
import org.volprov.RetryPolicy;
import org.volprov.libvirt.testkit.LibvirtTestPool;
import org.volprov.s3.testkit.FaultProxy;

/**
 * A burst beyond the queue is refused at once with QUEUE_FULL; the accepted jobs all complete. The
 * burst is submitted while every accepted job is stuck on a silent network, so a submit that waited
 * for room would never return: that it returns proves it does not block.
 */
@Tag(Category.RATE_LIMITING)
class RateLimitingIT {
    @RegisterExtension
    static final LibvirtTestPool POOL = new LibvirtTestPool();

    @TempDir
    Path work;

    @Test
    void burstOfTwenty_withRoomForFive_refusesFifteenAtOnce_andCompletesTheRest() throws Exception {
        TestImage image = ImageSet.get(ImageSet.RAW);
        String uri = Uploads.uri(image);
        int slots = 2;
        int queue = 3;
        try (FaultProxy proxy = FaultProxy.start(Services.s3().endpoint());
             Stack stack = Stack.builder(POOL, work).endpoint(proxy.endpoint()).readTimeout(Duration.ofSeconds(2))
                     .engine(b -> b.maxConcurrentJobs(slots).queueCapacity(queue)
                             .retryPolicy(new RetryPolicy(20, Duration.ofMillis(200), Duration.ofSeconds(1),
                                     Duration.ofMinutes(2), 0.5)))
                     .build()) {
            proxy.outage(FaultProxy.Mode.BLACK_HOLE);
            List<String> accepted = new ArrayList<>();
            List<ProvisioningException> refused = new ArrayList<>();
            CompletableFuture<Void> burst = CompletableFuture.runAsync(() -> {
                for (int i = 0; i < 20; i++) {
                    try {
                        accepted.add(stack.engine.submit(Stack.request(uri, stack.volume("burst-" + i), 128L << 20)));
                    } catch (ProvisioningException e) {
                        refused.add(e);
                    }
                }
            });
            burst.get(60, TimeUnit.SECONDS);
            assertThat(stack.engine.runningJobs() + stack.engine.queueDepth()).isEqualTo(slots + queue);
            assertThat(accepted).hasSize(slots + queue);
            assertThat(refused).hasSize(20 - slots - queue)
                    .allSatisfy(e -> assertThat(e.code()).isEqualTo(ErrorCode.QUEUE_FULL));
            assertThat(refused.get(0).getMessage()).contains("submit again later");
            assertThat(stack.store.list(JobFilter.all())).as("refused submits leave no job record")
                    .hasSize(slots + queue);

            proxy.endOutage();
            for (String id : accepted) {
                Job job = stack.await(id);
                assertThat(job.state()).as("%s %s", job.errorCode(), job.errorMessage()).isEqualTo(JobState.COMPLETED);
                Volumes.assertHolds(POOL, job.request().volumeName(), image);
            }
            for (int i = slots + queue; i < 20; i++) {
                Leftovers.assertNoVolume(POOL, stack.volume("burst-" + i));
            }
            // Room again: a new submit is accepted.
            Job after = stack.run(Stack.request(uri, stack.volume("after"), 128L << 20));
            assertThat(after.state()).isEqualTo(JobState.COMPLETED);
        }
    }
}
