package org.volprov.benchmarks;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.volprov.s3.testkit.S3TestServer;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.s3.S3Configuration;
import software.amazon.awssdk.services.s3.presigner.S3Presigner;

/**
 * The S3 server of one benchmark run, in a process of its own so that the JMH forks and
 * {@code curl} read the same objects from the same server:
 * {@code java -cp benchmarks.jar org.volprov.benchmarks.BenchServer <workDir> <sizeMiB>}.
 *
 * <p>Makes (or reuses) the images in {@code <workDir>/images-<sizeMiB>}, starts the server,
 * uploads them, then writes {@code <workDir>/server.properties}: the fixture the benchmarks load,
 * plus {@code objectUrl} and {@code imageUrl}, presigned GET URLs for {@code curl} (s3proxy
 * checks SigV4 signatures). Runs until it is killed; the server's store is removed on exit.
 */
public final class BenchServer {
    private BenchServer() {
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: BenchServer <workDir> <sizeMiB>");
            System.exit(2);
        }
        S3TestServer server = start(Path.of(args[0]), Integer.parseInt(args[1]));
        Runtime.getRuntime().addShutdownHook(new Thread(server::close, "bench-server-stop"));
        Thread.currentThread().join(); // serves until the runner kills this process
    }

    /**
     * Makes or reuses the images, starts the server, uploads them and writes
     * {@code <work>/server.properties}. The caller stops the server.
     */
    static S3TestServer start(Path work, int sizeMiB) throws IOException {
        work = work.toAbsolutePath();
        Files.createDirectories(work);
        Path out = work.resolve("server.properties");
        Files.deleteIfExists(out);

        long t0 = System.nanoTime();
        Images images = Images.prepare(work.resolve("images-" + sizeMiB), sizeMiB);
        System.out.printf("[bench-server] images of %d MiB ready in %s (%.0f s)%n", sizeMiB, images.dir(),
                (System.nanoTime() - t0) / 1e9);
        S3TestServer server = S3TestServer.start();
        try {
            t0 = System.nanoTime();
            Fixture.publish(server, images);
            System.out.printf("[bench-server] objects uploaded (%.0f s)%n", (System.nanoTime() - t0) / 1e9);
            Map<String, String> m = Fixture.describe(server, images);
            try (S3Presigner presigner = S3Presigner.builder()
                    .endpointOverride(server.endpoint())
                    .region(Region.of(server.region()))
                    .credentialsProvider(StaticCredentialsProvider.create(
                            AwsBasicCredentials.create(server.accessKey(), server.secretKey())))
                    .serviceConfiguration(S3Configuration.builder().pathStyleAccessEnabled(true).build())
                    .build()) {
                m.put("objectUrl", presign(presigner, Fixture.OBJECT_KEY));
                m.put("imageUrl", presign(presigner, Fixture.IMAGE_KEY));
            }
            KeyValues.write(out, m);
        } catch (RuntimeException e) {
            server.close();
            throw e;
        }
        System.out.println("[bench-server] ready: " + out);
        return server;
    }

    private static String presign(S3Presigner presigner, String key) {
        return presigner.presignGetObject(r -> r.signatureDuration(Duration.ofHours(12))
                .getObjectRequest(g -> g.bucket(Fixture.BUCKET).key(key))).url().toString();
    }
}
