package org.volprov;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.net.URI;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class ImageRefTest {
    private static final Optional<URI> ENDPOINT = Optional.of(URI.create("http://127.0.0.1:9000"));

    @Test
    void s3Uri_keepsKeyLiterally() {
        ImageRef r = ImageRef.parse("s3://images/ubuntu 24.04/disk%20a.qcow2");
        assertThat(r.bucket()).isEqualTo("images");
        assertThat(r.key()).isEqualTo("ubuntu 24.04/disk%20a.qcow2");
        assertThat(r.checksumSibling().key()).isEqualTo("ubuntu 24.04/disk%20a.qcow2.sha256");
    }

    @Test
    void httpUri_onTheEndpoint_isDecoded() {
        ImageRef r = ImageRef.parse("http://127.0.0.1:9000/images/ubuntu%2024.04/disk.qcow2", ENDPOINT);
        assertThat(r).isEqualTo(new ImageRef("images", "ubuntu 24.04/disk.qcow2"));
    }

    @Test
    void httpUri_onAnotherHostOrPort_isRefused() {
        for (String uri : new String[] {"http://169.254.169.254:9000/images/x", "http://127.0.0.1:9001/images/x",
                "http://127.0.0.1/images/x", "https://evil.example:9000/images/x"}) {
            assertThatThrownBy(() -> ImageRef.parse(uri, ENDPOINT)).as(uri)
                    .isInstanceOf(ProvisioningException.class)
                    .hasMessageStartingWith("imageUri:");
        }
    }

    @Test
    void httpUri_withoutEndpoint_isRefused() {
        assertThatThrownBy(() -> ImageRef.parse("http://127.0.0.1:9000/images/x"))
                .isInstanceOf(ProvisioningException.class).hasMessageContaining("s3://bucket/key");
    }

    @Test
    void httpUri_withUserInfoQueryOrFragment_isRefused() {
        for (String uri : new String[] {"http://u:p@127.0.0.1:9000/images/x", "http://127.0.0.1:9000/images/x?a=b",
                "http://127.0.0.1:9000/images/x#f"}) {
            assertThatThrownBy(() -> ImageRef.parse(uri, ENDPOINT)).as(uri).isInstanceOf(ProvisioningException.class);
        }
    }

    @Test
    void defaultPorts_matchTheEndpoint() {
        assertThat(ImageRef.parse("https://s3.local/images/x", Optional.of(URI.create("https://s3.local:443"))).key())
                .isEqualTo("x");
    }

    @Test
    void keysWithDotSegmentsOrEmptySegments_areRefusedAtBuild_withInvalidRequest() {
        for (String uri : new String[] {"s3://images/a/../b.qcow2", "s3://images/../b.qcow2", "s3://images/a/./b.qcow2",
                "s3://images/./b", "s3://images/a/..", "s3://images/a//b.qcow2", "s3://images//b.qcow2",
                "s3://images/a/", "s3://images/..", "http://127.0.0.1:9000/images/a/%2e%2e/b"}) {
            assertThatThrownBy(() -> ProvisionRequest.builder().imageUri(uri).volumeName("vm-1")
                    .volumeSizeBytes(1L << 30).build()).as(uri)
                    .isInstanceOfSatisfying(ProvisioningException.class, e -> {
                        assertThat(e.code()).isEqualTo(ErrorCode.INVALID_REQUEST);
                        assertThat(e.getMessage()).startsWith("imageUri:");
                    });
            assertThatThrownBy(() -> ImageRef.parse(uri, ENDPOINT)).as(uri).isInstanceOf(ProvisioningException.class);
        }
    }

    @Test
    void keysWithDotsThatAreNotWholeSegments_areKept() {
        for (String key : new String[] {"a/..b/c.qcow2", "a/.../c", ".hidden/x.qcow2", "a/b..c", "x.y/z..qcow2"}) {
            assertThat(ImageRef.parse("s3://images/" + key).key()).isEqualTo(key);
        }
    }
}
