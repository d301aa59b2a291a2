package org.volprov.benchmarks;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import org.volprov.ImageRef;
import org.volprov.minio.MinioImageSource;
import org.volprov.minio.MinioSourceConfig;
import org.volprov.s3.S3ImageSource;
import org.volprov.s3.S3SourceConfig;
import org.volprov.s3.testkit.S3TestServer;
import org.volprov.source.ImageSource;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.core.checksums.RequestChecksumCalculation;
import software.amazon.awssdk.core.checksums.ResponseChecksumValidation;
import software.amazon.awssdk.http.apache5.Apache5HttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.S3Configuration;

/**
 * What the benchmarks read: the {@link Images} on local disk, and the same object and image in an
 * S3 server on loopback, each with its {@code .sha256} sibling.
 *
 * <p>The runner script starts one server for the whole run ({@link BenchServer}), so that every
 * JMH fork and {@code curl} read from the same process, and names its {@code server.properties}
 * in {@code VOLPROV_BENCH_FIXTURE}. Without it (a plain {@code java -jar benchmarks.jar}), each
 * trial starts an embedded server of its own, uploads the objects, and stops it on
 * {@link #close()}: a JMH fork exits only once the server's threads are gone.
 *
 * <p>Scratch files go under the work directory: {@code VOLPROV_BENCH_WORK} (or the system
 * property {@code volprov.bench.work}), else the directory of the fixture file, else
 * {@code volprov-bench} in the JVM's temp directory. Put it on the disk being measured.
 */
public final class Fixture implements AutoCloseable {
    static final String FIXTURE_ENV = "VOLPROV_BENCH_FIXTURE";
    static final String WORK_ENV = "VOLPROV_BENCH_WORK";
    /** {@code host:port} of the link shaped to 1 Gbit/s in front of the runner's server. */
    static final String SHAPED_ENV = "VOLPROV_BENCH_SHAPED_LINK";
    static final String BUCKET = "volprov-bench";
    static final String OBJECT_KEY = "object.bin";
    static final String IMAGE_KEY = "random.qcow2";
    private final Images images;
    private final URI endpoint;
    private final String accessKey;
    private final String secretKey;
    private final String region;
    private final S3TestServer ownServer;

    private Fixture(Images images, URI endpoint, String accessKey, String secretKey, String region,
            S3TestServer ownServer) {
        this.images = images;
        this.endpoint = endpoint;
        this.accessKey = accessKey;
        this.secretKey = secretKey;
        this.region = region;
        this.ownServer = ownServer;
    }

    /**
     * The fixture for objects of {@code sizeMiB}: the runner's server when one is named, else one
     * started in this JVM for the caller, who closes the fixture.
     *
     * @throws IllegalStateException when the runner's server holds objects of another size
     */
    public static synchronized Fixture obtain(int sizeMiB) {
        String file = setting("volprov.bench.fixture", FIXTURE_ENV);
        if (file != null) {
            Fixture f = load(Path.of(file));
            if (f.images.size() != (long) sizeMiB << 20) {
                throw new IllegalStateException("the server in " + file + " holds objects of "
                        + (f.images.size() >> 20) + " MiB, the benchmark asks for " + sizeMiB
                        + " MiB: run with -p sizeMiB=" + (f.images.size() >> 20));
            }
            return f;
        }
        return startInProcess(sizeMiB);
    }

    /** Only the local images of {@code sizeMiB}, for benchmarks that need no server. */
    public static synchronized Images images(int sizeMiB) {
        String file = setting("volprov.bench.fixture", FIXTURE_ENV);
        return file != null ? obtain(sizeMiB).images()
                : Images.prepare(workRoot().resolve("images-" + sizeMiB), sizeMiB);
    }

    private static Fixture startInProcess(int sizeMiB) {
        Images images = Images.prepare(workRoot().resolve("images-" + sizeMiB), sizeMiB);
        S3TestServer server = S3TestServer.start();
        try {
            publish(server, images);
        } catch (RuntimeException e) {
            server.close();
            throw e;
        }
        return new Fixture(images, server.endpoint(), server.accessKey(), server.secretKey(), server.region(), server);
    }

    /** Creates the bucket and uploads the object and the image with their {@code .sha256} siblings. */
    static void publish(S3TestServer server, Images images) {
        server.createBucket(BUCKET);
        server.put(BUCKET, OBJECT_KEY, images.object());
        server.put(BUCKET, OBJECT_KEY + ".sha256", sibling(images.objectSha256(), OBJECT_KEY));
        server.put(BUCKET, IMAGE_KEY, images.image());
        server.put(BUCKET, IMAGE_KEY + ".sha256", sibling(images.imageSha256(), IMAGE_KEY));
    }

    private static byte[] sibling(String sha256, String name) {
        return (sha256 + "  " + name + "\n").getBytes(StandardCharsets.US_ASCII);
    }

