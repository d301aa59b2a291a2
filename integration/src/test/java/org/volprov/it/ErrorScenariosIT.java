package org.volprov.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.UUID;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.volprov.ErrorCode;
import org.volprov.Job;
import org.volprov.JobState;
import org.volprov.ProvisioningException;
import org.volprov.libvirt.LibvirtConfig;
import org.volprov.libvirt.LibvirtVolumeBackend;
import org.volprov.libvirt.testkit.LibvirtTestPool;
import org.volprov.s3.testkit.FaultProxy;
import org.volprov.s3.testkit.HttpRelay;
import org.volprov.testing.TestImages;

/**
 * Each failure ends the job FAILED with its own error code and a message that says what to fix,
 * and leaves no volume, no partial download and no cache entry behind.
 */
@Tag(Category.ERROR_SCENARIOS)
class ErrorScenariosIT {
    @RegisterExtension
    static final LibvirtTestPool POOL = new LibvirtTestPool();
    private static final long VOLUME = 128L << 20;

    @TempDir
    Path work;
    private Stack stack;
    private List<String> filesBefore;
    private long entryCountBefore;

    @BeforeEach
    void open() {
        stack = Stack.builder(POOL, work).build();
        filesBefore = Leftovers.cacheFiles(stack.cache.directory());
        entryCountBefore = stack.cache.stats().entries();
    }

    @AfterEach
    void close() {
        stack.close();
    }

    private Job failing(String uri, String volume, long size, ErrorCode code) {
        return failing(stack, uri, volume, size, code);
    }

    /** Runs the request on {@code s}, expects it to fail with {@code code}, and checks what is left. */
    private static Job failing(Stack s, String uri, String volume, long size, ErrorCode code) {
        List<String> before = Leftovers.cacheEntries(s.cache.directory());
        Job job = s.run(Stack.request(uri, volume, size));
        assertThat(job.state()).as("%s: %s", job.errorCode(), job.errorMessage()).isEqualTo(JobState.FAILED);
        assertThat(job.errorCode()).as(job.errorMessage()).isEqualTo(code);
        Leftovers.assertNothingLeft(s, POOL, job, before);
        assertThat(s.store.find(job.id()).map(JobStores::asStored))
                .contains(JobStores.asStored(job));
        return job;
    }

    @Test
    void missingBucket_failsWithImageNotFound_namingTheBucket() {
        String bucket = "volprov-missing-" + UUID.randomUUID().toString().substring(0, 8);
        Job job = failing("s3://" + bucket + "/disk.qcow2", stack.volume("no-bucket"), VOLUME, ErrorCode.IMAGE_NOT_FOUND);
        assertThat(job.errorMessage()).contains(bucket);
    }

    @Test
    void missingKey_failsWithImageNotFound_namingTheKey() {
        Uploads.uri(ImageSet.get(ImageSet.SMALL)); // the bucket exists
        Job job = failing("s3://" + Uploads.BUCKET + "/images/no-such.qcow2", stack.volume("no-key"), VOLUME,
                ErrorCode.IMAGE_NOT_FOUND);
        assertThat(job.errorMessage()).contains("images/no-such.qcow2");
    }

    @Test
    void wrongCredentials_failWithAccessDenied() {
        String uri = Uploads.uri(ImageSet.get(ImageSet.SMALL));
        stack.close();
        stack = Stack.builder(POOL, work).secretKey("not-the-secret-key").build();
        Job job = failing(uri, stack.volume("bad-creds"), VOLUME, ErrorCode.ACCESS_DENIED);
        assertThat(job.errorMessage()).contains("secret key")
                .doesNotContain(Services.s3().secretKey()).doesNotContain("not-the-secret-key");
    }

    @Test
    void checksumMismatch_failsWithChecksumMismatch_andAdmitsNothing() {
        TestImage image = ImageSet.get(ImageSet.SMALL);
        String wrong = "0".repeat(64);
        String uri = Uploads.put("errors/mismatch-" + UUID.randomUUID() + ".qcow2", image, wrong + "\n");
        Job job = failing(uri, stack.volume("mismatch"), VOLUME, ErrorCode.CHECKSUM_MISMATCH);
        assertThat(job.errorMessage()).contains(wrong).contains(image.fileSha256());
        assertThat(stack.cache.stats().checksumFailures()).isEqualTo(1);
    }

