package org.volprov.it;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.volprov.ErrorCode;
import org.volprov.Job;
import org.volprov.JobEvent;
import org.volprov.JobFilter;
import org.volprov.JobState;
import org.volprov.ProvisionRequest;
import org.volprov.RetryPolicy;
import org.volprov.Stage;
import org.volprov.libvirt.testkit.LibvirtTestPool;
import org.volprov.s3.testkit.FaultProxy;

/**
 * After a series of jobs failing every way a job fails: no volume but those expected, no temporary
 * file in the cache, every job terminal in the store, and no thread or file descriptor more in this
 * process than before the engine was built (counted after a first round, so that lazily started
 * JVM-wide threads such as the HTTP clients' reapers are in the baseline).
 */
@Tag(Category.RESOURCE_CLEANUP)
class ResourceCleanupIT {
    @RegisterExtension
    static final LibvirtTestPool POOL = new LibvirtTestPool();
    @RegisterExtension
    static final LibvirtTestPool DISK = LibvirtTestPool.disk(256L << 20);

    @TempDir
    Path work;

    static Stream<LibvirtTestPool> pools() {
        return Stream.of(POOL, DISK);
    }

    @ParameterizedTest(name = "on {0}")
    @MethodSource("pools")
    void failingJobs_leaveNoVolumesTempFilesThreadsOrDescriptors(LibvirtTestPool pool) throws Exception {
        round("warm-up", pool);
        Set<String> threadsBefore = threadNames();
        long fdsBefore = openDescriptors();
        Set<String> volumesBefore = LibvirtTestPool.volumes(pool.pool());

        round("measured", pool);

        assertThat(LibvirtTestPool.volumes(pool.pool())).as("volumes in the pool")
                .isEqualTo(volumesBefore);
        if (pool.blockDevices()) {
            assertThat(pool.loopDevice().partitions()).as("partitions on " + pool.loopDevice()).isEmpty();
        }
        // Closed sockets and finished threads can take a moment to be reaped by the JVM.
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while ((threadNames().size() > threadsBefore.size() || openDescriptors() > fdsBefore)
                && System.nanoTime() < deadline) {
            System.gc();
            Thread.sleep(200);
        }
        Set<String> extra = threadNames().stream().filter(t -> !threadsBefore.contains(t)).collect(Collectors.toSet());
        assertThat(threadNames().size()).as("live threads; new ones: %s", extra).isLessThanOrEqualTo(threadsBefore.size());
        assertThat(openDescriptors()).as("open file descriptors: %s", descriptorTargets())
                .isLessThanOrEqualTo(fdsBefore);
    }

