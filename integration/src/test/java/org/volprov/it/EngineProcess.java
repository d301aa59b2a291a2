package org.volprov.it;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import org.volprov.Job;
import org.volprov.JobEvent;
import org.volprov.ProvisionRequest;
import org.volprov.Provisioner;
import org.volprov.Stage;
import org.volprov.cache.DiskImageCache;
import org.volprov.image.ImageFormat;
import org.volprov.image.QemuImgConverter;
import org.volprov.job.InMemoryJobStore;
import org.volprov.libvirt.LibvirtConfig;
import org.volprov.libvirt.LibvirtVolumeBackend;
import org.volprov.redis.RedisConfig;
import org.volprov.redis.RedisCoordination;
import org.volprov.s3.S3ImageSource;
import org.volprov.s3.S3SourceConfig;

/**
 * An engine process beside the test's own, for the scenarios with several engines on one host: it
 * runs one job and holds it at its first progress in a stage (the job's thread waits in a listener
 * and prints {@code HELD <job id>}) until a line arrives on its standard input, then prints
 * {@code ENDED <state> <code> <message>} once the job ends, and exits.
 *
 * <p>Arguments are {@code key=value}: endpoint, accessKey, secretKey, region, cacheDir, libvirtUri,
 * pool, imageUri, volume, size, holdAt (a stage); optionally redisUri, redisPrefix, redisHost and
 * redisLeaseMillis (volumes are then guarded through Redis), and qemuImg (the qemu-img to run). Its
 * job store is in memory: no other process sees its jobs.
 */
public final class EngineProcess {
    private EngineProcess() {
    }

    public static void main(String[] argv) throws Exception {
        Map<String, String> a = new HashMap<>();
        for (String arg : argv) {
            int eq = arg.indexOf('=');
            a.put(arg.substring(0, eq), arg.substring(eq + 1));
        }
        Stage holdAt = Stage.valueOf(a.get("holdAt"));
        AtomicBoolean held = new AtomicBoolean();
        BufferedReader stdin = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));

        Provisioner.Builder b = Provisioner.builder()
                .source(S3ImageSource.create(S3SourceConfig.builder().endpoint(URI.create(a.get("endpoint")))
                        .region(a.get("region")).credentials(a.get("accessKey"), a.get("secretKey")).build()))
                .cache(DiskImageCache.builder().directory(Path.of(a.get("cacheDir"))).maxBytes(8L << 30).build())
                .backend(LibvirtVolumeBackend.open(LibvirtConfig.builder().uri(a.get("libvirtUri"))
                        .poolName(a.get("pool")).build()))
                .jobStore(new InMemoryJobStore())
                .listener(e -> {
                    if (e.kind() == JobEvent.Kind.PROGRESS && e.job().stage() == holdAt && held.compareAndSet(false, true)) {
                        System.out.println("HELD " + e.job().id());
                        System.out.flush();
                        try {
                            stdin.readLine();
                        } catch (java.io.IOException ioe) {
                            throw new java.io.UncheckedIOException(ioe);
                        }
                    }
                });
        if (a.containsKey("redisUri")) {
            RedisCoordination redis = RedisCoordination.create(RedisConfig.builder().uri(a.get("redisUri"))
                    .keyPrefix(a.get("redisPrefix")).hostId(a.get("redisHost"))
                    .leaseTime(Duration.ofMillis(Long.parseLong(a.get("redisLeaseMillis")))).build());
            b.volumeGuard(redis.volumeGuard());
        }
        if (a.containsKey("qemuImg")) {
            b.converter(QemuImgConverter.builder().executable(a.get("qemuImg")).build());
        }
        Provisioner engine = b.build();
        String id = engine.submit(ProvisionRequest.builder().imageUri(a.get("imageUri")).volumeName(a.get("volume"))
                .volumeSizeBytes(Long.parseLong(a.get("size"))).format(ImageFormat.AUTO).build());
        System.out.println("SUBMITTED " + id);
        System.out.flush();
        Job job = engine.await(id, Duration.ofMinutes(10));
        System.out.println("ENDED " + job.state() + " " + (job.errorCode() == null ? "-" : job.errorCode()) + " "
                + job.errorMessage());
        System.out.flush();
        System.exit(0);
    }
}
