package org.volprov.it;

import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import org.volprov.ImageFormat;
import org.volprov.JobEvent;
import org.volprov.ProvisionRequest;
import org.volprov.Provisioner;
import org.volprov.Stage;
import org.volprov.cache.DiskImageCache;
import org.volprov.jdbc.JdbcJobStore;
import org.volprov.libvirt.LibvirtConfig;
import org.volprov.libvirt.LibvirtVolumeBackend;
import org.volprov.s3.S3ImageSource;
import org.volprov.s3.S3SourceConfig;

/**
 * A provisioner process, wired as a host application would wire it, for the tests that kill one:
 * it submits one job and stops moving at a given point of it (the job's thread parks in a listener),
 * printing {@code PAUSED <job id>}, so that the test can kill it with SIGKILL exactly there.
 *
 * <p>Arguments are {@code key=value}: endpoint, accessKey, secretKey, region, cacheDir, libvirtUri,
 * pool, schema, host, imageUri, volume, size, pauseAt (a stage), pauseOn ({@code STAGE} or
 * {@code PROGRESS}: on entering the stage, or at its first progress event). PostgreSQL comes from
 * {@code TEST_POSTGRES_DSN}.
 */
public final class ProvisionerProcess {
    private ProvisionerProcess() {
    }

    public static void main(String[] argv) throws Exception {
        Map<String, String> a = new HashMap<>();
        for (String arg : argv) {
            int eq = arg.indexOf('=');
            a.put(arg.substring(0, eq), arg.substring(eq + 1));
        }
        Stage pauseAt = Stage.valueOf(a.get("pauseAt"));
        JobEvent.Kind pauseOn = JobEvent.Kind.valueOf(a.get("pauseOn"));
        AtomicBoolean paused = new AtomicBoolean();
        CountDownLatch never = new CountDownLatch(1);

        S3ImageSource source = S3ImageSource.create(S3SourceConfig.builder().endpoint(URI.create(a.get("endpoint")))
                .region(a.get("region")).credentials(a.get("accessKey"), a.get("secretKey")).build());
        DiskImageCache cache = DiskImageCache.builder().directory(Path.of(a.get("cacheDir"))).maxBytes(8L << 30).build();
        LibvirtVolumeBackend backend = LibvirtVolumeBackend.open(
                LibvirtConfig.builder().uri(a.get("libvirtUri")).poolName(a.get("pool")).build());
        JdbcJobStore store = JobStores.postgres(a.get("schema"), a.get("host"));
        Provisioner engine = Provisioner.builder()
                .source(source).cache(cache).backend(backend).jobStore(store)
                .listener(e -> {
                    if (e.kind() == pauseOn && e.job().stage() == pauseAt && paused.compareAndSet(false, true)) {
                        System.out.println("PAUSED " + e.job().id());
                        System.out.flush();
                        try {
                            never.await();
                        } catch (InterruptedException ie) {
                            Thread.currentThread().interrupt();
                        }
                    }
                })
                .build();
        String id = engine.submit(ProvisionRequest.builder().imageUri(a.get("imageUri")).volumeName(a.get("volume"))
                .volumeSizeBytes(Long.parseLong(a.get("size"))).format(ImageFormat.AUTO).build());
        System.out.println("SUBMITTED " + id);
        System.out.flush();
        engine.await(id, Duration.ofMinutes(10));
        System.out.println("NOT PAUSED: the job ended");
        System.exit(3);
    }
}
