package org.volprov.it;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.volprov.ErrorCode;
import org.volprov.Job;
import org.volprov.JobEvent;
import org.volprov.JobListener;
import org.volprov.JobState;
import org.volprov.Stage;
import org.volprov.libvirt.testkit.LibvirtTestPool;
import org.volprov.s3.testkit.FaultProxy;
import org.volprov.testing.TestImages;

/**
 * An object replaced on the S3 server while an engine downloads it, with no checksum published (so
 * nothing but the object's version tells the two apart): the job starts over from a fresh stat and
 * provisions exactly the new version, or fails with IMAGE_CHANGED when the object keeps changing,
 * and no bytes of two versions are ever admitted to the cache. The cache directory is checked by
 * hashing its files, not by asking the cache.
 *
 * <p>The replacement is made from a listener, on the job's thread, once the download is under way.
 * A single-stream download's connection, still carrying the old version (the server streams the
 * version it started with), is then cut, so that it reads on with a new request as after any
 * network fault; a parallel download makes new requests for its next parts by itself.
 */
@Tag(Category.MULTI_ENGINE)
class ObjectReplacedMidDownloadIT {
    @RegisterExtension
    static final LibvirtTestPool POOL = new LibvirtTestPool();
    private static final long VOLUME = 128L << 20;

    @TempDir
    Path work;

    @ParameterizedTest(name = "{0}, {1} parts in flight")
    @CsvSource({"S3, 1", "S3, 4", "MINIO, 1", "MINIO, 4"})
    void objectReplacedMidDownload_restartsFromAFreshStat_andProvisionsExactlyTheNewVersion(Stack.Adapter adapter,
            int parallelism) throws Exception {
        // The new version is the larger one: a read of the old one's range from it succeeds, so only
        // the version check keeps the two apart.
        TestImage v1 = ImageSet.get(ImageSet.SMALL);
        TestImage v2 = ImageSet.get(ImageSet.RAW);
        String key = "replaced/" + UUID.randomUUID() + ".img";
        String uri = Uploads.put(key, v1, null);
        String volume = "replaced-" + adapter + "-" + parallelism;
        try (FaultProxy proxy = FaultProxy.start(Services.s3().endpoint());
             Stack stack = Stack.builder(POOL, work).adapter(adapter).endpoint(proxy.endpoint())
                     .engine(b -> {
                         if (parallelism > 1) {
                             b.parallelDownload(parallelism, 8L << 20);
                         }
                     }).build()) {
            Replacer replacer = new Replacer(proxy, parallelism == 1, key, 1, v2, v1);
            stack.engine.addListener(replacer);
            Job job = stack.run(Stack.request(uri, stack.volume(volume), VOLUME));

            assertThat(job.state()).as("%s %s", job.errorCode(), job.errorMessage()).isEqualTo(JobState.COMPLETED);
            assertThat(replacer.replacements).hasValue(1);
            assertThat(stack.stages(job.id())).as("resolved again after the change")
                    .containsSubsequence(Stage.RESOLVING, Stage.DOWNLOADING, Stage.RESOLVING, Stage.DOWNLOADING,
                            Stage.INSPECTING);
            assertThat(job.imageDigest()).isEqualTo(v2.fileSha256());
            Volumes.assertHolds(POOL, stack.volume(volume), v2);
            Path dir = stack.cache.directory();
            assertThat(entriesHashedFromDisk(dir)).containsExactly(v2.fileSha256());
            assertThat(aliasedDigests(dir)).as("object versions the cache knows").containsExactly(v2.fileSha256());
            assertThat(Leftovers.partialDownloads(dir)).isEmpty();

            // A second request for the object is a hit on the new version.
            Job again = stack.run(Stack.request(uri, stack.volume(volume + "-again"), VOLUME));
            assertThat(again.cacheHit()).isTrue();
            assertThat(again.imageDigest()).isEqualTo(v2.fileSha256());
        }
    }

    @Test
    void objectThatKeepsChanging_failsWithImageChanged_andNothingIsAdmitted() throws Exception {
        TestImage v1 = ImageSet.get(ImageSet.RAW);
        TestImage v2 = ImageSet.get(ImageSet.SMALL);
        String key = "replaced/" + UUID.randomUUID() + ".img";
        String uri = Uploads.put(key, v1, null);
        try (FaultProxy proxy = FaultProxy.start(Services.s3().endpoint());
             Stack stack = Stack.builder(POOL, work).endpoint(proxy.endpoint()).build()) {
            Replacer replacer = new Replacer(proxy, true, key, Integer.MAX_VALUE, v2, v1);
            stack.engine.addListener(replacer);
            Job job = stack.run(Stack.request(uri, stack.volume("changing"), VOLUME));

            assertThat(job.state()).isEqualTo(JobState.FAILED);
            assertThat(job.errorCode()).as(job.errorMessage()).isEqualTo(ErrorCode.IMAGE_CHANGED);
            assertThat(job.errorMessage()).contains(uri, "kept changing", "atomically");
            assertThat(replacer.replacements).as("one replacement per download").hasValue(4);
            Path dir = stack.cache.directory();
            assertThat(entriesHashedFromDisk(dir)).isEmpty();
            assertThat(aliasedDigests(dir)).isEmpty();
            assertThat(Leftovers.partialDownloads(dir)).isEmpty();
            Leftovers.assertNoVolume(POOL, stack.volume("changing"));
        }
    }

    /**
     * Once each download is under way (its first progress), uploads the next of {@code versions}
     * over the object, straight to the server, and with {@code cut} cuts the one connection that
     * still carries the old version; at most {@code times} times, once per download.
     */
    private static final class Replacer implements JobListener {
        final AtomicInteger replacements = new AtomicInteger();
        private final FaultProxy proxy;
        private final boolean cut;
        private final String key;
        private final int times;
        private final TestImage[] versions;
        private boolean replacedThisDownload;

        Replacer(FaultProxy proxy, boolean cut, String key, int times, TestImage... versions) {
            this.proxy = proxy;
            this.cut = cut;
            this.key = key;
            this.times = times;
            this.versions = versions;
        }

        @Override
        public void onEvent(JobEvent e) {
            if (e.kind() == JobEvent.Kind.STAGE && e.job().stage() == Stage.DOWNLOADING) {
                replacedThisDownload = false;
            } else if (e.kind() == JobEvent.Kind.PROGRESS && e.job().stage() == Stage.DOWNLOADING
                    && !replacedThisDownload && replacements.get() < times) {
                replacedThisDownload = true;
                Uploads.put(key, versions[replacements.getAndIncrement() % versions.length], null);
                if (cut) {
                    proxy.cutOnceAfter(0);
                }
            }
        }
    }

    /** The digests of the cache's entries, each hashed from disk and checked to equal its name. */
    private static List<String> entriesHashedFromDisk(Path dir) throws IOException {
        List<String> out = new ArrayList<>();
        for (String digest : Leftovers.cacheEntries(dir)) {
            assertThat(TestImages.sha256(dir.resolve(digest))).as("content of cache entry %s", digest)
                    .isEqualTo(digest);
            out.add(digest);
        }
        return out;
    }

    /** The digests the cache's identity aliases (object version -> digest) point at. */
    private static List<String> aliasedDigests(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(p -> p.getFileName().toString().endsWith(".alias")).map(p -> {
                Properties props = new Properties();
                try (InputStream in = Files.newInputStream(p)) {
                    props.load(in);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
                return props.getProperty("sha256");
            }).sorted().toList();
        }
    }
}
