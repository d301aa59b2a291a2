package org.volprov.minio;

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

class MinioSourceConfigTest {

    private static void assertInvalid(Runnable r, String field) {
        assertThatThrownBy(r::run).isInstanceOf(ProvisioningException.class)
                .hasMessageStartingWith(field + ":")
                .satisfies(e -> assertThat(((ProvisioningException) e).code()).isEqualTo(ErrorCode.INVALID_REQUEST));
    }

    @Test
    void build_withoutEndpointOrCredentials_isRejectedNamingTheField() {
        assertInvalid(() -> MinioSourceConfig.builder().credentials("a", "b").build(), "endpoint");
        assertInvalid(() -> MinioSourceConfig.builder().endpoint("http://h:9000").build(), "credentials");
        MinioSourceConfig env = MinioSourceConfig.builder().endpoint("http://h:9000/").environmentCredentials().build();
        assertThat(env.endpoint()).contains(URI.create("http://h:9000"));
        assertThat(env.region()).isEqualTo("us-east-1");
        assertThat(env.toString()).contains("environment");
    }

    @Test
    void endpoint_whenNotHttpOrWithPath_isRejectedNamingEndpoint() {
        assertInvalid(() -> MinioSourceConfig.builder().endpoint("ftp://host"), "endpoint");
        assertInvalid(() -> MinioSourceConfig.builder().endpoint("http://host:9000/bucket"), "endpoint");
        assertInvalid(() -> MinioSourceConfig.builder().endpoint("http://user:pw@host"), "endpoint");
        assertInvalid(() -> MinioSourceConfig.builder().endpoint("not a uri"), "endpoint");
    }

    @Test
    void setters_whenValueBreaksRule_nameTheField() {
        assertInvalid(() -> MinioSourceConfig.builder().region(" "), "region");
        assertInvalid(() -> MinioSourceConfig.builder().credentials("", "s"), "accessKey");
        assertInvalid(() -> MinioSourceConfig.builder().credentials("a", ""), "secretKey");
        assertInvalid(() -> MinioSourceConfig.builder().connectTimeout(Duration.ZERO), "connectTimeout");
        assertInvalid(() -> MinioSourceConfig.builder().readTimeout(Duration.ofSeconds(-1)), "readTimeout");
    }

    @Test
    void toString_neverShowsTheSecretKey() {
        String secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        MinioSourceConfig c = MinioSourceConfig.builder().endpoint("http://127.0.0.1:9000")
                .credentials("AKIAIOSFODNN7EXAMPLE", secret).build();
        assertThat(c.toString()).doesNotContain(secret).doesNotContain("AKIAIOSFODNN7EXAMPLE").contains("AKIA****");
        try (MinioImageSource s = MinioImageSource.create(c)) {
            assertThat(s.toString()).doesNotContain(secret);
        }
    }

    @Test
    void trustCaFile_whenPemIsValid_isAccepted() throws Exception {
        Path pem = Path.of(getClass().getResource("/test-ca.pem").toURI());
        MinioSourceConfig c = MinioSourceConfig.builder().endpoint("https://s3.internal:9000").trustCaFile(pem)
                .credentials("a", "b").build();
        assertThat(c.trustMode()).isEqualTo(MinioSourceConfig.TrustMode.CA_FILE);
        assertThat(c.caFile()).contains(pem.toAbsolutePath());
        MinioImageSource.create(c).close(); // the trust managers load into the HTTP client
    }

    @Test
    void trustCaFile_whenMissingOrNotPem_isRejectedNamingCaFile(@TempDir Path dir) throws Exception {
        assertInvalid(() -> MinioSourceConfig.builder().trustCaFile(dir.resolve("absent.pem")), "caFile");
        Path junk = Files.writeString(dir.resolve("junk.pem"), "not a certificate");
        assertInvalid(() -> MinioSourceConfig.builder().trustCaFile(junk), "caFile");
    }

    @Test
    void trustOptions_withPlainHttpEndpoint_areRejected() {
        assertInvalid(() -> MinioSourceConfig.builder().endpoint("http://h:9000").trustAllCertificates()
                .credentials("a", "b").build(), "endpoint");
    }

    @Test
    void trustAll_onlyWhenAskedFor() {
        MinioSourceConfig c = MinioSourceConfig.builder().endpoint("https://h:9000").trustAllCertificates()
                .credentials("a", "b").build();
        assertThat(c.trustMode()).isEqualTo(MinioSourceConfig.TrustMode.TRUST_ALL);
        MinioImageSource.create(c).close();
    }

    @Test
    void open_withNegativeArguments_isRejectedWithoutARequest() {
        try (MinioImageSource s = MinioImageSource.create(MinioSourceConfig.builder().endpoint("http://127.0.0.1:1")
                .credentials("a", "b").build())) {
            assertThatThrownBy(() -> s.open(new org.volprov.ImageRef("bucket", "k"), "etag", -1, 1))
                    .isInstanceOf(IllegalArgumentException.class);
            assertThat(s.open(new org.volprov.ImageRef("bucket", "k"), "etag", 5, 0)).isEmpty();
        }
    }
}
