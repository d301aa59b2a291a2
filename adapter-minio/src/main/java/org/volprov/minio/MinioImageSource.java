package org.volprov.minio;

import io.minio.GetObjectArgs;
import io.minio.GetObjectResponse;
import io.minio.MinioClient;
import io.minio.StatObjectArgs;
import io.minio.StatObjectResponse;
import io.minio.credentials.AwsEnvironmentProvider;
import io.minio.credentials.ChainedProvider;
import io.minio.credentials.MinioEnvironmentProvider;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.security.GeneralSecurityException;
import java.security.cert.X509Certificate;
import java.time.Instant;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManager;
import javax.net.ssl.X509TrustManager;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Response;
import okhttp3.ResponseBody;
import okio.Buffer;
import okio.BufferedSource;
import okio.ForwardingSource;
import okio.Okio;
import org.volprov.ErrorCode;
import org.volprov.ImageRef;
import org.volprov.ProvisioningException;
import org.volprov.source.ImageSource;
import org.volprov.source.ObjectInfo;
import org.volprov.source.ObjectStoreReads;
import org.volprov.source.ObjectStoreReplies;
import org.volprov.source.PublishedChecksum;
import org.volprov.support.PemTrust;

/**
 * An {@link ImageSource} on the MinIO Java SDK, for MinIO and other S3-compatible servers.
 *
 * <p>Thread-safe; one instance holds one OkHttp connection pool shared by all jobs. Retries are left
 * to the engine, which retries {@code SOURCE_UNAVAILABLE} with backoff and resumes downloads at the
 * last written byte.
 */
public final class MinioImageSource implements ImageSource {
    /** Names the server in messages. */
    static final String SERVER = "MinIO";

    private final MinioSourceConfig config;
    private final OkHttpClient http;
    private final MinioClient client;
    private final AtomicBoolean closed = new AtomicBoolean();

    private MinioImageSource(MinioSourceConfig config) {
        this.config = config;
        this.http = buildHttpClient(config);
        MinioClient.Builder b = MinioClient.builder()
                .endpoint(config.endpoint().orElseThrow().toString())
                .region(config.region())
                .httpClient(http);
        if (config.hasStaticCredentials()) {
            b.credentials(config.accessKey().orElseThrow(), config.secretKey().orElseThrow());
        } else {
            b.credentialsProvider(new ChainedProvider(new MinioEnvironmentProvider(), new AwsEnvironmentProvider()));
        }
        this.client = b.build();
    }

    /** Creates a source; no request is made until the first call. */
    public static MinioImageSource create(MinioSourceConfig config) {
        return new MinioImageSource(Objects.requireNonNull(config, "config"));
    }

    public MinioSourceConfig config() {
        return config;
    }

    @Override
    public ObjectInfo stat(ImageRef ref) {
        checkOpen();
        StatObjectResponse s;
        try {
            s = client.statObject(StatObjectArgs.builder().bucket(ref.bucket()).object(ref.key()).build());
        } catch (Exception e) {
            throw MinioErrors.translate("reading metadata of", ref, e);
        }
        // From the headers: the SDK's size() turns a missing Content-Length into -1.
        return new ObjectInfo(ObjectStoreReplies.statedSize(SERVER, ref, s.headers().get("Content-Length")),
                ObjectStoreReplies.statedEtag(SERVER, ref, s.headers().get("ETag")),
                s.lastModified() == null ? Instant.EPOCH : s.lastModified().toInstant());
    }

    @Override
    public Optional<String> publishedChecksum(ImageRef ref) {
        checkOpen();
        ImageRef sibling = ref.checksumSibling();
        return ObjectStoreReads.publishedChecksum(sibling, () -> {
            try (GetObjectResponse in = client.getObject(
                    GetObjectArgs.builder().bucket(sibling.bucket()).object(sibling.key()).build())) {
                return in.readNBytes(PublishedChecksum.MAX_SIBLING_BYTES + 1);
            }
        }, e -> MinioErrors.translate("reading", sibling, e));
    }

    /**
     * A ranged GET with {@code If-Match} ({@code matchETag}): the server answers 412 when the object
     * is no longer that version. The ETag and range of the answer are checked as well, so a server
     * (or a cache in front of it) that ignores the condition or the range cannot hand over another
     * version's bytes.
     */
    @Override
    public InputStream open(ImageRef ref, String etag, long offset, long length) {
        ObjectStoreReads.checkRangeArguments(ref, etag, offset, length);
        checkOpen();
        if (length == 0) {
            return InputStream.nullInputStream();
        }
        String what = ObjectStoreReads.describeRange(ref, offset, length);
        GetObjectResponse in;
        try {
            in = client.getObject(GetObjectArgs.builder().bucket(ref.bucket()).object(ref.key())
                    .offset(offset).length(length).matchETag(ObjectStoreReplies.ifMatch(etag)).build());
        } catch (Exception e) {
            throw MinioErrors.translate("reading", what, e);
        }
        // Closing the body early cancels the call (see AbortOnEarlyClose).
        return ObjectStoreReads.checkedRange(SERVER, what, etag, offset, length, in.headers().get("ETag"),
                in.headers().get("Content-Range"), ObjectStoreReads.lengthHeader(in.headers().get("Content-Length")),
                in, () -> closeQuietly(in));
    }

