package org.volprov.s3;

import java.io.InputStream;
import java.net.URI;
import java.time.Instant;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicBoolean;
import javax.net.ssl.TrustManager;
import org.volprov.ImageRef;
import org.volprov.source.ImageSource;
import org.volprov.source.ObjectInfo;
import org.volprov.source.ObjectStoreReads;
import org.volprov.source.ObjectStoreReplies;
import org.volprov.source.PublishedChecksum;
import org.volprov.support.PemTrust;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.AwsCredentialsProvider;
import software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.awscore.retry.AwsRetryStrategy;
import software.amazon.awssdk.core.ResponseInputStream;
import software.amazon.awssdk.core.checksums.RequestChecksumCalculation;
import software.amazon.awssdk.core.checksums.ResponseChecksumValidation;
import software.amazon.awssdk.core.client.config.ClientOverrideConfiguration;
import software.amazon.awssdk.http.SdkHttpClient;
import software.amazon.awssdk.http.SdkHttpConfigurationOption;
import software.amazon.awssdk.http.apache5.Apache5HttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.S3ClientBuilder;
import software.amazon.awssdk.services.s3.S3Configuration;
import software.amazon.awssdk.services.s3.model.GetObjectRequest;
import software.amazon.awssdk.services.s3.model.GetObjectResponse;
import software.amazon.awssdk.services.s3.model.HeadObjectResponse;
import software.amazon.awssdk.utils.AttributeMap;

/**
 * An {@link ImageSource} on AWS SDK for Java v2: AWS S3 itself, or any S3-compatible server
 * (MinIO, Ceph RGW, s3proxy...) through an endpoint override and path-style addressing.
 *
 * <p>Thread-safe; one instance holds one connection pool and is shared by all jobs. The SDK's own
 * retries are off: the engine retries {@code SOURCE_UNAVAILABLE} with backoff and resumes downloads
 * at the last written byte, and two retry loops stacked would multiply the wait on an outage.
 */
public final class S3ImageSource implements ImageSource {
    /** Names the server in messages. */
    static final String SERVER = "S3";

    private final S3SourceConfig config;
    private final SdkHttpClient httpClient;
    private final S3Client client;
    private final AtomicBoolean closed = new AtomicBoolean();

    private S3ImageSource(S3SourceConfig config) {
        this.config = config;
        this.httpClient = buildHttpClient(config);
        try {
            this.client = buildClient(config, httpClient);
        } catch (RuntimeException e) {
            httpClient.close();
            throw e;
        }
    }

    /** Creates a source; no request is made until the first call. */
    public static S3ImageSource create(S3SourceConfig config) {
        return new S3ImageSource(Objects.requireNonNull(config, "config"));
    }

    public S3SourceConfig config() {
        return config;
    }

    @Override
    public ObjectInfo stat(ImageRef ref) {
        checkOpen();
        HeadObjectResponse head;
        try {
            head = client.headObject(b -> b.bucket(ref.bucket()).key(ref.key()));
        } catch (RuntimeException e) {
            throw S3Errors.translate("reading metadata of", ref, e);
        }
        return new ObjectInfo(ObjectStoreReplies.statedSize(SERVER, ref, head.contentLength()),
                ObjectStoreReplies.statedEtag(SERVER, ref, head.eTag()),
                head.lastModified() == null ? Instant.EPOCH : head.lastModified());
    }

    @Override
    public Optional<String> publishedChecksum(ImageRef ref) {
        checkOpen();
        ImageRef sibling = ref.checksumSibling();
        return ObjectStoreReads.publishedChecksum(sibling, () -> {
            try (ResponseInputStream<GetObjectResponse> in =
                         client.getObject(b -> b.bucket(sibling.bucket()).key(sibling.key()))) {
                try {
                    return in.readNBytes(PublishedChecksum.MAX_SIBLING_BYTES + 1);
                } finally {
                    in.abort();
                }
            }
        }, e -> S3Errors.translate("reading", sibling, e));
    }

