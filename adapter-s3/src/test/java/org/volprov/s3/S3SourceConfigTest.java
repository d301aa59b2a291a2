package org.volprov.s3;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;

class S3SourceConfigTest {

    private static void assertInvalid(Runnable r, String field) {
        assertThatThrownBy(r::run).isInstanceOf(ProvisioningException.class)
                .hasMessageStartingWith(field + ":")
                .satisfies(e -> assertThat(((ProvisioningException) e).code()).isEqualTo(ErrorCode.INVALID_REQUEST));
    }

    @Test
    void build_withDefaults_usesDefaultChainUsEast1AndSystemTrust() {
        S3SourceConfig c = S3SourceConfig.builder().build();
        assertThat(c.endpoint()).isEmpty();
        assertThat(c.region()).isEqualTo("us-east-1");
        assertThat(c.hasStaticCredentials()).isFalse();
        assertThat(c.pathStyle()).isFalse();
        assertThat(c.trustMode()).isEqualTo(S3SourceConfig.TrustMode.SYSTEM);
        assertThat(c.toString()).contains("default-chain");
    }

    @Test
    void build_withEndpoint_defaultsToPathStyleAndNormalisesTrailingSlash() {
        S3SourceConfig c = S3SourceConfig.builder().endpoint("http://127.0.0.1:9000/").build();
        assertThat(c.endpoint()).contains(URI.create("http://127.0.0.1:9000"));
        assertThat(c.pathStyle()).isTrue();
        assertThat(S3SourceConfig.builder().endpoint("http://h:1").pathStyle(false).build().pathStyle()).isFalse();
    }

    @Test
    void endpoint_whenNotHttpOrWithPath_isRejectedNamingEndpoint() {
        assertInvalid(() -> S3SourceConfig.builder().endpoint("ftp://host"), "endpoint");
        assertInvalid(() -> S3SourceConfig.builder().endpoint("http://host:9000/bucket"), "endpoint");
        assertInvalid(() -> S3SourceConfig.builder().endpoint("http://user:pw@host"), "endpoint");
        assertInvalid(() -> S3SourceConfig.builder().endpoint("not a uri"), "endpoint");
    }

    @Test
    void setters_whenValueBreaksRule_nameTheField() {
        assertInvalid(() -> S3SourceConfig.builder().region(" "), "region");
        assertInvalid(() -> S3SourceConfig.builder().credentials("", "s"), "accessKey");
        assertInvalid(() -> S3SourceConfig.builder().credentials("a", ""), "secretKey");
        assertInvalid(() -> S3SourceConfig.builder().connectTimeout(Duration.ZERO), "connectTimeout");
        assertInvalid(() -> S3SourceConfig.builder().readTimeout(Duration.ofSeconds(-1)), "readTimeout");
        assertInvalid(() -> S3SourceConfig.builder().maxConnections(0), "maxConnections");
    }

    @Test
    void toString_neverShowsTheSecretKey() {
        String secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        S3SourceConfig c = S3SourceConfig.builder().endpoint("http://127.0.0.1:9000")
                .credentials("AKIAIOSFODNN7EXAMPLE", secret).build();
        assertThat(c.toString()).doesNotContain(secret).doesNotContain("AKIAIOSFODNN7EXAMPLE").contains("AKIA****");
        try (S3ImageSource s = S3ImageSource.create(c)) {
            assertThat(s.toString()).doesNotContain(secret);
        }
    }

    @Test
    void trustCaFile_whenPemIsValid_isAccepted() throws Exception {
        Path pem = Path.of(getClass().getResource("/test-ca.pem").toURI());
        S3SourceConfig c = S3SourceConfig.builder().endpoint("https://s3.internal:9000").trustCaFile(pem).build();
        assertThat(c.trustMode()).isEqualTo(S3SourceConfig.TrustMode.CA_FILE);
        assertThat(c.caFile()).contains(pem.toAbsolutePath());
        S3ImageSource.create(c).close(); // the trust managers load into the HTTP client
    }

    @Test
    void trustCaFile_whenMissingOrNotPem_isRejectedNamingCaFile(@TempDir Path dir) throws Exception {
        assertInvalid(() -> S3SourceConfig.builder().trustCaFile(dir.resolve("absent.pem")), "caFile");
        Path junk = Files.writeString(dir.resolve("junk.pem"), "not a certificate");
        assertInvalid(() -> S3SourceConfig.builder().trustCaFile(junk), "caFile");
    }

    @Test
    void trustOptions_withPlainHttpEndpoint_areRejected() {
        assertInvalid(() -> S3SourceConfig.builder().endpoint("http://h:9000").trustAllCertificates().build(), "endpoint");
    }

    @Test
    void trustAll_onlyWhenAskedFor() {
        S3SourceConfig c = S3SourceConfig.builder().endpoint("https://h:9000").trustAllCertificates().build();
        assertThat(c.trustMode()).isEqualTo(S3SourceConfig.TrustMode.TRUST_ALL);
        S3ImageSource.create(c).close();
    }

    @Test
    void open_withNegativeArguments_isRejectedWithoutARequest() {
        try (S3ImageSource s = S3ImageSource.create(S3SourceConfig.builder().endpoint("http://127.0.0.1:1")
                .credentials("a", "b").build())) {
            assertThatThrownBy(() -> s.open(new org.volprov.ImageRef("bucket", "k"), "etag", -1, 1))
                    .isInstanceOf(IllegalArgumentException.class);
            assertThat(s.open(new org.volprov.ImageRef("bucket", "k"), "etag", 5, 0)).isEmpty();
        }
    }
}
