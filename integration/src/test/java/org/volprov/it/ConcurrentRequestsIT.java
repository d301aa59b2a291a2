package org.volprov.it;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.volprov.Job;
import org.volprov.JobEvent;
import org.volprov.JobState;
import org.volprov.libvirt.testkit.LibvirtTestPool;
import org.volprov.s3.testkit.FaultProxy;

/** Many jobs at once: one download per image, every volume right, never more running than the limit. */
@Tag(Category.CONCURRENT_REQUESTS)
class ConcurrentRequestsIT {
    @RegisterExtension
    static final LibvirtTestPool POOL = new LibvirtTestPool();

    @TempDir
    Path work;

    @Test
    void eightJobsForOneImage_submittedAtOnce_downloadItOnce_andAllComplete() throws Exception {
        TestImage image = ImageSet.get(ImageSet.SMALL);
        String uri = Uploads.uri(image);
        int n = 8;
        try (FaultProxy proxy = FaultProxy.start(Services.s3().endpoint());
             Stack stack = Stack.builder(POOL, work).endpoint(proxy.endpoint())
                     .engine(b -> b.maxConcurrentJobs(n)).build()) {
            List<String> ids = submitAtOnce(stack, uri, "same-", n, image.virtualSize());
            for (int i = 0; i < n; i++) {
                Job job = stack.await(ids.get(i));
                assertThat(job.state()).as("%s %s", job.errorCode(), job.errorMessage()).isEqualTo(JobState.COMPLETED);
                Volumes.assertHolds(POOL, stack.volume("same-" + i), image);
            }
            assertThat(stack.cache.stats().misses()).as("downloads").isEqualTo(1);
            assertThat(stack.cache.stats().bytesDownloaded()).isEqualTo(Files.size(image.file()));
            assertThat(proxy.bytesToClient()).as("bytes on the wire")
                    .isBetween(Files.size(image.file()), Files.size(image.file()) + (1L << 20));
            assertThat(ids.stream().map(id -> stack.store.find(id).orElseThrow().cacheHit()))
                    .as("exactly one job downloaded").containsOnlyOnce(false);
        }
    }

    @Test
    void fourJobsForFourImages_runUpToTheConcurrencyLimit_andAllComplete() throws Exception {
        List<TestImage> images = List.of(ImageSet.get(ImageSet.SMALL), ImageSet.get(ImageSet.RAW),
                ImageSet.get(ImageSet.COMPRESSED), ImageSet.get(ImageSet.MEDIUM));
        List<String> uris = images.stream().map(Uploads::uri).toList();
        AtomicInteger running = new AtomicInteger();
        AtomicInteger maxRunning = new AtomicInteger();
        try (Stack stack = Stack.builder(POOL, work).engine(b -> b.maxConcurrentJobs(2).listener(e -> {
            if (e.kind() != JobEvent.Kind.STATE) {
                return;
            }
            if (e.job().state() == JobState.RUNNING) {
                maxRunning.accumulateAndGet(running.incrementAndGet(), Math::max);
            } else if (e.job().state().terminal()) {
                running.decrementAndGet();
            }
        })).build()) {
            List<String> ids = new ArrayList<>();
            for (int i = 0; i < images.size(); i++) {
                ids.add(stack.engine.submit(Stack.request(uris.get(i), stack.volume("img-" + i),
                        images.get(i).virtualSize())));
            }
            for (int i = 0; i < images.size(); i++) {
                Job job = stack.await(ids.get(i));
                assertThat(job.state()).as("%s %s", job.errorCode(), job.errorMessage()).isEqualTo(JobState.COMPLETED);
                Volumes.assertHolds(POOL, stack.volume("img-" + i), images.get(i));
            }
            assertThat(maxRunning.get()).as("jobs running at once").isEqualTo(2);
            assertThat(stack.cache.stats().misses()).isEqualTo(4);
        }
    }

    /** Submits {@code n} requests from {@code n} threads released together. */
    static List<String> submitAtOnce(Stack stack, String uri, String prefix, int n, long size) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(n);
        try {
            CountDownLatch go = new CountDownLatch(1);
            List<Future<String>> futures = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                String volume = stack.volume(prefix + i);
                futures.add(pool.submit(() -> {
                    go.await();
                    return stack.engine.submit(Stack.request(uri, volume, size));
                }));
            }
            go.countDown();
            List<String> ids = new ArrayList<>();
            for (Future<String> f : futures) {
                ids.add(f.get(60, TimeUnit.SECONDS));
            }
            return ids;
        } finally {
            pool.shutdownNow();
        }
    }
}
