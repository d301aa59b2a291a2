package org.volprov;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.volprov.image.ImageFormat;

class ProvisionRequestTest {

    private static ProvisionRequest.Builder valid() {
        return ProvisionRequest.builder().imageUri("s3://images/ubuntu.qcow2").volumeName("vm-1")
                .volumeSizeBytes(1L << 30);
    }

    private static void assertRefused(Consumer<ProvisionRequest.Builder> change, String field) {
        ProvisionRequest.Builder b = valid();
        assertThatThrownBy(() -> {
            change.accept(b);
            b.build();
        })
                .isInstanceOf(ProvisioningException.class)
                .satisfies(e -> assertThat(((ProvisioningException) e).code()).isEqualTo(ErrorCode.INVALID_REQUEST))
                .hasMessageStartingWith(field + ":");
    }

    @Test
    void build_whenEveryFieldValid_keepsThem() {
        ProvisionRequest r = valid().format("qcow2").correlationId("c-1").label("team", "infra").build();
        assertThat(r.format()).isEqualTo(ImageFormat.QCOW2);
        assertThat(r.correlation()).contains("c-1");
        assertThat(r.labels()).containsEntry("team", "infra");
    }

    @Test
    void build_defaultsFormatToAuto() {
        assertThat(valid().build().format()).isEqualTo(ImageFormat.AUTO);
    }

    @ParameterizedTest
    @ValueSource(strings = {"", " ", "ftp://images/x", "s3://", "s3://images", "s3://images/", "s3://Bad_Bucket/x",
            "s3://ab/x", "http://", "images/x.qcow2", "file:///etc/passwd"})
    void imageUri_whenMalformed_isRefusedNamingTheField(String uri) {
        assertRefused(b -> b.imageUri(uri), "imageUri");
    }

    @Test
    void imageUri_whenNull_isRefused() {
        assertRefused(b -> b.imageUri(null), "imageUri");
    }

    @Test
    void imageUri_whenTooLong_isRefused() {
        assertRefused(b -> b.imageUri("s3://images/" + "k".repeat(2100)), "imageUri");
    }

    @Test
    void imageUri_whenKeyHasControlCharacters_isRefused() {
        assertRefused(b -> b.imageUri("s3://images/a\u0001b"), "imageUri");
    }

    @ParameterizedTest
    @ValueSource(strings = {"", " ", "-rf", ".hidden", ".", "..", "../x", "a/b", "a'b", "<x/>", "a b", "a\u0000b",
            "vm;rm", "snapshot", "snapshot1", "pvmove0", "x_tmeta", "a_vdata", "b_wcorig", "é"})
    void volumeName_whenUnsafe_isRefusedNamingTheField(String name) {
        assertRefused(b -> b.volumeName(name), "volumeName");
    }

    @Test
    void volumeName_whenLongerThan127_isRefused() {
        assertRefused(b -> b.volumeName("v".repeat(128)), "volumeName");
        assertThat(valid().volumeName("v".repeat(127)).build().volumeName()).hasSize(127);
    }

    @ParameterizedTest
    @ValueSource(strings = {"vm-1", "VM_2", "a.b+c-d", "0", "_x", "my-snapshot", "vm_pvmove"})
    void volumeName_whenSafe_isAccepted(String name) {
        assertThat(valid().volumeName(name).build().volumeName()).isEqualTo(name);
    }

    @ParameterizedTest
    @ValueSource(longs = {0, -1, Long.MIN_VALUE, (1L << 50) + 1})
    void volumeSize_whenOutOfRange_isRefused(long size) {
        assertRefused(b -> b.volumeSizeBytes(size), "volumeSizeBytes");
    }

    @Test
    void format_whenUnknownOrNull_isRefused() {
        assertRefused(b -> b.format("vmdk"), "format");
        assertRefused(b -> b.format((ImageFormat) null), "format");
    }

    @Test
    void correlationId_whenBlankTooLongOrControl_isRefused() {
        assertRefused(b -> b.correlationId(" "), "correlationId");
        assertRefused(b -> b.correlationId("c".repeat(129)), "correlationId");
        assertRefused(b -> b.correlationId("a\nb"), "correlationId");
    }

    @Test
    void labels_whenKeyOrValueBad_areRefused() {
        assertRefused(b -> b.label("", "x"), "labels");
        assertRefused(b -> b.label("bad key", "x"), "labels");
        assertRefused(b -> b.label("k", "v".repeat(257)), "labels");
        assertRefused(b -> b.label("k", null), "labels");
        assertRefused(b -> {
            for (int i = 0; i < 33; i++) {
                b.label("k" + i, "v");
            }
        }, "labels");
    }
}
