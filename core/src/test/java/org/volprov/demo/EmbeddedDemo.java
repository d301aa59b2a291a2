package org.volprov.demo;

import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.stream.Stream;
import org.volprov.Job;
import org.volprov.JobState;
import org.volprov.ProvisionRequest;
import org.volprov.Provisioner;
import org.volprov.cache.DiskImageCache;
import org.volprov.job.InMemoryJobStore;
import org.volprov.source.LocalDirectoryImageSource;
import org.volprov.testing.TestImages;
import org.volprov.volume.FileVolumeBackend;

/**
 * The main job on embedded defaults: a real qcow2 image made with qemu-img is provisioned twice
 * through the engine into file-backed volumes; the volumes' bytes are checked against
 * {@code qemu-img convert} of the same image. Exits non-zero when anything differs. Progress is one
 * line per job rewritten in place on a terminal, and a line per stage and per 10 % elsewhere
 * ({@code DEMO_PROGRESS=terminal|log} chooses).
 *
 * <p>Arguments: {@code [workDir] [imageSizeMiB]}.
 */
public final class EmbeddedDemo {
    /**
     * Standard output itself: under {@code mvn exec:java} the demo runs in Maven's JVM, whose
     * {@code System.out} strips the cursor controls of the progress lines in batch mode.
     */
    private static final PrintStream OUT = new PrintStream(new FileOutputStream(FileDescriptor.out), true,
            StandardCharsets.UTF_8);

    private EmbeddedDemo() {
    }

    public static void main(String[] args) throws Exception {
        Path work = Path.of(args.length > 0 ? args[0] : ".demo").toAbsolutePath();
        long sizeMiB = args.length > 1 ? Long.parseLong(args[1]) : 256;
        long imageSize = sizeMiB << 20;
        long volumeSize = imageSize + (64L << 20);
        OUT.printf("volprov demo in %s: a %d MiB qcow2 image into %d MiB volumes%n", work, sizeMiB,
                volumeSize >> 20);

        Path bucket = Files.createDirectories(work.resolve("source/images"));
        Path qcow2 = bucket.resolve("demo-" + sizeMiB + "m.qcow2");
        Path reference = work.resolve("reference.raw");
        if (!Files.exists(qcow2) || !Files.exists(reference)) {
            long t0 = System.nanoTime();
            Path raw = TestImages.raw(work.resolve("demo.raw"), imageSize, 2024);
            TestImages.qcow2(raw, qcow2, false);
            Files.delete(raw);
            Files.writeString(bucket.resolve(qcow2.getFileName() + ".sha256"),
                    TestImages.sha256(qcow2) + "  " + qcow2.getFileName() + "\n", StandardCharsets.US_ASCII);
            TestImages.toRaw(qcow2, reference);
            OUT.printf("made the image with qemu-img in %.1f s%n", seconds(t0));
        }
        String expected = TestImages.sha256(reference, imageSize);

        Path volumes = work.resolve("volumes");
        FileVolumeBackend backend = FileVolumeBackend.open(volumes);
        backend.delete("demo-vm-1");
        backend.delete("demo-vm-2");
        // Every run starts cold, so the first provisioning downloads and the second is a cache hit.
        Path cacheDir = work.resolve("cache");
        if (Files.isDirectory(cacheDir)) {
            try (Stream<Path> old = Files.list(cacheDir)) {
                for (Path f : old.toList()) {
                    Files.delete(f);
                }
            }
        }
        boolean ok = true;
        boolean first = true;
        try (DiskImageCache cache = DiskImageCache.builder().directory(cacheDir).maxBytes(8L << 30).build();
                Provisioner provisioner = Provisioner.builder()
                        .source(new LocalDirectoryImageSource(work.resolve("source")))
                        .cache(cache)
                        .backend(backend)
                        .jobStore(new InMemoryJobStore())
                        .listener(new ProgressPrinter(OUT, ProgressPrinter.Mode.detect(), System::nanoTime))
                        .build()) {
            for (String volume : new String[] {"demo-vm-1", "demo-vm-2"}) {
                long t0 = System.nanoTime();
                String id = provisioner.submit(ProvisionRequest.builder()
                        .imageUri("s3://images/" + qcow2.getFileName())
                        .volumeName(volume)
                        .volumeSizeBytes(volumeSize)
                        .correlationId("demo")
                        .build());
                Job job = provisioner.await(id, Duration.ofMinutes(30));
                double took = seconds(t0);
                Path file = volumes.resolve(volume);
                if (job.state() != JobState.COMPLETED) {
                    OUT.printf("%s: %s [%s] %s%n", volume, job.state(), job.errorCode(), job.errorMessage());
                    ok = false;
                    continue;
                }
                String actual = TestImages.sha256(file, imageSize);
                boolean zeroTail = TestImages.zerosBetween(file, imageSize, volumeSize);
                boolean match = actual.equals(expected) && zeroTail;
                boolean hitAsExpected = job.cacheHit() != first;
                first = false;
                ok &= match && hitAsExpected;
                OUT.printf("%s: %s in %.2f s (%s), volume sha256 %s %s qemu-img convert; tail %s%n", volume,
                        job.state(), took, job.cacheHit() ? "cache hit" : "downloaded", actual,
                        match ? "matches" : "DIFFERS FROM", zeroTail ? "zero" : "NOT ZERO");
                if (!hitAsExpected) {
                    OUT.println(volume + ": expected " + (job.cacheHit() ? "a download" : "a cache hit"));
                }
            }
            OUT.println("cache: " + provisioner.cacheStats());
        }
        if (!ok) {
            OUT.println("FAILED");
            System.exit(1);
        }
        OUT.println("OK");
    }

    private static double seconds(long t0) {
        return (System.nanoTime() - t0) / 1e9;
    }
}
