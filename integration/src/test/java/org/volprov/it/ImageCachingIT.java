package org.volprov.it;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.UUID;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.volprov.Job;
import org.volprov.JobState;
import org.volprov.cache.CacheStats;
import org.volprov.libvirt.testkit.LibvirtTestPool;
import org.volprov.redis.testkit.RedisTestServer;
import org.volprov.s3.testkit.FaultProxy;

/**
 * The cache makes reprovisioning fast and never serves a stale image: a repeat request downloads
 * nothing, a changed image is fetched again, a small budget evicts the least recently used image.
 * Bytes on the wire are counted by a TCP proxy between the adapter and the S3 server.
 */
@Tag(Category.IMAGE_CACHING)
class ImageCachingIT {
    @RegisterExtension
    static final LibvirtTestPool POOL = new LibvirtTestPool();

    @TempDir
    Path work;

    @Test
    void secondRequest_isAHit_withNoImageBytesDownloaded() throws IOException {
        TestImage image = ImageSet.get(ImageSet.SMALL);
        String uri = Uploads.uri(image);
        long size = image.virtualSize();
        try (FaultProxy proxy = FaultProxy.start(Services.s3().endpoint());
             Stack stack = Stack.builder(POOL, work).endpoint(proxy.endpoint()).build()) {
            Job first = stack.run(Stack.request(uri, stack.volume("cache-1"), size));
            assertThat(first.state()).isEqualTo(JobState.COMPLETED);
            assertThat(first.cacheHit()).isFalse();
            long afterFirst = proxy.bytesToClient();
            assertThat(afterFirst).as("first request downloads the image").isGreaterThanOrEqualTo(Files.size(image.file()));
            CacheStats s1 = stack.cache.stats();

            Job second = stack.run(Stack.request(uri, stack.volume("cache-2"), size));
            assertThat(second.state()).isEqualTo(JobState.COMPLETED);
            assertThat(second.cacheHit()).isTrue();
            assertThat(stack.store.find(second.id()).orElseThrow().cacheHit()).isTrue();
            CacheStats s2 = stack.cache.stats();
            assertThat(s2.bytesDownloaded()).as("bytes downloaded by the hit").isEqualTo(s1.bytesDownloaded());
            assertThat(s2.hits()).isEqualTo(s1.hits() + 1);
            // Only metadata and the 100-byte checksum sibling cross the wire on a hit.
            assertThat(proxy.bytesToClient() - afterFirst).as("bytes on the wire for the hit").isLessThan(64 * 1024);
            Volumes.assertHolds(POOL, stack.volume("cache-2"), image);
        }
    }

    @Test
    void changedImage_underTheSameKey_isAMiss_andProvisionsTheNewContent() throws IOException {
        TestImage v1 = ImageSet.get(ImageSet.RAW);
        TestImage v2 = ImageSet.get(ImageSet.COMPRESSED);
        String key = "caching/changing-" + UUID.randomUUID() + ".img";
        try (Stack stack = Stack.builder(POOL, work).build()) {
            String uri = Uploads.put(key, v1, v1.fileSha256() + "  changing.img\n");
            Job a = stack.run(Stack.request(uri, stack.volume("v1"), 128L << 20));
            assertThat(a.state()).isEqualTo(JobState.COMPLETED);
            assertThat(a.imageDigest()).isEqualTo(v1.fileSha256());

            Uploads.put(key, v2, v2.fileSha256() + "  changing.img\n");
            Job b = stack.run(Stack.request(uri, stack.volume("v2"), 128L << 20));
            assertThat(b.state()).as("%s %s", b.errorCode(), b.errorMessage()).isEqualTo(JobState.COMPLETED);
            assertThat(b.cacheHit()).as("a new version of the object is a miss").isFalse();
            assertThat(b.imageDigest()).isEqualTo(v2.fileSha256());
            Volumes.assertHolds(POOL, stack.volume("v2"), v2);
            assertThat(Leftovers.cacheEntries(stack.cache.directory()))
                    .containsExactlyInAnyOrder(v1.fileSha256(), v2.fileSha256());
        }
    }

