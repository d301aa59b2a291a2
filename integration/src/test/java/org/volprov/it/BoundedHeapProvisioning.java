package org.volprov.it;

import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.nio.file.Path;
import java.time.Duration;
import org.volprov.Job;
import org.volprov.ProvisionRequest;
import org.volprov.Provisioner;
import org.volprov.image.ImageFormat;
import org.volprov.source.LocalDirectoryImageSource;
import org.volprov.volume.FileVolumeBackend;

/**
 * One cold job through the engine's embedded defaults (a local-directory source, the disk cache,
 * the default converter, a file-backed volume), for the test that runs it in a JVM with a small
 * heap. Arguments: {@code <sourceRoot> <imageUri> <cacheDir> <volumeDir> <workDir> <volume> <size>}.
 * Prints {@code ENDED <state> <error code> <volume path>}, then {@code HEAP <max> <peak used>} in
 * bytes (the peak summed over the heap's pools), and exits with status 0.
 */
public final class BoundedHeapProvisioning {
    private BoundedHeapProvisioning() {
    }

    public static void main(String[] a) {
        Job job;
        try (FileVolumeBackend volumes = FileVolumeBackend.open(Path.of(a[3]));
             Provisioner engine = Provisioner.builder()
                     .source(new LocalDirectoryImageSource(Path.of(a[0])))
                     .cacheDirectory(Path.of(a[2]), 8L << 30)
                     .backend(volumes)
                     .workDirectory(Path.of(a[4]))
                     .build()) {
            String id = engine.submit(ProvisionRequest.builder()
                    .imageUri(a[1])
                    .volumeName(a[5])
                    .volumeSizeBytes(Long.parseLong(a[6]))
                    .format(ImageFormat.AUTO)
                    .build());
            job = engine.await(id, Duration.ofMinutes(10));
        }
        System.out.println("ENDED " + job.state() + " " + job.errorCode() + " " + job.volumePath()
                + (job.errorMessage() == null ? "" : " " + job.errorMessage().replace('\n', ' ')));
        long peak = 0;
        for (MemoryPoolMXBean pool : ManagementFactory.getMemoryPoolMXBeans()) {
            if (pool.getType() == MemoryType.HEAP && pool.getPeakUsage() != null) {
                peak += pool.getPeakUsage().getUsed();
            }
        }
        System.out.println("HEAP " + Runtime.getRuntime().maxMemory() + " " + peak);
    }
}