    /** What {@link #load} reads back: where the server is, and where its images are. */
    static Map<String, String> describe(S3TestServer server, Images images) {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("server", server.kind());
        m.put("endpoint", server.endpoint().toString());
        m.put("accessKey", server.accessKey());
        m.put("secretKey", server.secretKey());
        m.put("region", server.region());
        m.put("images", images.dir().toAbsolutePath().toString());
        m.put("sizeMiB", Long.toString(images.size() >> 20));
        return m;
    }

    static Fixture load(Path file) {
        Map<String, String> m = KeyValues.read(file);
        int sizeMiB = Integer.parseInt(KeyValues.require(m, "sizeMiB", file));
        Images images = Images.prepare(Path.of(KeyValues.require(m, "images", file)), sizeMiB);
        return new Fixture(images, URI.create(KeyValues.require(m, "endpoint", file)),
                KeyValues.require(m, "accessKey", file), KeyValues.require(m, "secretKey", file),
                KeyValues.require(m, "region", file), null);
    }

    /** Stops the server this fixture started in this JVM, if it did; the runner's server stays. */
    @Override
    public void close() {
        if (ownServer != null) {
            ownServer.close();
        }
    }

    public Images images() {
        return images;
    }

    public ImageRef objectRef() {
        return new ImageRef(BUCKET, OBJECT_KEY);
    }

    public ImageRef imageRef() {
        return new ImageRef(BUCKET, IMAGE_KEY);
    }

    /** A source on one of the adapters: {@code s3} (AWS SDK v2) or {@code minio} (MinIO SDK). */
    public ImageSource source(String adapter) {
        return source(adapter, endpoint);
    }

    /**
     * The same, reading the server across the shaped link named in {@value #SHAPED_ENV}.
     *
     * @throws IllegalStateException when no shaped link is named
     */
    public ImageSource shapedSource(String adapter) {
        String link = setting("volprov.bench.shaped.link", SHAPED_ENV);
        if (link == null) {
            throw new IllegalStateException("no shaped link: scripts/bench.sh makes one (root, tc, socat) and names it in "
                    + SHAPED_ENV);
        }
        return source(adapter, URI.create("http://" + link));
    }

    private ImageSource source(String adapter, URI at) {
        return switch (adapter) {
            case "s3" -> S3ImageSource.create(S3SourceConfig.builder()
                    .endpoint(at)
                    .region(region)
                    .credentials(accessKey, secretKey)
                    .readTimeout(Duration.ofMinutes(5))
                    .build());
            case "minio" -> MinioImageSource.create(MinioSourceConfig.builder()
                    .endpoint(at)
                    .region(region)
                    .credentials(accessKey, secretKey)
                    .readTimeout(Duration.ofMinutes(5))
                    .build());
            default -> throw new IllegalArgumentException("no adapter " + adapter + "; use s3 or minio");
        };
    }

    /**
     * A plain AWS SDK client, as a program without this library would make one: for the reference
     * sequence. The SDK's own checksums are off, as in the adapter, so both read the same bytes the
     * same way (and s3proxy refuses the CRC32 header the SDK would add to every GET).
     */
    public S3Client plainClient() {
        return S3Client.builder()
                .endpointOverride(endpoint)
                .region(Region.of(region))
                .credentialsProvider(StaticCredentialsProvider.create(AwsBasicCredentials.create(accessKey, secretKey)))
                .serviceConfiguration(S3Configuration.builder().pathStyleAccessEnabled(true).build())
                .requestChecksumCalculation(RequestChecksumCalculation.WHEN_REQUIRED)
                .responseChecksumValidation(ResponseChecksumValidation.WHEN_REQUIRED)
                .httpClient(Apache5HttpClient.builder().socketTimeout(Duration.ofMinutes(5)).build())
                .build();
    }

    /** An empty directory {@code name} under the work directory, for one benchmark's files. */
    public static Path scratch(String name) {
        Path dir = workRoot().resolve("scratch").resolve(name);
        try {
            Images.deleteTree(dir);
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot prepare " + dir, e);
        }
        return dir.toAbsolutePath();
    }

    /** Removes a scratch directory; failures only leave files behind, so they are not fatal. */
    public static void discard(Path dir) {
        try {
            Images.deleteTree(dir);
        } catch (IOException e) {
            System.err.println("[bench] cannot remove " + dir + ": " + e);
        }
    }

    static Path workRoot() {
        String work = setting("volprov.bench.work", WORK_ENV);
        if (work != null) {
            return Path.of(work).toAbsolutePath();
        }
        String file = setting("volprov.bench.fixture", FIXTURE_ENV);
        if (file != null) {
            return Path.of(file).toAbsolutePath().getParent();
        }
        return Path.of(System.getProperty("java.io.tmpdir"), "volprov-bench").toAbsolutePath();
    }

    private static String setting(String property, String env) {
        String v = System.getProperty(property);
        if (v == null || v.isBlank()) {
            v = System.getenv(env);
        }
        return v == null || v.isBlank() ? null : v;
    }
}