    @Test
    void smallBudget_evictsTheLeastRecentlyUsedImage() throws IOException {
        TestImage a = ImageSet.get(ImageSet.SMALL);
        TestImage b = ImageSet.get(ImageSet.COMPRESSED);
        TestImage c = ImageSet.get(ImageSet.RAW);
        long budget = Files.size(a.file()) + Files.size(b.file()) + Files.size(c.file()) - 1;
        try (Stack stack = Stack.builder(POOL, work).cacheBytes(budget).build()) {
            long size = 128L << 20;
            assertThat(stack.run(Stack.request(Uploads.uri(a), stack.volume("a"), size)).state()).isEqualTo(JobState.COMPLETED);
            assertThat(stack.run(Stack.request(Uploads.uri(b), stack.volume("b"), size)).state()).isEqualTo(JobState.COMPLETED);
            // a is used again, so b becomes the least recently used
            Job a2 = stack.run(Stack.request(Uploads.uri(a), stack.volume("a2"), size));
            assertThat(a2.cacheHit()).isTrue();
            assertThat(stack.run(Stack.request(Uploads.uri(c), stack.volume("c"), size)).state()).isEqualTo(JobState.COMPLETED);

            assertThat(stack.cache.stats().evictions()).isEqualTo(1);
            assertThat(Leftovers.cacheEntries(stack.cache.directory()))
                    .containsExactlyInAnyOrder(a.fileSha256(), c.fileSha256());
            assertThat(stack.cache.stats().bytesInUse()).isLessThanOrEqualTo(budget);
            Job b2 = stack.run(Stack.request(Uploads.uri(b), stack.volume("b2"), size));
            assertThat(b2.cacheHit()).as("the evicted image is downloaded again").isFalse();
            Volumes.assertHolds(POOL, stack.volume("b2"), b);
        }
    }

    @Test
    void cachedImage_survivesAnEngineRestart_asAHit() {
        TestImage image = ImageSet.get(ImageSet.SMALL);
        String uri = Uploads.uri(image);
        Path cacheDir = work.resolve("shared-cache");
        try (Stack first = Stack.builder(POOL, work.resolve("one")).cacheDirectory(cacheDir).build()) {
            assertThat(first.run(Stack.request(uri, first.volume("r1"), image.virtualSize())).cacheHit()).isFalse();
        }
        try (Stack second = Stack.builder(POOL, work.resolve("two")).cacheDirectory(cacheDir).build()) {
            Job job = second.run(Stack.request(uri, second.volume("r2"), image.virtualSize()));
            assertThat(job.state()).isEqualTo(JobState.COMPLETED);
            assertThat(job.cacheHit()).as("the index is rebuilt from the directory").isTrue();
            Volumes.assertHolds(POOL, second.volume("r2"), image);
        }
    }

    @Test
    void twoEnginesSharingOneCacheThroughRedis_downloadOnce_andTheSecondIsAHit() throws IOException {
        TestImage image = ImageSet.get(ImageSet.COMPRESSED);
        String uri = Uploads.uri(image);
        Path cacheDir = work.resolve("shared-cache");
        String prefix = RedisTestServer.uniquePrefix("it-caching");
        try (FaultProxy proxy = FaultProxy.start(Services.s3().endpoint());
             Stack a = Stack.builder(POOL, work.resolve("a")).endpoint(proxy.endpoint()).cacheDirectory(cacheDir)
                     .redis(Services.redis().config(prefix), prefix).build();
             Stack b = Stack.builder(POOL, work.resolve("b")).endpoint(proxy.endpoint()).cacheDirectory(cacheDir)
                     .redis(Services.redis().config(prefix), prefix).build()) {
            Job first = a.run(Stack.request(uri, a.volume("redis-a"), image.virtualSize()));
            assertThat(first.cacheHit()).isFalse();
            long afterFirst = proxy.bytesToClient();
            Job second = b.run(Stack.request(uri, b.volume("redis-b"), image.virtualSize()));
            assertThat(second.state()).as("%s %s", second.errorCode(), second.errorMessage())
                    .isEqualTo(JobState.COMPLETED);
            assertThat(second.cacheHit()).as("the other engine's download, seen through Redis").isTrue();
            assertThat(proxy.bytesToClient() - afterFirst).isLessThan(64 * 1024);
            assertThat(a.coordination.fleet().hostsHolding(image.fileSha256())).containsExactly(Stack.HOST);
            Volumes.assertHolds(POOL, b.volume("redis-b"), image);
        } finally {
            Services.redis().deleteKeys(prefix);
        }
    }
}
