package org.volprov.it;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import org.volprov.Job;
import org.volprov.JobEvent;
import org.volprov.ProvisionRequest;
import org.volprov.Provisioner;
import org.volprov.Stage;
import org.volprov.cache.DiskImageCache;
import org.volprov.image.ImageFormat;
import org.volprov.jdbc.JdbcJobStore;
import org.volprov.libvirt.LibvirtConfig;
import org.volprov.libvirt.LibvirtVolumeBackend;
import org.volprov.s3.S3ImageSource;
import org.volprov.s3.S3SourceConfig;

/**
 * A provisioner process, wired as a host application would wire it, for the tests that kill one
 * or run two: it submits one job and stops moving at a given point of it (the job's thread parks
 * in a listener), printing {@code ENGINE <engine id>} and then {@code PAUSED <job id>}, so that the
 * test can kill it with SIGKILL exactly there, or, with {@code resume=true}, let it go on by
 * writing a line to its standard input; it then prints {@code ENDED <job id> <state> <error code>},
 * closes the engine and exits with status 0.
 *
 * <p>Arguments are {@code key=value}: endpoint, accessKey, secretKey, region, cacheDir, libvirtUri,
 * pool, host, imageUri, volume, size, pauseAt (a stage), pauseOn ({@code STAGE} or
 * {@code PROGRESS}: on entering the stage, or at its first progress event); the job store is
 * {@code schema} (PostgreSQL, from {@code TEST_POSTGRES_DSN}) or {@code sqlite} (a file); optional
 * {@code lease} (the engine's job lease, ISO-8601, default 30 s) and {@code resume}.
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
        boolean resume = Boolean.parseBoolean(a.getOrDefault("resume", "false"));
        AtomicBoolean paused = new AtomicBoolean();
        CountDownLatch goOn = new CountDownLatch(1);

        S3ImageSource source = S3ImageSource.create(S3SourceConfig.builder().endpoint(URI.create(a.get("endpoint")))
                .region(a.get("region")).credentials(a.get("accessKey"), a.get("secretKey")).build());
        DiskImageCache cache = DiskImageCache.builder().directory(Path.of(a.get("cacheDir"))).maxBytes(8L << 30).build();
        LibvirtVolumeBackend backend = LibvirtVolumeBackend.open(
                LibvirtConfig.builder().uri(a.get("libvirtUri")).poolName(a.get("pool")).build());
        JdbcJobStore store = a.containsKey("sqlite") ? JobStores.sqlite(Path.of(a.get("sqlite")), a.get("host"))
                : JobStores.postgres(a.get("schema"), a.get("host"));
        Provisioner engine = Provisioner.builder()
                .source(source).cache(cache).backend(backend).jobStore(store)
                .jobLease(Duration.parse(a.getOrDefault("lease", "PT30S")))
                .listener(e -> {
                    if (e.kind() == pauseOn && e.job().stage() == pauseAt && paused.compareAndSet(false, true)) {
                        System.out.println("PAUSED " + e.job().id());
                        System.out.flush();
                        try {
                            goOn.await();
                        } catch (InterruptedException ie) {
                            Thread.currentThread().interrupt();
                        }
                    }
                })
                .build();
        System.out.println("ENGINE " + engine.engineId());
        if (resume) {
            Thread stdin = new Thread(() -> {
                try (BufferedReader r = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
                    if (r.readLine() != null) {
                        goOn.countDown();
                    }
                } catch (Exception e) {
                    // the test went away; the job stays paused until the process is killed
                }
            }, "resume-on-input");
            stdin.setDaemon(true);
            stdin.start();
        }
        String id = engine.submit(ProvisionRequest.builder().imageUri(a.get("imageUri")).volumeName(a.get("volume"))
                .volumeSizeBytes(Long.parseLong(a.get("size"))).format(ImageFormat.AUTO).build());
        System.out.println("SUBMITTED " + id);
        System.out.flush();
        Job job = engine.await(id, Duration.ofMinutes(10));
        if (!resume) {
            System.out.println("NOT PAUSED: the job ended");
            System.exit(3);
        }
        System.out.println("ENDED " + id + " " + job.state() + " " + job.errorCode());
        System.out.flush();
        engine.close();
        store.close();
        backend.close();
        cache.close();
        source.close();
        System.exit(0);
    }
}