    @Test
    void corruptQcow2_failsWithUnsupportedImage_beforeAnyVolume() throws IOException {
        Path raw = TestImages.raw(work.resolve("c.raw"), 8L << 20, 7);
        Path qcow2 = TestImages.qcow2(raw, work.resolve("corrupt.qcow2"), false);
        corruptL1Table(qcow2);
        String uri = uploadOneOff("corrupt.qcow2", qcow2);
        Job job = failing(uri, stack.volume("corrupt"), VOLUME, ErrorCode.UNSUPPORTED_IMAGE);
        assertThat(job.errorMessage()).contains("corrupt");
        // It passed its checksum and was admitted; found unusable, it must not hold cache budget.
        Leftovers.assertCacheGainedNothing(stack, filesBefore, entryCountBefore);
    }

    @Test
    void imageLargerThanVolume_failsWithVolumeTooSmall_beforeAnyVolume() {
        TestImage image = ImageSet.get(ImageSet.SMALL);
        Job job = failing(Uploads.uri(image), stack.volume("too-small"), image.virtualSize() - (1 << 20),
                ErrorCode.VOLUME_TOO_SMALL);
        assertThat(job.errorMessage()).contains(Long.toString(image.virtualSize()));
    }

    @Test
    void imageWithBackingFile_failsWithUnsupportedImage() throws IOException {
        Path base = TestImages.qcow2(TestImages.raw(work.resolve("b.raw"), 8L << 20, 8), work.resolve("base.qcow2"), false);
        Path overlay = TestImages.qcow2WithBacking(base, work.resolve("overlay.qcow2"));
        String uri = uploadOneOff("overlay.qcow2", overlay);
        Job job = failing(uri, stack.volume("backing"), VOLUME, ErrorCode.UNSUPPORTED_IMAGE);
        assertThat(job.errorMessage()).contains("backing");
        // Refused from its first bytes: the download stopped there and nothing was admitted.
        Leftovers.assertCacheGainedNothing(stack, filesBefore, entryCountBefore);
        assertThat(stack.cache.stats().admissions()).isZero();
    }

    @Test
    void poolRemovedUnderTheBackend_failsWithBackendFailure_namingThePool() throws IOException {
        String pool = "volprov-gone-" + UUID.randomUUID().toString().substring(0, 8);
        Path dir = Files.createDirectories(work.resolve("gone-pool"));
        LibvirtTestPool.defineDirPool(pool, dir);
        String uri = Uploads.uri(ImageSet.get(ImageSet.SMALL));
        try (LibvirtVolumeBackend gone = LibvirtVolumeBackend.open(
                LibvirtConfig.builder().uri(LibvirtTestPool.URI).poolName(pool).build());
             Stack s = Stack.builder(POOL, work.resolve("s2")).backend(gone).build()) {
            LibvirtTestPool.removePool(pool);
            Job job = s.run(Stack.request(uri, "vm-pool-gone", VOLUME));
            assertThat(job.state()).isEqualTo(JobState.FAILED);
            assertThat(job.errorCode()).as(job.errorMessage()).isEqualTo(ErrorCode.BACKEND_FAILURE);
            assertThat(job.errorMessage()).contains(pool);
        }
        assertThatThrownBy(() -> LibvirtVolumeBackend.open(
                LibvirtConfig.builder().uri(LibvirtTestPool.URI).poolName(pool).build()))
                .isInstanceOfSatisfying(ProvisioningException.class, e -> {
                    assertThat(e.code()).isEqualTo(ErrorCode.BACKEND_FAILURE);
                    assertThat(e.getMessage()).contains(pool);
                });
    }

    @Test
    void permanentRefusalBySource_failsAtOnceWithSourceRefused_withoutRetrying() throws IOException {
        String uri = Uploads.uri(ImageSet.get(ImageSet.SMALL));
        try (FaultProxy proxy = FaultProxy.start(Services.s3().endpoint())) {
            proxy.rewriteResponses((request, response) -> request.method().equals("GET")
                    && !request.target().contains(".sha256")
                    ? HttpRelay.s3Error(response, 400, "Bad Request", "InvalidArgument", "Invalid argument") : null);
            // The default retry policy: six attempts over seconds, had the refusal been taken as an outage.
            try (Stack s = Stack.builder(POOL, work.resolve("refused")).endpoint(proxy.endpoint()).build()) {
                Job job = failing(s, uri, s.volume("refused"), VOLUME, ErrorCode.SOURCE_REFUSED);
                assertThat(job.errorMessage()).contains("HTTP 400", "InvalidArgument", "not retried");
                assertThat(proxy.requestLines().stream().filter(l -> l.startsWith("GET") && !l.contains(".sha256")))
                        .as("reads of the image").hasSize(1);
            }
        }
    }

