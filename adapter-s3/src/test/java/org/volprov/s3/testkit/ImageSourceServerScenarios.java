package org.volprov.s3.testkit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.OptionalLong;
import java.util.Random;
import org.assertj.core.api.ThrowableAssert.ThrowingCallable;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.volprov.ErrorCode;
import org.volprov.ImageRef;
import org.volprov.ProvisioningException;
import org.volprov.source.ImageSource;

/**
 * Scenarios every S3-backed {@link ImageSource} runs against a real server ({@link S3TestServer}),
 * on top of core's {@code ImageSourceContract}: error mapping, outages and dropped connections
 * through a {@link FaultProxy}, resume at an offset, edge sizes, and a throughput figure.
 *
 * <p>The hang guards ({@code assertTimeoutPreemptively}) are generous bounds that only catch a read
 * that never ends; they are not performance assertions.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
public abstract class ImageSourceServerScenarios {
    /** Generous bound that only a hang exceeds. */
    protected static final Duration HANG_GUARD = Duration.ofSeconds(60);
    private static final Duration SHORT = Duration.ofMillis(700);
    /** An ETag for reads that never get an answer about the object (missing, unreachable, empty). */
    private static final String NO_ETAG = "0123456789abcdef0123456789abcdef";

    protected S3TestServer server;
    protected String bucket;
    private ImageSource source;

    /**
     * A new source on {@code endpoint} with these keys and timeouts; the test closes it.
     */
    protected abstract ImageSource newSource(URI endpoint, String accessKey, String secretKey,
                                             Duration connectTimeout, Duration readTimeout);

    /** Short name of the adapter, for the printed figures. */
    protected abstract String adapterName();

    @BeforeAll
    void startServer() {
        server = S3TestServer.shared();
        bucket = S3TestServer.uniqueBucket("scenarios");
        server.createBucket(bucket);
        source = newSource(server.endpoint(), server.accessKey(), server.secretKey(),
                Duration.ofSeconds(5), Duration.ofSeconds(30));
    }

    @AfterAll
    void closeSource() {
        if (source != null) {
            source.close();
        }
    }

    protected ImageRef ref(String key) {
        return new ImageRef(bucket, key);
    }

    /** The ETag the server states for {@code key} now, read with the right keys and no proxy. */
    protected String etag(String key) {
        return source.stat(ref(key)).etag();
    }

    private static void assertCode(ThrowingCallable call, ErrorCode code) {
        assertThatThrownBy(call).isInstanceOf(ProvisioningException.class)
                .satisfies(e -> assertThat(((ProvisioningException) e).code()).as(e.toString()).isEqualTo(code))
                .satisfies(e -> assertThat(e.getCause()).as("vendor exception kept as cause").isNotNull());
    }

    // --- error mapping ---

    @Test
    public void open_whenKeyMissing_failsWithImageNotFound() {
        assertCode(() -> source.open(ref("missing/key.qcow2"), NO_ETAG, 0, 10), ErrorCode.IMAGE_NOT_FOUND);
    }

    @Test
    public void open_whenBucketMissing_failsWithImageNotFound() {
        assertCode(() -> source.open(new ImageRef(S3TestServer.uniqueBucket("nobucket"), "x.qcow2"), NO_ETAG, 0, 10),
                ErrorCode.IMAGE_NOT_FOUND);
    }

    @Test
    public void publishedChecksum_whenBucketMissing_isEmpty() {
        assertThat(source.publishedChecksum(new ImageRef(S3TestServer.uniqueBucket("nobucket"), "x.qcow2"))).isEmpty();
    }

    @Test
    public void everyCall_whenSecretKeyWrong_failsWithAccessDenied() {
        server.put(bucket, "denied/img.raw", new byte[] {1, 2, 3});
        server.put(bucket, "denied/img.raw.sha256", sha256Hex(new byte[] {1, 2, 3}).getBytes(StandardCharsets.US_ASCII));
        try (ImageSource wrong = newSource(server.endpoint(), server.accessKey(), server.secretKey() + "-wrong",
                Duration.ofSeconds(5), Duration.ofSeconds(30))) {
            assertCode(() -> wrong.stat(ref("denied/img.raw")), ErrorCode.ACCESS_DENIED);
            assertCode(() -> wrong.open(ref("denied/img.raw"), etag("denied/img.raw"), 0, 3), ErrorCode.ACCESS_DENIED);
            assertCode(() -> wrong.publishedChecksum(ref("denied/img.raw")), ErrorCode.ACCESS_DENIED);
        }
    }

    @Test
    public void everyCall_whenAccessKeyUnknown_failsWithAccessDenied() {
        server.put(bucket, "denied/other.raw", new byte[] {1});
        try (ImageSource wrong = newSource(server.endpoint(), "no-such-access-key", server.secretKey(),
                Duration.ofSeconds(5), Duration.ofSeconds(30))) {
            assertCode(() -> wrong.stat(ref("denied/other.raw")), ErrorCode.ACCESS_DENIED);
            assertCode(() -> wrong.open(ref("denied/other.raw"), etag("denied/other.raw"), 0, 1), ErrorCode.ACCESS_DENIED);
        }
    }

    @Test
    public void open_whenRangeLiesPastTheEnd_failsWithInvalidRequest() {
        server.put(bucket, "past/end.raw", new byte[100]);
        assertCode(() -> source.open(ref("past/end.raw"), etag("past/end.raw"), 200, 10), ErrorCode.INVALID_REQUEST);
        assertThatThrownBy(() -> readFully(source.open(ref("past/end.raw"), etag("past/end.raw"), 90, 20)))
                .satisfies(e -> assertThat(e).isInstanceOfAny(ProvisioningException.class, IOException.class));
    }

    // --- object versions: every read is conditional on the ETag stat returned ---

    @Test
    public void open_withTheEtagOfAReplacedVersion_failsWithImageChanged_fromTheServersPreconditionCheck() {
        server.put(bucket, "versions/replaced.raw", random(200_000, 21));
        String first = etag("versions/replaced.raw");
        server.put(bucket, "versions/replaced.raw", random(200_000, 22));
        for (long offset : new long[] {0, 65_536}) {
            assertThatThrownBy(() -> readFully(source.open(ref("versions/replaced.raw"), first, offset, 1000)))
                    .isInstanceOfSatisfying(ProvisioningException.class, e -> {
                        assertThat(e.code()).as(e.toString()).isEqualTo(ErrorCode.IMAGE_CHANGED);
                        assertThat(e.getMessage()).contains("412");
                        assertThat(e.getCause()).as("the server's 412, kept as the cause").isNotNull();
                    });
        }
    }

    @Test
    public void open_whenTheServerIgnoresIfMatch_andServesANewerVersion_failsWithImageChanged() throws Exception {
        try (S3TestServer ignoring = S3TestServer.startIgnoringConditions();
             ImageSource viaIgnoring = newSource(ignoring.endpoint(), ignoring.accessKey(), ignoring.secretKey(),
                     Duration.ofSeconds(5), Duration.ofSeconds(30))) {
            String b = S3TestServer.uniqueBucket("ignoring");
            ignoring.createBucket(b);
            ImageRef r = new ImageRef(b, "versions/ignored.raw");
            byte[] v2 = random(100_000, 24);
            ignoring.put(b, r.key(), random(100_000, 23));
            String first = viaIgnoring.stat(r).etag();
            ignoring.put(b, r.key(), v2);
            for (long offset : new long[] {0, 4096}) {
                assertThatThrownBy(() -> readFully(viaIgnoring.open(r, first, offset, 1000)))
                        .isInstanceOfSatisfying(ProvisioningException.class, e -> {
                            assertThat(e.code()).as(e.toString()).isEqualTo(ErrorCode.IMAGE_CHANGED);
                            assertThat(e.getMessage()).contains("answered with ETag");
                        });
            }
            // The server ignores the condition, not the version: the current one reads.
            assertThat(readFully(viaIgnoring.open(r, viaIgnoring.stat(r).etag(), 0, v2.length))).isEqualTo(v2);
        }
    }

    // --- replies that cannot be used: a size or an ETag the server does not state ---

    @Test
    public void stat_whenTheReplyHasNoContentLength_failsWithSourceRefused_neverSizeZero() throws Exception {
        server.put(bucket, "unusable/no-length.raw", random(4096, 25));
        try (FaultProxy proxy = FaultProxy.start(server.endpoint())) {
            proxy.rewriteResponses((request, response) -> request.method().equals("HEAD")
                    ? new HttpRelay.Reply(response.without("Content-Length"), null) : null);
            try (ImageSource viaProxy = newSource(proxy.endpoint(), server.accessKey(), server.secretKey(),
                    Duration.ofSeconds(5), Duration.ofSeconds(10))) {
                assertThatThrownBy(() -> viaProxy.stat(ref("unusable/no-length.raw")))
                        .isInstanceOfSatisfying(ProvisioningException.class, e -> {
                            assertThat(e.code()).as(e.toString()).isEqualTo(ErrorCode.SOURCE_REFUSED);
                            assertThat(e.getMessage()).contains("no size", "Content-Length");
                        });
            }
        }
    }

    @Test
    public void stat_whenTheReplyHasNoEtag_failsWithSourceRefused() throws Exception {
        server.put(bucket, "unusable/no-etag.raw", random(4096, 26));
        try (FaultProxy proxy = FaultProxy.start(server.endpoint())) {
            proxy.rewriteResponses((request, response) -> new HttpRelay.Reply(response.without("ETag"), null));
            try (ImageSource viaProxy = newSource(proxy.endpoint(), server.accessKey(), server.secretKey(),
                    Duration.ofSeconds(5), Duration.ofSeconds(10))) {
                assertThatThrownBy(() -> viaProxy.stat(ref("unusable/no-etag.raw")))
                        .isInstanceOfSatisfying(ProvisioningException.class,
                                e -> assertThat(e.code()).as(e.toString()).isEqualTo(ErrorCode.SOURCE_REFUSED));
                assertThatThrownBy(() -> readFully(viaProxy.open(ref("unusable/no-etag.raw"),
                        etag("unusable/no-etag.raw"), 0, 100)))
                        .isInstanceOfSatisfying(ProvisioningException.class,
                                e -> assertThat(e.code()).as(e.toString()).isEqualTo(ErrorCode.SOURCE_REFUSED));
            }
        }
    }

    // --- permanent refusals are not retried; server trouble is ---

    /** An S3 error code where S3 gives one; without, the HTML page of a proxy in front of the server. */
    @ParameterizedTest(name = "{0} answered {1} {3}: {4}")
    @CsvSource({
            "GET,  400, Bad Request,           InvalidArgument,    SOURCE_REFUSED",
            "GET,  400, Bad Request,           InvalidRequest,     SOURCE_REFUSED",
            "GET,  403, Forbidden,             InvalidObjectState, SOURCE_REFUSED",
            "GET,  405, Method Not Allowed,    MethodNotAllowed,   SOURCE_REFUSED",
            "GET,  411, Length Required,       MissingContentLength, SOURCE_REFUSED",
            "GET,  414, URI Too Long,          ,                   SOURCE_REFUSED",
            "GET,  431, Header Fields Too Large, ,                 SOURCE_REFUSED",
            "GET,  501, Not Implemented,       NotImplemented,     SOURCE_REFUSED",
            "HEAD, 400, Bad Request,           ,                   SOURCE_REFUSED",
            "HEAD, 405, Method Not Allowed,    ,                   SOURCE_REFUSED",
            "GET,  400, Bad Request,           RequestTimeout,     SOURCE_UNAVAILABLE",
            "GET,  503, Slow Down,             SlowDown,           SOURCE_UNAVAILABLE",
            "GET,  500, Internal Server Error, InternalError,      SOURCE_UNAVAILABLE",
            "HEAD, 503, Service Unavailable,   ,                   SOURCE_UNAVAILABLE",
            "GET,  429, Too Many Requests,     ,                   SOURCE_UNAVAILABLE",
            "GET,  412, Precondition Failed,   PreconditionFailed, IMAGE_CHANGED",
    })
    public void errorReplies_areClassified_permanentRefusalsAsSourceRefused(String method, int status, String reason,
            String s3Code, ErrorCode expected) throws Exception {
        String key = "refusals/" + method + "-" + status + "-" + s3Code + ".raw";
        server.put(bucket, key, random(4096, 27));
        String etag = etag(key);
        try (FaultProxy proxy = FaultProxy.start(server.endpoint())) {
            proxy.rewriteResponses((request, response) -> request.method().equals(method)
                    && request.target().contains("/refusals/")
                    ? (s3Code == null ? HttpRelay.htmlError(response, status, reason)
                            : HttpRelay.s3Error(response, status, reason, s3Code, "injected by the test"))
                    : null);
            try (ImageSource viaProxy = newSource(proxy.endpoint(), server.accessKey(), server.secretKey(),
                    Duration.ofSeconds(5), Duration.ofSeconds(10))) {
                ThrowingCallable call = method.equals("HEAD") ? () -> viaProxy.stat(ref(key))
                        : () -> readFully(viaProxy.open(ref(key), etag, 0, 100));
                assertThatThrownBy(call).isInstanceOfSatisfying(ProvisioningException.class, e -> {
                    assertThat(e.code()).as(e.toString()).isEqualTo(expected);
                    assertThat(e.getMessage()).contains(Integer.toString(status));
                    if (expected == ErrorCode.SOURCE_REFUSED) {
                        assertThat(e.getMessage()).contains("not retried");
                    }
                    if ("InvalidObjectState".equals(s3Code)) {
                        assertThat(e.getMessage()).contains("restore it");
                    }
                });
            }
            assertThat(proxy.requestLines()).as("requests the source made").hasSize(1);
        }
    }

    @Test
    public void publishedChecksum_whenTheSiblingIsRefused_failsWithAccessDenied_forTheEngineToDecide() throws Exception {
        server.put(bucket, "policy/img.raw", random(4096, 28));
        try (FaultProxy proxy = FaultProxy.start(server.endpoint())) {
            // What a policy granting GetObject but not ListBucket answers for a missing object.
            proxy.rewriteResponses((request, response) -> request.target().contains(".sha256")
                    ? HttpRelay.s3Error(response, 403, "Forbidden", "AccessDenied", "Access Denied") : null);
            try (ImageSource viaProxy = newSource(proxy.endpoint(), server.accessKey(), server.secretKey(),
                    Duration.ofSeconds(5), Duration.ofSeconds(10))) {
                assertThat(viaProxy.stat(ref("policy/img.raw")).size()).isEqualTo(4096);
                assertCode(() -> viaProxy.publishedChecksum(ref("policy/img.raw")), ErrorCode.ACCESS_DENIED);
            }
        }
    }

    // --- outages ---

    @Test
    public void stat_whenServerStopped_failsWithSourceUnavailable() throws Exception {
        server.put(bucket, "outage/stopped.raw", new byte[] {7});
        FaultProxy proxy = FaultProxy.start(server.endpoint());
        try (ImageSource viaProxy = newSource(proxy.endpoint(), server.accessKey(), server.secretKey(), SHORT, SHORT)) {
            assertThat(viaProxy.stat(ref("outage/stopped.raw")).size()).isEqualTo(1);
            proxy.close(); // the "server" goes away: pooled connection reset, new ones refused
            assertTimeoutPreemptively(HANG_GUARD, () -> {
                assertCode(() -> viaProxy.stat(ref("outage/stopped.raw")), ErrorCode.SOURCE_UNAVAILABLE);
                assertCode(() -> viaProxy.open(ref("outage/stopped.raw"), NO_ETAG, 0, 1), ErrorCode.SOURCE_UNAVAILABLE);
            });
        } finally {
            proxy.close();
        }
    }

    @Test
    public void stat_whenServerResetsConnections_failsWithSourceUnavailable() throws Exception {
        try (FaultProxy proxy = FaultProxy.start(server.endpoint());
             ImageSource viaProxy = newSource(proxy.endpoint(), server.accessKey(), server.secretKey(), SHORT, SHORT)) {
            proxy.outage(FaultProxy.Mode.REFUSE);
            assertTimeoutPreemptively(HANG_GUARD,
                    () -> assertCode(() -> viaProxy.stat(ref("outage/any.raw")), ErrorCode.SOURCE_UNAVAILABLE));
        }
    }

    @Test
    public void stat_whenServerBlackHoled_failsWithSourceUnavailableAfterReadTimeout() throws Exception {
        try (FaultProxy proxy = FaultProxy.start(server.endpoint());
             ImageSource viaProxy = newSource(proxy.endpoint(), server.accessKey(), server.secretKey(), SHORT, SHORT)) {
            proxy.outage(FaultProxy.Mode.BLACK_HOLE);
            assertTimeoutPreemptively(HANG_GUARD,
                    () -> assertCode(() -> viaProxy.stat(ref("outage/any.raw")), ErrorCode.SOURCE_UNAVAILABLE));
        }
    }

    @Test
    public void stat_afterOutageEnds_succeedsAgain() throws Exception {
        server.put(bucket, "outage/recover.raw", new byte[] {1, 2});
        try (FaultProxy proxy = FaultProxy.start(server.endpoint());
             ImageSource viaProxy = newSource(proxy.endpoint(), server.accessKey(), server.secretKey(), SHORT, SHORT)) {
            proxy.outage(FaultProxy.Mode.REFUSE);
            assertCode(() -> viaProxy.stat(ref("outage/recover.raw")), ErrorCode.SOURCE_UNAVAILABLE);
            proxy.endOutage();
            assertThat(viaProxy.stat(ref("outage/recover.raw")).size()).isEqualTo(2);
        }
    }

    // --- dropped connections and resume ---

    @Test
    public void read_whenConnectionDropsMidObject_throwsAndResumeAtReceivedOffsetCompletesTheObject() throws Exception {
        int size = 8 * 1024 * 1024 + 12_345;
        byte[] data = random(size, 11);
        server.put(bucket, "drop/big.raw", data);
        try (FaultProxy proxy = FaultProxy.start(server.endpoint());
             ImageSource viaProxy = newSource(proxy.endpoint(), server.accessKey(), server.secretKey(),
                     Duration.ofSeconds(5), Duration.ofSeconds(10))) {
            proxy.cutOnceAfter(3 * 1024 * 1024 + 777);
            ByteArrayOutputStream received = new ByteArrayOutputStream(size);
            assertTimeoutPreemptively(HANG_GUARD, () -> {
                try (InputStream in = viaProxy.open(ref("drop/big.raw"), etag("drop/big.raw"), 0, size)) {
                    assertThatThrownBy(() -> copy(in, received, 8192))
                            .isInstanceOfAny(IOException.class, ProvisioningException.class);
                }
            });
            assertThat(proxy.cuts()).isEqualTo(1);
            int got = received.size();
            assertThat(got).isGreaterThan(0).isLessThan(size);
            assertThat(Arrays.copyOf(received.toByteArray(), got)).isEqualTo(Arrays.copyOf(data, got));

            try (InputStream rest = viaProxy.open(ref("drop/big.raw"), etag("drop/big.raw"), got, size - got)) {
                copy(rest, received, 8192);
            }
            assertThat(received.size()).isEqualTo(size);
            assertThat(sha256Hex(received.toByteArray())).isEqualTo(sha256Hex(data));
            // The bytes before the drop crossed the wire once: a resume is a ranged read, not a re-read.
            long headersAllowance = 64 * 1024;
            assertThat(proxy.bytesToClient()).isLessThanOrEqualTo(size + headersAllowance);
        }
    }

    @Test
    public void read_whenConnectionIsResetMidObject_throwsAndResumeCompletesTheObject() throws Exception {
        int size = 6 * 1024 * 1024 + 1;
        byte[] data = random(size, 14);
        server.put(bucket, "drop/reset.raw", data);
        try (FaultProxy proxy = FaultProxy.start(server.endpoint());
             ImageSource viaProxy = newSource(proxy.endpoint(), server.accessKey(), server.secretKey(),
                     Duration.ofSeconds(5), Duration.ofSeconds(10))) {
            proxy.resetAfter(2 * 1024 * 1024, 1);
            ByteArrayOutputStream received = new ByteArrayOutputStream(size);
            assertTimeoutPreemptively(HANG_GUARD, () -> {
                try (InputStream in = viaProxy.open(ref("drop/reset.raw"), etag("drop/reset.raw"), 0, size)) {
                    assertThatThrownBy(() -> copy(in, received, 64 * 1024))
                            .isInstanceOfAny(IOException.class, ProvisioningException.class);
                }
            });
            int got = received.size();
            assertThat(got).isLessThan(size);
            try (InputStream rest = viaProxy.open(ref("drop/reset.raw"), etag("drop/reset.raw"), got, size - got)) {
                copy(rest, received, 64 * 1024);
            }
            assertThat(sha256Hex(received.toByteArray())).isEqualTo(sha256Hex(data));
        }
    }

    @Test
    public void read_whenServerStallsMidObject_throwsAfterReadTimeout() throws Exception {
        int size = 16 * 1024 * 1024;
        server.put(bucket, "stall/big.raw", random(size, 12));
        try (FaultProxy proxy = FaultProxy.start(server.endpoint());
             ImageSource viaProxy = newSource(proxy.endpoint(), server.accessKey(), server.secretKey(),
                     Duration.ofSeconds(5), SHORT)) {
            assertTimeoutPreemptively(HANG_GUARD, () -> {
                try (InputStream in = viaProxy.open(ref("stall/big.raw"), etag("stall/big.raw"), 0, size)) {
                    byte[] first = in.readNBytes(1024 * 1024);
                    assertThat(first).hasSize(1024 * 1024);
                    proxy.outage(FaultProxy.Mode.BLACK_HOLE);
                    assertThatThrownBy(() -> copy(in, OutputStream.nullOutputStream(), 8192))
                            .isInstanceOfAny(IOException.class, ProvisioningException.class);
                }
            });
        }
    }

    // --- edge sizes and keys ---

    @Test
    public void open_edgeSizes_readExactly() throws Exception {
        for (int size : new int[] {0, 1, 8191, 8193, 65_537, 1_000_003}) {
            byte[] data = random(size, size);
            String key = "sizes/" + size + ".raw";
            server.put(bucket, key, data);
            assertThat(source.stat(ref(key)).size()).isEqualTo(size);
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            copy(source.open(ref(key), etag(key), 0, size), out, 4096);
            assertThat(out.toByteArray()).as("size %d", size).isEqualTo(data);
            if (size > 2) {
                assertThat(readFully(source.open(ref(key), etag(key), size - 2, 2))).containsExactly(data[size - 2], data[size - 1]);
            }
        }
    }

    @Test
    public void open_withZeroLength_returnsEmptyStreamWithoutARequest() throws Exception {
        server.put(bucket, "zero/len.raw", new byte[] {1, 2, 3});
        OptionalLong before = server.objectRequestCount();
        assertThat(readFully(source.open(ref("zero/len.raw"), NO_ETAG, 1, 0))).isEmpty();
        // Even a missing object: no request is made, so nothing can fail.
        assertThat(readFully(source.open(ref("zero/missing.raw"), NO_ETAG, 0, 0))).isEmpty();
        assertThat(server.objectRequestCount()).isEqualTo(before);
    }

    @Test
    public void open_closedEarly_doesNotReadTheRestOfTheRange() throws Exception {
        // Large enough that what loopback socket buffers take in whatever the client does (up to
        // net.core.wmem_max, 4 MiB, plus a little) stays far below the range, which a drain reads whole.
        int size = 32 * 1024 * 1024;
        server.put(bucket, "early/close.raw", random(size, 13));
        try (FaultProxy proxy = FaultProxy.start(server.endpoint());
             ImageSource viaProxy = newSource(proxy.endpoint(), server.accessKey(), server.secretKey(),
                     Duration.ofSeconds(5), Duration.ofSeconds(10))) {
            try (InputStream in = viaProxy.open(ref("early/close.raw"), etag("early/close.raw"), 0, size)) {
                assertThat(in.readNBytes(1000)).hasSize(1000);
            }
            // Let any drain that would happen run, then check the proxy forwarded far less than the range.
            assertThat(viaProxy.stat(ref("early/close.raw")).size()).isEqualTo(size);
            assertThat(proxy.bytesToClient()).isLessThan(size / 4);
        }
    }

    @Test
    public void publishedChecksum_bothFormats_andOversizedSiblingIsEmpty() {
        String digest = sha256Hex(new byte[] {9});
        server.put(bucket, "sums/a.qcow2.sha256", (digest + "\n").getBytes(StandardCharsets.US_ASCII));
        server.put(bucket, "sums/b.qcow2.sha256", (digest.toUpperCase() + " *b.qcow2\n").getBytes(StandardCharsets.US_ASCII));
        server.put(bucket, "sums/c.qcow2.sha256", new byte[0]);
        byte[] huge = new byte[64 * 1024];
        Arrays.fill(huge, (byte) 'a');
        server.put(bucket, "sums/d.qcow2.sha256", huge);
        assertThat(source.publishedChecksum(ref("sums/a.qcow2"))).contains(digest);
        assertThat(source.publishedChecksum(ref("sums/b.qcow2"))).contains(digest);
        assertThat(source.publishedChecksum(ref("sums/c.qcow2"))).isEmpty();
        assertThat(source.publishedChecksum(ref("sums/d.qcow2"))).isEmpty();
        assertThat(source.publishedChecksum(ref("sums/none.qcow2"))).isEmpty();
    }

    @Test
    public void imageRefParse_acceptsOnlyTheConfiguredEndpoint() {
        URI ep = source.endpoint().orElseThrow();
        ImageRef ok = ImageRef.parse(ep + "/" + bucket + "/img/u.qcow2", source.endpoint());
        assertThat(ok).isEqualTo(ref("img/u.qcow2"));
        String otherHost = "http://evil.example:" + ep.getPort() + "/" + bucket + "/img/u.qcow2";
        String otherPort = "http://" + ep.getHost() + ":" + (ep.getPort() + 1) + "/" + bucket + "/img/u.qcow2";
        for (String uri : new String[] {otherHost, otherPort}) {
            assertThatThrownBy(() -> ImageRef.parse(uri, source.endpoint()))
                    .isInstanceOf(ProvisioningException.class)
                    .satisfies(e -> assertThat(((ProvisioningException) e).code()).isEqualTo(ErrorCode.INVALID_REQUEST));
        }
    }

    @Test
    public void toString_neverShowsTheSecretKey() {
        assertThat(source.toString()).doesNotContain(server.secretKey()).contains(server.endpoint().getHost());
    }

    @Test
    public void close_isIdempotent() {
        ImageSource s = newSource(server.endpoint(), server.accessKey(), server.secretKey(), SHORT, SHORT);
        s.close();
        s.close();
    }

    // --- figures ---

    /**
     * Single-stream ranged-read throughput on loopback; prints MB/s, asserts only the bytes. Size in
     * MiB from {@code -Dvolprov.throughput.mib} (default 64; the README figure uses 1024).
     */
    @Test
    public void throughput_singleStreamRangedRead_isPrinted() throws Exception {
        long mib = Long.getLong("volprov.throughput.mib", 64);
        long size = mib * 1024 * 1024;
        Path file = Files.createTempFile("volprov-throughput-", ".raw");
        try {
            byte[] block = random(1024 * 1024, 99);
            try (OutputStream out = Files.newOutputStream(file)) {
                for (long i = 0; i < mib; i++) {
                    block[0] = (byte) i; // no two MiB alike
                    out.write(block);
                }
            }
            String key = "throughput/" + mib + "mib.raw";
            server.put(bucket, key, file);
            Files.delete(file);
            for (int run = 1; run <= 2; run++) {
                long start = System.nanoTime();
                long read;
                try (InputStream in = source.open(ref(key), etag(key), 0, size)) {
                    read = copy(in, OutputStream.nullOutputStream(), 1024 * 1024);
                }
                double secs = (System.nanoTime() - start) / 1e9;
                assertThat(read).isEqualTo(size);
                System.out.printf("[throughput] %s, %s server: run %d, single-stream ranged read of %d MiB: %.1f MB/s (%.2f s)%n",
                        adapterName(), server.kind(), run, mib, size / 1e6 / secs, secs);
            }
        } finally {
            Files.deleteIfExists(file);
        }
    }

    // --- helpers ---

    protected static byte[] random(int size, long seed) {
        byte[] b = new byte[size];
        new Random(seed).nextBytes(b);
        return b;
    }

    protected static long copy(InputStream in, OutputStream out, int bufferSize) throws IOException {
        byte[] buf = new byte[bufferSize];
        long total = 0;
        int n;
        while ((n = in.read(buf)) >= 0) {
            out.write(buf, 0, n);
            total += n;
        }
        return total;
    }

    protected static byte[] readFully(InputStream in) throws IOException {
        try (in) {
            return in.readAllBytes();
        }
    }

    protected static String sha256Hex(byte[] data) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(data));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
