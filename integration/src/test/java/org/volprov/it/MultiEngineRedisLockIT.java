package org.volprov.it;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.volprov.ErrorCode;
import org.volprov.Job;
import org.volprov.JobState;
import org.volprov.ProvisionRequest;
import org.volprov.ProvisioningException;
import org.volprov.libvirt.testkit.LibvirtTestPool;
import org.volprov.redis.testkit.RedisTestServer;
import org.volprov.s3.testkit.S3TestServer;

/**
 * Two engine processes of one host guard their volumes through Redis, and one of them stalls: its
 * JVM is frozen with SIGSTOP in the middle of writing a volume, renewal thread and all, for longer
 * than its lock's lease. The other engine takes the lock once Redis lets it go, and writes the
 * volume. When the stalled engine wakes up, it must not write another byte: its job fails, saying
 * that it lost the lock, and the volume holds exactly what the new holder wrote.
 */
@Tag(Category.MULTI_ENGINE)
class MultiEngineRedisLockIT {
    @RegisterExtension
    static final LibvirtTestPool POOL = new LibvirtTestPool();
    /** The frozen engine's lease; renewed every third of it until the freeze. */
    private static final long LEASE_MILLIS = 5000;

    @TempDir
    Path work;

    @Test
    void holderStalledPastItsLease_stopsBeforeItsNextWrite_andTheVolumeHoldsWhatTheNewHolderWrote() throws Exception {
        // The stalled engine writes a raw image itself (no qemu-img child writes behind its back);
        // the new holder writes another image of the same size.
        TestImage stalledImage = ImageSet.get(ImageSet.RAW);
        TestImage newImage = ImageSet.get(ImageSet.SMALL);
        assertThat(newImage.virtualSize()).isEqualTo(stalledImage.virtualSize());
        String volume = POOL.prefix() + "stalled-lock";
        String prefix = RedisTestServer.uniquePrefix("it-lock");
        RedisTestServer redis = Services.redis();
        S3TestServer s3 = Services.s3();
        String stalledUri = Uploads.uri(stalledImage);
        String newUri = Uploads.uri(newImage);
        try (ChildProcess stalled = ChildProcess.start(EngineProcess.class, Map.of(), List.of(
                "endpoint=" + s3.endpoint(), "accessKey=" + s3.accessKey(), "secretKey=" + s3.secretKey(),
                "region=" + s3.region(), "cacheDir=" + Files.createDirectories(work.resolve("stalled-cache")),
                "libvirtUri=" + LibvirtTestPool.URI, "pool=" + POOL.pool(), "imageUri=" + stalledUri,
                "volume=" + volume, "size=" + stalledImage.virtualSize(), "holdAt=WRITING",
                "redisUri=" + redis.uri(), "redisPrefix=" + prefix, "redisHost=" + Stack.HOST,
                "redisLeaseMillis=" + LEASE_MILLIS));
             Stack holder = Stack.builder(POOL, work.resolve("holder")).redis(redis.config(prefix), prefix).build()) {
            stalled.awaitLine("HELD ", Duration.ofMinutes(2));
            // It has written the first part of its image and holds the lock; now it stands still.
            stalled.freeze();

            String id = submitOnceFree(holder, Stack.request(newUri, volume, newImage.virtualSize()));
            Job job = holder.await(id);
            assertThat(job.state()).as("%s %s", job.errorCode(), job.errorMessage()).isEqualTo(JobState.COMPLETED);
            Volumes.assertHolds(POOL, volume, newImage);

            stalled.thaw();
            stalled.send("go on");
            String ended = stalled.awaitLine("ENDED ", Duration.ofMinutes(2));
            assertThat(ended).startsWith(JobState.FAILED + " " + ErrorCode.VOLUME_BUSY + " ")
                    .contains("lost the lock on volume " + volume + " to another process")
                    .contains("not deleted");
            assertThat(Volumes.exists(POOL, volume)).as("the new holder's volume stays").isTrue();
            Volumes.assertHolds(POOL, volume, newImage);
        } finally {
            redis.deleteKeys(prefix);
        }
    }

    /**
     * Submits {@code request} as soon as the volume's lock is free: while the stalled engine's lease
     * runs, the submit is refused with {@code VOLUME_BUSY}.
     */
    private static String submitOnceFree(Stack stack, ProvisionRequest request) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(20 * LEASE_MILLIS);
        List<String> refusals = new ArrayList<>();
        while (true) {
            try {
                String id = stack.engine.submit(request);
                assertThat(refusals).as("the stalled engine's lock was held at first").isNotEmpty();
                return id;
            } catch (ProvisioningException e) {
                assertThat(e.code()).isEqualTo(ErrorCode.VOLUME_BUSY);
                refusals.add(e.getMessage());
            }
            assertThat(System.nanoTime() - deadline).as("the lock was free within 20 lease times").isNegative();
            TimeUnit.MILLISECONDS.sleep(LEASE_MILLIS / 20);
        }
    }
}