    /**
     * A ranged GET with {@code If-Match}: S3 answers 412 when the object is no longer that version.
     * The ETag and range of the answer are checked as well, so a server (or a cache in front of it)
     * that ignores the condition or the range cannot hand over another version's bytes.
     */
    @Override
    public InputStream open(ImageRef ref, String etag, long offset, long length) {
        ObjectStoreReads.checkRangeArguments(ref, etag, offset, length);
        checkOpen();
        if (length == 0) {
            return InputStream.nullInputStream();
        }
        String what = ObjectStoreReads.describeRange(ref, offset, length);
        ResponseInputStream<GetObjectResponse> in;
        try {
            in = client.getObject(GetObjectRequest.builder().bucket(ref.bucket()).key(ref.key())
                    .range(ObjectStoreReads.rangeHeader(offset, length))
                    .ifMatch(ObjectStoreReplies.ifMatch(etag)).build());
        } catch (RuntimeException e) {
            throw S3Errors.translate("reading", what, e);
        }
        GetObjectResponse response = in.response();
        return ObjectStoreReads.checkedRange(SERVER, what, etag, offset, length, response.eTag(),
                response.contentRange(), response.contentLength(), in, in::abort);
    }

    /** The configured endpoint: http(s) image URIs must name its host and port. Empty for AWS. */
    @Override
    public Optional<URI> endpoint() {
        return config.endpoint();
    }

    @Override
    public void close() {
        if (closed.compareAndSet(false, true)) {
            // The SDK does not close an HTTP client it was handed, so both are closed here.
            try {
                client.close();
            } finally {
                httpClient.close();
            }
        }
    }

    @Override
    public String toString() {
        return "S3ImageSource[" + config + "]";
    }

    private void checkOpen() {
        if (closed.get()) {
            throw new IllegalStateException("S3ImageSource is closed");
        }
    }

    private static SdkHttpClient buildHttpClient(S3SourceConfig config) {
        Apache5HttpClient.Builder http = Apache5HttpClient.builder()
                .connectionTimeout(config.connectTimeout())
                .socketTimeout(config.readTimeout())
                .maxConnections(config.maxConnections());
        switch (config.trustMode()) {
            case CA_FILE -> {
                TrustManager[] managers = PemTrust.trustManagers(config.caFile().orElseThrow());
                return http.tlsTrustManagersProvider(() -> managers).build();
            }
            case TRUST_ALL -> {
                return http.buildWithDefaults(AttributeMap.builder()
                        .put(SdkHttpConfigurationOption.TRUST_ALL_CERTIFICATES, Boolean.TRUE).build());
            }
            default -> {
                return http.build();
            }
        }
    }

    private static S3Client buildClient(S3SourceConfig config, SdkHttpClient httpClient) {
        AwsCredentialsProvider credentials = config.hasStaticCredentials()
                ? StaticCredentialsProvider.create(AwsBasicCredentials.create(
                        config.accessKey().orElseThrow(), config.secretKey().orElseThrow()))
                : DefaultCredentialsProvider.builder().build();
        S3ClientBuilder builder = S3Client.builder()
                .httpClient(httpClient)
                .region(Region.of(config.region()))
                .credentialsProvider(credentials)
                // The engine verifies SHA-256 end to end; the SDK's own checksums ask for headers
                // that some S3-compatible servers refuse, and never cover ranges.
                .requestChecksumCalculation(RequestChecksumCalculation.WHEN_REQUIRED)
                .responseChecksumValidation(ResponseChecksumValidation.WHEN_REQUIRED)
                .serviceConfiguration(S3Configuration.builder()
                        .pathStyleAccessEnabled(config.pathStyle())
                        .build())
                .overrideConfiguration(ClientOverrideConfiguration.builder()
                        .retryStrategy(AwsRetryStrategy.doNotRetry())
                        .build());
        config.endpoint().ifPresent(builder::endpointOverride);
        return builder.build();
    }
}
