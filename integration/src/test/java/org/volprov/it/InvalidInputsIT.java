package org.volprov.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Path;
import java.util.Set;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;
import org.volprov.ErrorCode;
import org.volprov.JobFilter;
import org.volprov.ProvisionRequest;
import org.volprov.ProvisioningException;
import org.volprov.libvirt.testkit.LibvirtTestPool;

/**
 * Every invalid field is refused at submit with INVALID_REQUEST naming it; hostile names never
 * reach libvirt, even when the backend is called directly.
 */
@Tag(Category.INVALID_INPUTS)
class InvalidInputsIT {
    @RegisterExtension
    static final LibvirtTestPool POOL = new LibvirtTestPool();

    @TempDir
    Path work;
    private Stack stack;
    private Set<String> volumesBefore;

    @BeforeEach
    void open() throws Exception {
        stack = Stack.builder(POOL, work).engine(b -> b.maxVolumeBytes(1L << 40)).build();
        volumesBefore = LibvirtTestPool.volumes(POOL.pool());
    }

    @AfterEach
    void nothingReachedLibvirt() throws Exception {
        try {
            assertThat(LibvirtTestPool.volumes(POOL.pool())).isEqualTo(volumesBefore);
            assertThat(stack.store.list(JobFilter.all())).as("jobs recorded").isEmpty();
        } finally {
            stack.close();
        }
    }

    private static ProvisionRequest.Builder valid() {
        return ProvisionRequest.builder().imageUri("s3://images/ubuntu-24.04.qcow2").volumeName("vm-1-root")
                .volumeSizeBytes(10L << 30);
    }

    static Stream<Arguments> invalidFields() {
        String nul = "a" + '\0' + "b";
        return Stream.of(
                field("imageUri", b -> b.imageUri(null)),
                field("imageUri", b -> b.imageUri("")),
                field("imageUri", b -> b.imageUri("   ")),
                field("imageUri", b -> b.imageUri("ftp://host/bucket/key")),
                field("imageUri", b -> b.imageUri("file:///etc/passwd")),
                field("imageUri", b -> b.imageUri("s3://bucket")),
                field("imageUri", b -> b.imageUri("s3://bucket/")),
                field("imageUri", b -> b.imageUri("s3://Bad_Bucket/key")),
                field("imageUri", b -> b.imageUri("s3://bucket/" + "k".repeat(1025))),
                field("imageUri", b -> b.imageUri("s3://bucket/a" + nul)),
                field("imageUri", b -> b.imageUri("http://127.0.0.1:1/bucket")),
                field("volumeName", b -> b.volumeName(null)),
                field("volumeName", b -> b.volumeName("")),
                field("volumeName", b -> b.volumeName("vm 1")),
                field("volumeName", b -> b.volumeName("x".repeat(128))),
                field("volumeSizeBytes", b -> b.volumeSizeBytes(0)),
                field("volumeSizeBytes", b -> b.volumeSizeBytes(-1)),
                field("volumeSizeBytes", b -> b.volumeSizeBytes(Long.MAX_VALUE)),
                field("format", b -> b.format((org.volprov.image.ImageFormat) null)),
                field("format", b -> b.format("vmdk")),
                field("correlationId", b -> b.correlationId("")),
                field("correlationId", b -> b.correlationId("c".repeat(129))),
                field("correlationId", b -> b.correlationId("line\nbreak")),
                field("labels", b -> b.label("", "v")),
                field("labels", b -> b.label("bad key", "v")),
                field("labels", b -> b.label("k", "v".repeat(257))),
                field("labels", b -> b.label("k", nul)));
    }

    private static Arguments field(String name, Consumer<ProvisionRequest.Builder> breaker) {
        return Arguments.of(name, breaker);
    }

    @ParameterizedTest(name = "[{index}] {0}")
    @MethodSource("invalidFields")
    void invalidField_isRefusedAtSubmit_namingTheField(String field, Consumer<ProvisionRequest.Builder> breaker) {
        assertThatThrownBy(() -> {
            ProvisionRequest.Builder b = valid();
            breaker.accept(b);
            stack.engine.submit(b.build());
        }).isInstanceOfSatisfying(ProvisioningException.class, e -> {
            assertThat(e.code()).isEqualTo(ErrorCode.INVALID_REQUEST);
            assertThat(e.getMessage()).startsWith(field + ":");
        });
    }

    @ParameterizedTest(name = "[{index}] size beyond the engine's maximum")
    @ValueSource(longs = {(1L << 40) + 1, 1L << 45})
    void sizeBeyondTheEngineMaximum_isRefused_namingTheField(long size) {
        assertThatThrownBy(() -> stack.engine.submit(valid().volumeSizeBytes(size).build()))
                .isInstanceOfSatisfying(ProvisioningException.class, e -> {
                    assertThat(e.code()).isEqualTo(ErrorCode.INVALID_REQUEST);
                    assertThat(e.getMessage()).startsWith("volumeSizeBytes:");
                });
    }

    @ParameterizedTest(name = "[{index}] http host other than the source's endpoint")
    @ValueSource(strings = {"http://169.254.169.254/latest/meta-data", "https://evil.example.com/bucket/key",
            "http://localhost:9/bucket/key"})
    void foreignHost_isRefused_soNoRequestFetchesFromAnArbitraryHost(String uri) {
        assertThatThrownBy(() -> stack.engine.submit(valid().imageUri(uri).build()))
                .isInstanceOfSatisfying(ProvisioningException.class, e -> {
                    assertThat(e.code()).isEqualTo(ErrorCode.INVALID_REQUEST);
                    assertThat(e.getMessage()).startsWith("imageUri:");
                });
    }

    @ParameterizedTest(name = "[{index}] {0}")
    @ValueSource(strings = {"../x", "a/../../etc/passwd", "a'b", "<x/>", "a\"b", "-rf", "--help", ".", "..",
            ".hidden", "a/b", "a;rm -rf /", "$(reboot)", "`id`", "a&b", "snapshot", "pvmove0", "x_mlog",
            "a\u0000b", "é"})
    void hostileVolumeName_isRefused_andNeverReachesLibvirt(String name) {
        assertThatThrownBy(() -> stack.engine.submit(valid().volumeName(name).build()))
                .isInstanceOfSatisfying(ProvisioningException.class, e -> {
                    assertThat(e.code()).isEqualTo(ErrorCode.INVALID_REQUEST);
                    assertThat(e.getMessage()).startsWith("volumeName:");
                });
        // Defence in depth: the backend checks names again before they reach XML or a path.
        assertThatThrownBy(() -> stack.backend.create(name, 1 << 20))
                .isInstanceOfSatisfying(ProvisioningException.class,
                        e -> assertThat(e.code()).isEqualTo(ErrorCode.INVALID_REQUEST));
        assertThatThrownBy(() -> stack.backend.delete(name)).isInstanceOf(ProvisioningException.class);
    }

    @ParameterizedTest(name = "300 characters")
    @ValueSource(ints = 300)
    void overlongVolumeName_isRefused(int length) {
        hostileVolumeName_isRefused_andNeverReachesLibvirt("v".repeat(length));
    }
}
