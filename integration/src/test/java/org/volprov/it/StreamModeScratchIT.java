package org.volprov.it;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.volprov.Job;
import org.volprov.JobEvent;
import org.volprov.JobState;
import org.volprov.libvirt.WriteMode;
import org.volprov.libvirt.testkit.LibvirtTestPool;

/**
 * A cold job in {@code STREAM} mode (libvirt's upload into a {@code dir} pool volume) writes the
 * image into the upload as it decodes it: no file of the image's size appears in the engine's work
 * directory while the job runs. The directory is looked at on every event of the job (on its
 * thread, so also in the middle of the write) and by a thread of its own in between; a scratch
 * file deleted at the end of the job is still seen.
 */
@Tag(Category.RESOURCE_CLEANUP)
class StreamModeScratchIT {
    @RegisterExtension
    static final LibvirtTestPool POOL = new LibvirtTestPool();

    @TempDir
    Path work;

    @Test
    void streamModeColdJob_ofAQcow2Image_leavesNoScratchFileInTheWorkDirectory() throws Exception {
        coldStreamJob_seesNoFileOfTheImagesSizeInTheWorkDirectory(ImageSet.get(ImageSet.SMALL), "scratch-qcow2");
    }

    @Test
    void streamModeColdJob_ofARawImage_leavesNoScratchFileInTheWorkDirectory() throws Exception {
        coldStreamJob_seesNoFileOfTheImagesSizeInTheWorkDirectory(ImageSet.get(ImageSet.RAW), "scratch-raw");
    }

    private void coldStreamJob_seesNoFileOfTheImagesSizeInTheWorkDirectory(TestImage image, String suffix)
            throws Exception {
        String uri = Uploads.uri(image);
        Path workDirectory = Files.createDirectories(work.resolve("engine-work"));
        AtomicInteger looksDuringJob = new AtomicInteger();
        try (Watch watch = new Watch(workDirectory, image.virtualSize());
             Stack stack = Stack.builder(POOL, work).writeMode(WriteMode.STREAM).workDirectory(workDirectory)
                     .engine(b -> b.listener(e -> {
                         if (e.kind() != JobEvent.Kind.STATE || !e.job().state().terminal()) {
                             watch.look();
                             looksDuringJob.incrementAndGet();
                         }
                     })).build()) {
            String volume = stack.volume(suffix);
            Job job = stack.run(Stack.request(uri, volume, image.virtualSize()));

            assertThat(job.state()).as("%s %s", job.errorCode(), job.errorMessage()).isEqualTo(JobState.COMPLETED);
            assertThat(job.cacheHit()).as("a cold job").isFalse();
            Volumes.assertHolds(POOL, volume, image);
            assertThat(looksDuringJob.get()).as("looks at the work directory while the job ran").isPositive();
            assertThat(watch.seen())
                    .as("files of at least the image's %d bytes in the work directory during the job", image.virtualSize())
                    .isEmpty();
        }
    }

    /** Records every file in a directory tree whose size reaches a bound, each time it looks. */
    private static final class Watch implements AutoCloseable {
        private final Path dir;
        private final long bytes;
        private final Map<Path, Long> seen = new ConcurrentHashMap<>();
        private final Thread poller;
        private volatile boolean closed;
        private volatile RuntimeException failure;

        Watch(Path dir, long bytes) {
            this.dir = dir;
            this.bytes = bytes;
            this.poller = new Thread(() -> {
                while (!closed) {
                    try {
                        look();
                    } catch (RuntimeException e) {
                        failure = e;
                        return;
                    }
                    LockSupport.parkNanos(2_000_000); // a look every 2 ms between the job's events
                }
            }, "work-directory-watch");
            poller.setDaemon(true);
            poller.start();
        }

        void look() {
            try (Stream<Path> files = Files.walk(dir)) {
                files.forEach(f -> {
                    try {
                        if (Files.isRegularFile(f) && Files.size(f) >= bytes) {
                            seen.merge(f, Files.size(f), Math::max);
                        }
                    } catch (IOException e) {
                        // deleted between the listing and the look: it was smaller, or is seen on another look
                    }
                });
            } catch (UncheckedIOException | IOException e) {
                if (!(e.getCause() instanceof NoSuchFileException) && !(e instanceof NoSuchFileException)) {
                    throw new IllegalStateException("cannot list " + dir + ": " + e, e);
                }
            }
        }

        Map<Path, Long> seen() {
            if (failure != null) {
                throw failure;
            }
            return Map.copyOf(seen);
        }

        @Override
        public void close() throws InterruptedException {
            closed = true;
            poller.join();
        }
    }
}
