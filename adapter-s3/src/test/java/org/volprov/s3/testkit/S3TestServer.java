package org.volprov.s3.testkit;

import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Comparator;
import java.util.OptionalLong;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;
import org.gaul.s3proxy.AuthenticationType;
import org.gaul.s3proxy.S3Proxy;
import org.jclouds.ContextBuilder;
import org.jclouds.blobstore.BlobStore;
import org.jclouds.blobstore.BlobStoreContext;
import org.jclouds.blobstore.domain.Blob;
import org.jclouds.blobstore.domain.BlobMetadata;
import org.jclouds.blobstore.options.GetOptions;
import org.jclouds.blobstore.util.ForwardingBlobStore;
import org.testcontainers.DockerClientFactory;
import org.testcontainers.containers.MinIOContainer;
import org.volprov.testing.DockerEngine;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.core.checksums.RequestChecksumCalculation;
import software.amazon.awssdk.core.sync.RequestBody;
import software.amazon.awssdk.http.apache5.Apache5HttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.model.BucketAlreadyOwnedByYouException;
import software.amazon.awssdk.services.s3.model.S3Exception;

/**
 * A real S3 server for tests, resolved in this order and announced on stdout:
 * <ol>
 *   <li>{@code TEST_MINIO_ENDPOINT}, {@code TEST_MINIO_ACCESS_KEY}, {@code TEST_MINIO_SECRET_KEY};</li>
 *   <li>MinIO in a container ({@value #MINIO_IMAGE}) when a Docker engine answers;</li>
 *   <li>s3proxy in this JVM on 127.0.0.1, SigV4 with a fixed key pair, over a jclouds
 *       {@code filesystem} store in a temporary directory.</li>
 * </ol>
 * Objects are written through the S3 protocol with AWS SDK v2, whatever the server. Thread-safe.
 */
public final class S3TestServer implements AutoCloseable {
    public static final String MINIO_IMAGE = "minio/minio:RELEASE.2024-05-10T01-41-38Z";
    private static final String EMBEDDED_ACCESS_KEY = "volprov-test-access";
    private static final String EMBEDDED_SECRET_KEY = "volprov-test-secret-0123456789";

    private static S3TestServer shared;

    private final String kind;
    private final URI endpoint;
    private final String accessKey;
    private final String secretKey;
    private final AutoCloseable owned;
    private final Path tempDir;
    private final AtomicLong objectReads;
    private final S3Client client;
    private final AtomicBoolean closed = new AtomicBoolean();

    private S3TestServer(String kind, URI endpoint, String accessKey, String secretKey, AutoCloseable owned,
                         Path tempDir, AtomicLong objectReads) {
        this.kind = kind;
        this.endpoint = endpoint;
        this.accessKey = accessKey;
        this.secretKey = secretKey;
        this.owned = owned;
        this.tempDir = tempDir;
        this.objectReads = objectReads;
        this.client = S3Client.builder()
                .endpointOverride(endpoint)
                .region(Region.US_EAST_1)
                .forcePathStyle(true)
                .credentialsProvider(StaticCredentialsProvider.create(AwsBasicCredentials.create(accessKey, secretKey)))
                // The SDK's default CRC32 on every upload goes in a chunked trailer that s3proxy
                // cannot verify; the tests compare SHA-256 digests of what they read back instead.
                .requestChecksumCalculation(RequestChecksumCalculation.WHEN_REQUIRED)
                .httpClient(Apache5HttpClient.builder().socketTimeout(Duration.ofMinutes(5)).build())
                .build();
    }

    /** One server per JVM, started on first use and stopped when the JVM exits. */
    public static synchronized S3TestServer shared() {
        if (shared == null) {
            shared = start();
            S3TestServer s = shared;
            Runtime.getRuntime().addShutdownHook(new Thread(s::close, "s3-test-server-stop"));
        }
        return shared;
    }

    /** Starts (or connects to) a server following the resolution order above. */
    public static S3TestServer start() {
        String env = System.getenv("TEST_MINIO_ENDPOINT");
        if (env != null && !env.isBlank()) {
            String ak = required("TEST_MINIO_ACCESS_KEY");
            String sk = required("TEST_MINIO_SECRET_KEY");
            announce("TEST_MINIO_ENDPOINT", env);
            return new S3TestServer("env", URI.create(env), ak, sk, null, null, null);
        }
        if (dockerAvailable()) {
            MinIOContainer minio = new MinIOContainer(MINIO_IMAGE);
            minio.start();
            announce("testcontainers " + MINIO_IMAGE, minio.getS3URL());
            return new S3TestServer("testcontainers", URI.create(minio.getS3URL()), minio.getUserName(),
                    minio.getPassword(), minio::stop, null, null);
        }
        return startEmbedded();
    }

    private static boolean dockerAvailable() {
        return DockerEngine.available(() -> DockerClientFactory.instance().isDockerAvailable());
    }

    /**
     * A server of its own (s3proxy in this JVM, whatever the resolution order gives otherwise) that
     * ignores the conditions of a GET ({@code If-Match}, {@code If-None-Match},
     * {@code If-(Un)Modified-Since}) and serves whatever version it holds: what an S3-compatible
     * server without conditional reads, or a cache in front of one, does. The caller closes it.
     */
    public static S3TestServer startIgnoringConditions() {
        return startEmbedded(true);
    }

    private static S3TestServer startEmbedded() {
        return startEmbedded(false);
    }

