package org.volprov.jdbc;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;

class JdbcJobStoreConfigTest {

    private static void refused(Runnable r, String field) {
        assertThatThrownBy(r::run).isInstanceOf(ProvisioningException.class)
                .satisfies(e -> assertThat(((ProvisioningException) e).code()).isEqualTo(ErrorCode.INVALID_REQUEST))
                .hasMessageStartingWith(field + ":");
    }

    @Test
    void toString_neverPrintsThePassword_fromCredentialsOrFromTheUrl() {
        JdbcJobStoreConfig c = JdbcJobStoreConfig.postgres("jdbc:postgresql://db:5432/jobs?user=u&password=s3cr3t")
                .credentials("volprov", "hunter2").schema("volprov").host("hv-1").build();
        assertThat(c.toString()).doesNotContain("hunter2").doesNotContain("s3cr3t").contains("password=****")
                .contains("user=volprov").contains("schema volprov").contains("host=hv-1");
        assertThat(c.location()).doesNotContain("s3cr3t");
        assertThat(JdbcJobStoreConfig.postgres("jdbc:postgresql://u:pw@db/jobs").build().toString()).doesNotContain(":pw@");
    }

    @Test
    void defaults_areTheDocumentedOnes() {
        JdbcJobStoreConfig c = JdbcJobStoreConfig.sqlite(Path.of("state/jobs.db")).build();
        assertThat(c.database()).isEqualTo(JdbcJobStoreConfig.Database.SQLITE);
        assertThat(c.sqliteFile()).contains(Path.of("state/jobs.db").toAbsolutePath());
        assertThat(c.jdbcUrl()).startsWith("jdbc:sqlite:/");
        assertThat(c.host()).isNotBlank();
        assertThat(c.maxPoolSize()).isEqualTo(4);
        assertThat(c.connectionTimeout()).isEqualTo(Duration.ofSeconds(5));
        assertThat(c.busyTimeout()).isEqualTo(Duration.ofSeconds(10));
        assertThat(c.retention()).isEmpty();
        assertThat(c.pruneBatchSize()).isEqualTo(500);
    }

    @Test
    void badValues_areRefusedNamingTheField() {
        refused(() -> JdbcJobStoreConfig.postgres("jdbc:mysql://db/jobs"), "jdbcUrl");
        refused(() -> JdbcJobStoreConfig.postgres(" "), "jdbcUrl");
        refused(() -> JdbcJobStoreConfig.sqlite(Path.of(":memory:")), "file");
        refused(() -> JdbcJobStoreConfig.sqlite(Path.of("jobs.db")).schema("volprov"), "schema");
        refused(() -> JdbcJobStoreConfig.sqlite(Path.of("jobs.db")).credentials("u", "p"), "credentials");
        refused(() -> JdbcJobStoreConfig.postgres("jdbc:postgresql://db/jobs").schema("Volprov; DROP"), "schema");
        refused(() -> JdbcJobStoreConfig.postgres("jdbc:postgresql://db/jobs").schema("1abc"), "schema");
        refused(() -> JdbcJobStoreConfig.sqlite(Path.of("jobs.db")).host(" "), "host");
        refused(() -> JdbcJobStoreConfig.sqlite(Path.of("jobs.db")).host("a\nb"), "host");
        refused(() -> JdbcJobStoreConfig.sqlite(Path.of("jobs.db")).maxPoolSize(0), "maxPoolSize");
        refused(() -> JdbcJobStoreConfig.sqlite(Path.of("jobs.db")).connectionTimeout(Duration.ofMillis(100)),
                "connectionTimeout");
        refused(() -> JdbcJobStoreConfig.sqlite(Path.of("jobs.db")).busyTimeout(Duration.ZERO), "busyTimeout");
        refused(() -> JdbcJobStoreConfig.sqlite(Path.of("jobs.db")).retention(Duration.ofDays(-1), Duration.ofHours(1)),
                "retention");
        refused(() -> JdbcJobStoreConfig.sqlite(Path.of("jobs.db")).pruneBatchSize(0), "pruneBatchSize");
    }

    @Test
    void open_whenTheServerDoesNotAnswer_failsWithBackendFailureNamingTheDatabase() {
        // Port 9 (discard) on loopback: nothing listens there.
        JdbcJobStoreConfig c = JdbcJobStoreConfig.postgres("jdbc:postgresql://127.0.0.1:9/nowhere")
                .credentials("u", "secret-pw").connectionTimeout(Duration.ofSeconds(1)).build();
        assertThatThrownBy(() -> JdbcJobStore.open(c)).isInstanceOf(ProvisioningException.class)
                .satisfies(e -> assertThat(((ProvisioningException) e).code()).isEqualTo(ErrorCode.BACKEND_FAILURE))
                .hasMessageContaining("127.0.0.1:9/nowhere")
                .satisfies(e -> assertThat(e.getMessage()).doesNotContain("secret-pw"));
    }
}