    /** The configured endpoint: http(s) image URIs must name its host and port. */
    @Override
    public Optional<URI> endpoint() {
        return config.endpoint();
    }

    @Override
    public void close() {
        if (closed.compareAndSet(false, true)) {
            http.dispatcher().executorService().shutdown();
            http.connectionPool().evictAll();
        }
    }

    @Override
    public String toString() {
        return "MinioImageSource[" + config + "]";
    }

    private void checkOpen() {
        if (closed.get()) {
            throw new IllegalStateException("MinioImageSource is closed");
        }
    }

    private static void closeQuietly(InputStream in) {
        try {
            in.close();
        } catch (IOException ignored) {
            // the request failed already; the connection is dropped with the body
        }
    }

    private static OkHttpClient buildHttpClient(MinioSourceConfig config) {
        OkHttpClient.Builder b = new OkHttpClient.Builder()
                .connectTimeout(config.connectTimeout().toMillis(), TimeUnit.MILLISECONDS)
                .readTimeout(config.readTimeout().toMillis(), TimeUnit.MILLISECONDS)
                .writeTimeout(config.readTimeout().toMillis(), TimeUnit.MILLISECONDS)
                .addNetworkInterceptor(chain -> AbortOnEarlyClose.wrap(chain.proceed(chain.request()), chain.call()));
        try {
            switch (config.trustMode()) {
                case CA_FILE -> {
                    TrustManager[] managers = PemTrust.trustManagers(config.caFile().orElseThrow());
                    X509TrustManager tm = (X509TrustManager) managers[0];
                    SSLContext ctx = SSLContext.getInstance("TLS");
                    ctx.init(null, managers, null);
                    b.sslSocketFactory(ctx.getSocketFactory(), tm);
                }
                case TRUST_ALL -> {
                    X509TrustManager all = new TrustAll();
                    SSLContext ctx = SSLContext.getInstance("TLS");
                    ctx.init(null, new TrustManager[] {all}, null);
                    b.sslSocketFactory(ctx.getSocketFactory(), all).hostnameVerifier((host, session) -> true);
                }
                default -> {
                    // OkHttp's default: the JVM trust store.
                }
            }
        } catch (GeneralSecurityException e) {
            throw new ProvisioningException(ErrorCode.INVALID_REQUEST, "trust: cannot set up TLS: " + e.getMessage(), e);
        }
        return b.build();
    }

    /** Accepts every certificate; only reachable through {@code trustAllCertificates()}. */
    private static final class TrustAll implements X509TrustManager {
        @Override
        public void checkClientTrusted(X509Certificate[] chain, String authType) {
        }

        @Override
        public void checkServerTrusted(X509Certificate[] chain, String authType) {
        }

        @Override
        public X509Certificate[] getAcceptedIssuers() {
            return new X509Certificate[0];
        }
    }

    /**
     * OkHttp drains an unfinished body for up to 100 ms on close to reuse the connection; on loopback
     * that is tens of MiB read for nothing when a caller abandons a large range. This body cancels the
     * call instead when it is closed before its last byte.
     */
    static final class AbortOnEarlyClose extends ResponseBody {
        private final ResponseBody delegate;
        private final okhttp3.Call call;
        private final BufferedSource source;
        private long read;
        private boolean exhausted;

        private AbortOnEarlyClose(ResponseBody delegate, okhttp3.Call call) {
            this.delegate = delegate;
            this.call = call;
            this.source = Okio.buffer(new ForwardingSource(delegate.source()) {
                @Override
                public long read(Buffer sink, long byteCount) throws IOException {
                    long n = super.read(sink, byteCount);
                    if (n < 0) {
                        exhausted = true;
                    } else {
                        read += n;
                        if (delegate.contentLength() >= 0 && read >= delegate.contentLength()) {
                            exhausted = true;
                        }
                    }
                    return n;
                }

                @Override
                public void close() throws IOException {
                    if (!exhausted) {
                        call.cancel();
                    }
                    super.close();
                }
            });
        }

        static Response wrap(Response response, okhttp3.Call call) {
            ResponseBody body = response.body();
            if (body == null || !"GET".equals(response.request().method())) {
                return response;
            }
            return response.newBuilder().body(new AbortOnEarlyClose(body, call)).build();
        }

        @Override
        public MediaType contentType() {
            return delegate.contentType();
        }

        @Override
        public long contentLength() {
            return delegate.contentLength();
        }

        @Override
        public BufferedSource source() {
            return source;
        }
    }
}