    private static S3TestServer startEmbedded(boolean ignoreConditions) {
        Path dir = null;
        try {
            dir = Files.createTempDirectory("volprov-s3proxy-");
            Properties props = new Properties();
            props.setProperty("jclouds.filesystem.basedir", dir.toString());
            BlobStoreContext ctx = ContextBuilder.newBuilder("filesystem")
                    .credentials("unused", "unused")
                    .overrides(props)
                    .buildView(BlobStoreContext.class);
            AtomicLong reads = new AtomicLong();
            BlobStore counting = new CountingBlobStore(ctx.getBlobStore(), reads, ignoreConditions);
            S3Proxy proxy = S3Proxy.builder()
                    .blobStore(counting)
                    .endpoint(URI.create("http://127.0.0.1:0"))
                    .awsAuthentication(AuthenticationType.AWS_V2_OR_V4, EMBEDDED_ACCESS_KEY, EMBEDDED_SECRET_KEY)
                    .build();
            proxy.start();
            long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (!"STARTED".equals(proxy.getState())) {
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException("s3proxy did not start within 30 s: " + proxy.getState());
                }
                Thread.onSpinWait();
            }
            URI endpoint = URI.create("http://127.0.0.1:" + proxy.getPort());
            announce("embedded s3proxy (filesystem store in " + dir + ")"
                    + (ignoreConditions ? ", ignoring the conditions of reads" : ""), endpoint.toString());
            AutoCloseable owned = () -> {
                try {
                    proxy.stop();
                } finally {
                    ctx.close();
                }
            };
            return new S3TestServer("s3proxy", endpoint, EMBEDDED_ACCESS_KEY, EMBEDDED_SECRET_KEY, owned, dir, reads);
        } catch (Exception e) {
            if (dir != null) {
                deleteTree(dir);
            }
            throw new IllegalStateException("cannot start embedded s3proxy", e);
        }
    }

    private static String required(String name) {
        String v = System.getenv(name);
        if (v == null || v.isBlank()) {
            throw new IllegalStateException(name + " must be set when TEST_MINIO_ENDPOINT is");
        }
        return v;
    }

    private static void announce(String kind, String endpoint) {
        System.out.println("[S3TestServer] using " + kind + " at " + endpoint);
    }

    /** {@code env}, {@code testcontainers} or {@code s3proxy}. */
    public String kind() {
        return kind;
    }

    public URI endpoint() {
        return endpoint;
    }

    public String accessKey() {
        return accessKey;
    }

    public String secretKey() {
        return secretKey;
    }

    public String region() {
        return "us-east-1";
    }

    /**
     * Object reads (GET and HEAD of objects) the server has served, when it can count them (the
     * embedded server); empty otherwise.
     */
    public OptionalLong objectRequestCount() {
        return objectReads == null ? OptionalLong.empty() : OptionalLong.of(objectReads.get());
    }

    /** Creates {@code bucket} unless it exists. */
    public void createBucket(String bucket) {
        try {
            client.createBucket(b -> b.bucket(bucket));
        } catch (BucketAlreadyOwnedByYouException e) {
            // Shared servers keep buckets between runs.
        } catch (S3Exception e) {
            if (e.statusCode() != 409) {
                throw e;
            }
        }
    }

    public void put(String bucket, String key, byte[] content) {
        client.putObject(b -> b.bucket(bucket).key(key), RequestBody.fromBytes(content));
    }

    public void put(String bucket, String key, Path file) {
        client.putObject(b -> b.bucket(bucket).key(key), RequestBody.fromFile(file));
    }

    public void delete(String bucket, String key) {
        client.deleteObject(b -> b.bucket(bucket).key(key));
    }

    /** A unique, valid bucket name with {@code prefix}. */
    public static String uniqueBucket(String prefix) {
        return prefix + "-" + Long.toHexString(System.nanoTime()) + "-" + Long.toHexString(Double.doubleToLongBits(Math.random()) & 0xffff);
    }

    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) {
            return;
        }
        client.close();
        if (owned != null) {
            try {
                owned.close();
            } catch (Exception e) {
                System.err.println("[S3TestServer] stop failed: " + e);
            }
        }
        if (tempDir != null) {
            deleteTree(tempDir);
        }
    }

    @Override
    public String toString() {
        return "S3TestServer[" + kind + " " + endpoint + "]";
    }

    private static void deleteTree(Path dir) {
        try (Stream<Path> s = Files.walk(dir)) {
            s.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (Exception ignored) {
            // best effort: a temp dir
        }
    }

    /** Counts object reads on their way to the filesystem store; drops their conditions when told to. */
    private static final class CountingBlobStore extends ForwardingBlobStore {
        private final AtomicLong reads;
        private final boolean ignoreConditions;

        CountingBlobStore(BlobStore delegate, AtomicLong reads, boolean ignoreConditions) {
            super(delegate);
            this.reads = reads;
            this.ignoreConditions = ignoreConditions;
        }

        @Override
        public Blob getBlob(String container, String name) {
            reads.incrementAndGet();
            return super.getBlob(container, name);
        }

        @Override
        public Blob getBlob(String container, String name, GetOptions options) {
            reads.incrementAndGet();
            return super.getBlob(container, name, ignoreConditions ? rangesOnly(options) : options);
        }

        @Override
        public BlobMetadata blobMetadata(String container, String name) {
            reads.incrementAndGet();
            return super.blobMetadata(container, name);
        }

        /** The same ranges, no conditions. jclouds keeps ranges as "a-b", "a-" and "-n". */
        private static GetOptions rangesOnly(GetOptions options) {
            GetOptions copy = new GetOptions();
            for (String r : options.getRanges()) {
                int dash = r.indexOf('-');
                String from = r.substring(0, dash);
                String to = r.substring(dash + 1);
                if (from.isEmpty()) {
                    copy.tail(Long.parseLong(to));
                } else if (to.isEmpty()) {
                    copy.startAt(Long.parseLong(from));
                } else {
                    copy.range(Long.parseLong(from), Long.parseLong(to));
                }
            }
            return copy;
        }
    }
}