    @Test
    void objectWithoutAStatedSize_failsWithSourceRefused_neverAnEmptyVolume() throws IOException {
        TestImage image = ImageSet.get(ImageSet.SMALL);
        String uri = Uploads.put("errors/no-length-" + UUID.randomUUID() + ".qcow2", image, null);
        try (FaultProxy proxy = FaultProxy.start(Services.s3().endpoint())) {
            proxy.rewriteResponses((request, response) -> request.method().equals("HEAD")
                    ? new HttpRelay.Reply(response.without("Content-Length"), null) : null);
            for (Stack.Adapter adapter : Stack.Adapter.values()) {
                try (Stack s = Stack.builder(POOL, work.resolve("no-length-" + adapter)).adapter(adapter)
                        .endpoint(proxy.endpoint()).build()) {
                    Job job = failing(s, uri, s.volume("no-length-" + adapter), VOLUME, ErrorCode.SOURCE_REFUSED);
                    assertThat(job.errorMessage()).as("%s", adapter).contains("no size", "Content-Length");
                }
            }
        }
    }

    @Test
    void checksumSiblingRefusedByPolicy_isTakenAsNotPublished_unlessAChecksumIsRequired() throws IOException {
        TestImage image = ImageSet.get(ImageSet.SMALL);
        String uri = Uploads.put("errors/policy-" + UUID.randomUUID() + ".qcow2", image, null);
        try (FaultProxy proxy = FaultProxy.start(Services.s3().endpoint())) {
            // What S3 answers for a missing object to a policy that grants GetObject but not ListBucket.
            proxy.rewriteResponses((request, response) -> request.target().contains(".sha256")
                    ? HttpRelay.s3Error(response, 403, "Forbidden", "AccessDenied", "Access Denied") : null);
            try (Stack s = Stack.builder(POOL, work.resolve("policy")).endpoint(proxy.endpoint()).build()) {
                Job job = s.run(Stack.request(uri, s.volume("policy"), VOLUME));
                assertThat(job.state()).as("%s %s", job.errorCode(), job.errorMessage()).isEqualTo(JobState.COMPLETED);
                assertThat(job.imageDigest()).as("digested while downloading").isEqualTo(image.fileSha256());
                Volumes.assertHolds(POOL, s.volume("policy"), image);
            }
            try (Stack s = Stack.builder(POOL, work.resolve("policy-required")).endpoint(proxy.endpoint())
                    .engine(b -> b.requirePublishedChecksum(true)).build()) {
                Job job = failing(s, uri, s.volume("policy-required"), VOLUME, ErrorCode.CHECKSUM_MISSING);
                assertThat(job.errorMessage()).contains(".sha256", "requirePublishedChecksum");
            }
        }
    }

    private String uploadOneOff(String name, Path file) throws IOException {
        String key = "errors/" + UUID.randomUUID() + "-" + name;
        TestImage t = new TestImage(name, file, null, TestImages.sha256(file), 0, null);
        return Uploads.put(key, t, t.fileSha256() + "\n");
    }

    /** Points the qcow2's L1 entries far past the end of the file: the header reads fine, the data does not. */
    private static void corruptL1Table(Path qcow2) throws IOException {
        try (RandomAccessFile f = new RandomAccessFile(qcow2.toFile(), "rw")) {
            byte[] header = new byte[48];
            f.readFully(header);
            ByteBuffer h = ByteBuffer.wrap(header);
            int l1Size = h.getInt(36);
            long l1Offset = h.getLong(40);
            f.seek(l1Offset);
            byte[] garbage = new byte[8 * l1Size];
            java.util.Arrays.fill(garbage, (byte) 0xff);
            f.write(garbage);
        }
    }
}