    /**
     * One engine, one job of each failure kind, all checked, everything closed. One of them fails
     * after it made its volume (cancelled while writing), which must delete it.
     */
    private void round(String name, LibvirtTestPool pool) throws Exception {
        TestImage image = ImageSet.get(ImageSet.SMALL);
        String good = Uploads.uri(image);
        String mismatch = Uploads.put("cleanup/mismatch-" + UUID.randomUUID() + ".qcow2", image, "f".repeat(64));
        // Without a published checksum each of these is a new object to the cache: a download it must start.
        String uncached1 = Uploads.put("cleanup/" + UUID.randomUUID() + ".qcow2", image, null);
        String uncached2 = Uploads.put("cleanup/" + UUID.randomUUID() + ".qcow2", image, null);
        Path dir = work.resolve(name);
        RetryPolicy quick = new RetryPolicy(2, Duration.ofMillis(50), Duration.ofMillis(100), Duration.ofSeconds(5), 0.5);
        List<Job> jobs = new ArrayList<>();
        try (FaultProxy proxy = FaultProxy.start(Services.s3().endpoint());
             Stack stack = Stack.builder(pool, dir).endpoint(proxy.endpoint()).readTimeout(Duration.ofSeconds(2))
                     .engine(b -> b.retryPolicy(quick).maxConcurrentJobs(1)).build()) {
            String v = name + "-";
            jobs.add(expect(stack, ErrorCode.IMAGE_NOT_FOUND, Stack.request(good + "-missing", stack.volume(v + "missing"), 128L << 20)));
            jobs.add(expect(stack, ErrorCode.CHECKSUM_MISMATCH, Stack.request(mismatch, stack.volume(v + "mismatch"), 128L << 20)));
            jobs.add(expect(stack, ErrorCode.VOLUME_TOO_SMALL, Stack.request(good, stack.volume(v + "small"), 1L << 20)));
            if (pool.kind() == LibvirtTestPool.Kind.DISK) {
                // A name the disk pool would not give its next partition: refused before one is made.
                jobs.add(expect(stack, ErrorCode.INVALID_REQUEST, Stack.request(good, "vm-" + name + "-root", 128L << 20)));
            }

            // Cancelled once the write onto the volume it created is under way (the image is cached by now).
            stack.engine.addListener(e -> {
                if (e.kind() == JobEvent.Kind.PROGRESS && e.job().stage() == Stage.WRITING
                        && e.job().request().correlation().filter(CANCEL_WRITING::equals).isPresent()) {
                    stack.engine.cancel(e.job().id());
                }
            });
            Job cancelledWriting = expect(stack, ErrorCode.CANCELLED,
                    tagged(Stack.request(good, stack.volume(v + "cancel-writing"), 128L << 20), CANCEL_WRITING));
            assertThat(cancelledWriting.createdVolume()).as("it got as far as making its volume").isTrue();
            assertThat(cancelledWriting.errorMessage()).contains("was deleted");
            jobs.add(cancelledWriting);

            // Cancelled mid-download, over a slow link.
            proxy.bandwidth(20_000_000);
            stack.engine.addListener(e -> {
                if (e.kind() == JobEvent.Kind.PROGRESS && e.job().stage() == Stage.DOWNLOADING
                        && e.job().request().correlation().filter(CANCEL_DOWNLOADING::equals).isPresent()) {
                    stack.engine.cancel(e.job().id());
                }
            });
            jobs.add(expect(stack, ErrorCode.CANCELLED,
                    tagged(Stack.request(uncached1, stack.volume(v + "cancelled"), 128L << 20), CANCEL_DOWNLOADING)));

            // The network goes silent: retried, then SOURCE_UNAVAILABLE.
            proxy.bandwidth(0);
            proxy.outage(FaultProxy.Mode.BLACK_HOLE);
            jobs.add(expect(stack, ErrorCode.SOURCE_UNAVAILABLE, Stack.request(uncached2, stack.volume(v + "outage"), 128L << 20)));
            proxy.endOutage();

            assertThat(Leftovers.partialDownloads(stack.cache.directory())).as("temporary files in the cache").isEmpty();
            for (Job job : jobs) {
                Leftovers.assertNoVolume(pool, job.request().volumeName());
            }
            assertThat(stack.store.list(JobFilter.all())).hasSize(jobs.size())
                    .allSatisfy(j -> assertThat(j.state().terminal()).as("job %s terminal", j.id()).isTrue());
            assertThat(stack.engine.runningJobs()).isZero();
            assertThat(stack.engine.queueDepth()).isZero();
        }
    }

    private static final String CANCEL_WRITING = "cancel-writing";
    private static final String CANCEL_DOWNLOADING = "cancel-downloading";

    private static ProvisionRequest tagged(ProvisionRequest r, String correlationId) {
        return ProvisionRequest.builder().imageUri(r.imageUri()).volumeName(r.volumeName())
                .volumeSizeBytes(r.volumeSizeBytes()).format(r.format()).correlationId(correlationId).build();
    }

    private static Job expect(Stack stack, ErrorCode code, ProvisionRequest request) {
        Job job = stack.run(request);
        assertThat(job.errorCode()).as("%s: %s", request.volumeName(), job.errorMessage()).isEqualTo(code);
        assertThat(job.state()).isEqualTo(code == ErrorCode.CANCELLED ? JobState.CANCELLED : JobState.FAILED);
        return job;
    }

    private static Set<String> threadNames() {
        return Thread.getAllStackTraces().keySet().stream().filter(Thread::isAlive)
                .map(t -> t.getName() + "#" + t.getId()).collect(Collectors.toSet());
    }

    private static long openDescriptors() throws IOException {
        try (Stream<Path> s = Files.list(Path.of("/proc/self/fd"))) {
            return s.count();
        }
    }

    private static List<String> descriptorTargets() {
        try (Stream<Path> s = Files.list(Path.of("/proc/self/fd"))) {
            return s.map(p -> {
                try {
                    return Files.readSymbolicLink(p).toString();
                } catch (IOException e) {
                    return "?";
                }
            }).sorted().toList();
        } catch (IOException e) {
            return List.of(e.toString());
        }
    }
}
