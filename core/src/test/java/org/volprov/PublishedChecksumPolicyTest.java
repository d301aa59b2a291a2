package org.volprov;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.volprov.cache.DiskImageCache;
import org.volprov.image.ImageFormat;
import org.volprov.source.ImageSource;
import org.volprov.source.LocalDirectoryImageSource;
import org.volprov.source.ObjectInfo;
import org.volprov.testing.ForwardingImageSource;
import org.volprov.testing.TestImages;
import org.volprov.volume.FileVolumeBackend;

/**
 * A checksum sibling that the source refuses: with a least-privilege policy (GetObject without
 * ListBucket) S3 answers 403 for a missing object, so a refused sibling of a readable object counts
 * as not published, with one warning per image; {@code requirePublishedChecksum} fails such jobs.
 */
class PublishedChecksumPolicyTest {
    private static final Duration WAIT = Duration.ofSeconds(60);
    private static final long VOLUME = 4L << 20;

    @TempDir
    Path root;
    @TempDir
    Path work;
    private DiskImageCache cache;
    private FileVolumeBackend backend;
    private final List<Provisioner> engines = new ArrayList<>();

    @BeforeEach
    void setUp() throws IOException {
        Path bucket = Files.createDirectories(root.resolve("images"));
        for (String name : new String[] {"a.raw", "b.raw", "published.raw"}) {
            byte[] content = new byte[1 << 20];
            new Random(name.hashCode()).nextBytes(content);
            Files.write(bucket.resolve(name), content);
        }
        Files.writeString(bucket.resolve("published.raw.sha256"),
                TestImages.sha256(bucket.resolve("published.raw")) + "  published.raw\n");
        cache = DiskImageCache.builder().directory(work.resolve("cache")).maxBytes(1L << 30).build();
        backend = FileVolumeBackend.open(work.resolve("volumes"));
    }

    @AfterEach
    void tearDown() {
        engines.forEach(Provisioner::close);
        cache.close();
    }

    private Provisioner start(ImageSource source, boolean requireChecksum) {
        Provisioner p = Provisioner.builder().source(source).cache(cache).backend(backend).workDirectory(work)
                .requirePublishedChecksum(requireChecksum).build();
        engines.add(p);
        return p;
    }

    private static Job run(Provisioner p, String image, String volume) {
        return p.await(p.submit(ProvisionRequest.builder().imageUri("s3://images/" + image).volumeName(volume)
                .volumeSizeBytes(VOLUME).format(ImageFormat.RAW).build()), WAIT);
    }

    @Test
    void refusedSibling_ofAReadableObject_isTakenAsNotPublished_withOneWarningPerImage() throws Exception {
        RefusingSource source = new RefusingSource(new LocalDirectoryImageSource(root));
        Provisioner p = start(source, false);
        String log = capturingStandardError(() -> {
            for (String image : new String[] {"a.raw", "a.raw", "b.raw", "a.raw", "b.raw"}) {
                Job job = run(p, image, "vm-" + source.checksumCalls.get());
                assertThat(job.state()).as("%s %s", job.errorCode(), job.errorMessage()).isEqualTo(JobState.COMPLETED);
                assertThat(job.imageDigest()).isEqualTo(TestImages.sha256(root.resolve("images").resolve(image)));
            }
        });
        assertThat(source.checksumCalls).hasValue(5);
        assertThat(log.lines().filter(l -> l.contains("WARN") && l.contains("refused s3://images/a.raw.sha256")))
                .hasSize(1);
        assertThat(log.lines().filter(l -> l.contains("WARN") && l.contains("refused s3://images/b.raw.sha256")))
                .hasSize(1);
    }

    @Test
    void requirePublishedChecksum_failsImagesWithoutAReadableOne_withChecksumMissing_beforeAnyDownload() {
        RefusingSource refusing = new RefusingSource(new LocalDirectoryImageSource(root));
        CountingOpens absent = new CountingOpens(new LocalDirectoryImageSource(root));

        Job refused = run(start(refusing, true), "a.raw", "vm-refused");
        assertThat(refused.state()).isEqualTo(JobState.FAILED);
        assertThat(refused.errorCode()).isEqualTo(ErrorCode.CHECKSUM_MISSING);
        assertThat(refused.errorMessage()).contains("refused s3://images/a.raw.sha256", "requirePublishedChecksum");

        Provisioner p = start(absent, true);
        Job missing = run(p, "b.raw", "vm-missing");
        assertThat(missing.state()).isEqualTo(JobState.FAILED);
        assertThat(missing.errorCode()).isEqualTo(ErrorCode.CHECKSUM_MISSING);
        assertThat(missing.errorMessage()).contains("no SHA-256 is published", "b.raw.sha256");
        assertThat(absent.opens).as("reads of an image without a checksum").hasValue(0);
        assertThat(backend.find("vm-missing")).isEmpty();

        Job published = run(p, "published.raw", "vm-published");
        assertThat(published.state()).as("%s %s", published.errorCode(), published.errorMessage())
                .isEqualTo(JobState.COMPLETED);
    }

    @Test
    void refusedObject_isStillAccessDenied() {
        ImageSource denied = new ForwardingImageSource(new LocalDirectoryImageSource(root)) {
            @Override
            public ObjectInfo stat(ImageRef ref) {
                throw new ProvisioningException(ErrorCode.ACCESS_DENIED, "access denied reading " + ref);
            }
        };
        Job job = run(start(denied, false), "a.raw", "vm-denied");
        assertThat(job.errorCode()).isEqualTo(ErrorCode.ACCESS_DENIED);
    }

    private static String capturingStandardError(ThrowingRunnable r) throws Exception {
        PrintStream original = System.err;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        System.setErr(new PrintStream(captured, true, StandardCharsets.UTF_8));
        try {
            r.run();
        } finally {
            System.setErr(original);
        }
        String log = captured.toString(StandardCharsets.UTF_8);
        original.print(log);
        return log;
    }

    @FunctionalInterface
    private interface ThrowingRunnable {
        void run() throws Exception;
    }

    /** Answers for every checksum sibling what S3 answers under a policy without ListBucket. */
    static final class RefusingSource extends ForwardingImageSource {
        final AtomicInteger checksumCalls = new AtomicInteger();

        RefusingSource(ImageSource delegate) {
            super(delegate);
        }

        @Override
        public Optional<String> publishedChecksum(ImageRef ref) {
            checksumCalls.incrementAndGet();
            throw new ProvisioningException(ErrorCode.ACCESS_DENIED, "access denied reading " + ref.checksumSibling()
                    + " (HTTP 403, AccessDenied: Access Denied)");
        }
    }

    static final class CountingOpens extends ForwardingImageSource {
        final AtomicInteger opens = new AtomicInteger();

        CountingOpens(ImageSource delegate) {
            super(delegate);
        }

        @Override
        public InputStream open(ImageRef ref, String etag, long offset, long length) {
            opens.incrementAndGet();
            return super.open(ref, etag, offset, length);
        }
    }
}
