package org.volprov.support;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import org.junit.jupiter.api.Test;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;

class RedactionTest {
    private static final String SECRET = "hunter2-S3cr3t";

    @Test
    void redact_masksTheUserInfoPassword_ofEveryKindOfUri() {
        assertThat(Redaction.redact("redis://ops:" + SECRET + "@redis.internal:6380/3"))
                .isEqualTo("redis://ops:****@redis.internal:6380/3");
        assertThat(Redaction.redact("rediss://:" + SECRET + "@redis.internal"))
                .isEqualTo("rediss://:****@redis.internal");
        assertThat(Redaction.redact("qemu+ssh://root:" + SECRET + "@hv_17/system?keyfile=/root/.ssh/id"))
                .isEqualTo("qemu+ssh://root:****@hv_17/system?keyfile=/root/.ssh/id");
        assertThat(Redaction.redact("jdbc:postgresql://volprov:" + SECRET + "@db:5432/jobs"))
                .isEqualTo("jdbc:postgresql://volprov:****@db:5432/jobs");
        assertThat(Redaction.redact("https://AKIA:" + SECRET + "@minio.internal:9000"))
                .isEqualTo("https://AKIA:****@minio.internal:9000");
        assertThat(Redaction.redact("//admin:" + SECRET + "@kvm7/system")).isEqualTo("//admin:****@kvm7/system");
    }

    @Test
    void redact_masksPasswordsThatHoldReservedCharacters() {
        // Users type these unencoded: the whole password goes, up to the last '@' of the authority.
        for (String password : new String[] {"p/w" + SECRET, "p@w" + SECRET, "p?w#" + SECRET, "p:w" + SECRET}) {
            String redacted = Redaction.redact("qemu+tcp://admin:" + password + "@kvm7/system");
            assertThat(redacted).as(password).doesNotContain(SECRET).startsWith("qemu+tcp://admin:****@");
        }
    }

    @Test
    void redact_masksPasswordLikeParameters_inQueriesAndPropertyLists() {
        assertThat(Redaction.redact("jdbc:postgresql://db/jobs?user=u&password=" + SECRET + "&ssl=true"))
                .isEqualTo("jdbc:postgresql://db/jobs?user=u&password=****&ssl=true");
        assertThat(Redaction.redact("jdbc:postgresql://db/jobs?sslpassword=" + SECRET))
                .isEqualTo("jdbc:postgresql://db/jobs?sslpassword=****");
        assertThat(Redaction.redact("jdbc:sqlserver://db;user=u;Password=" + SECRET + ";encrypt=true"))
                .isEqualTo("jdbc:sqlserver://db;user=u;Password=****;encrypt=true");
        assertThat(Redaction.redact("https://s3/b/k?X-Amz-Security-Token=" + SECRET + "&X-Amz-Signature=" + SECRET))
                .doesNotContain(SECRET).contains("X-Amz-Security-Token=****", "X-Amz-Signature=****");
        assertThat(Redaction.redact("esx://root@h/?pwd=" + SECRET)).isEqualTo("esx://root@h/?pwd=****");
    }

    @Test
    void redact_leavesTextWithoutSecretsAlone() {
        for (String text : new String[] {"qemu:///system", "qemu+ssh://root@kvm7/system", "http://127.0.0.1:9000",
                "s3://images/ubuntu 24.04/disk.qcow2", "bypass=1&keyfile=/x", "admin@example.com wrote: x:y"}) {
            assertThat(Redaction.redact(text)).isEqualTo(text);
        }
        assertThat(Redaction.redact(null)).isNull();
    }

    @Test
    void redact_findsUrisInFreeText() {
        String message = "no connection driver available for nosuchdriver://admin:" + SECRET
                + "@kvm7/system (and again: redis://:" + SECRET + "@r:6379)";
        assertThat(Redaction.redact(message)).doesNotContain(SECRET)
                .contains("nosuchdriver://admin:****@kvm7/system", "redis://:****@r:6379");
    }

    @Test
    void redactedCause_keepsACleanCause_andReplacesAChainThatQuotesASecret() {
        IOException clean = new IOException("connection refused");
        assertThat(Redaction.redactedCause(clean)).isSameAs(clean);

        IllegalStateException leaky = new IllegalStateException("outer",
                new IOException("cannot open qemu+tcp://root:" + SECRET + "@h/system"));
        Throwable redacted = Redaction.redactedCause(leaky);
        for (Throwable t = redacted; t != null; t = t.getCause()) {
            assertThat(t.getMessage()).doesNotContain(SECRET);
            assertThat(String.valueOf(t)).doesNotContain(SECRET);
        }
        assertThat(redacted.getMessage()).startsWith(IllegalStateException.class.getName());
        assertThat(redacted.getCause().getMessage()).startsWith(IOException.class.getName()).contains("root:****@h");
        assertThat(redacted.getStackTrace()).isEqualTo(leaky.getStackTrace());
    }

    @Test
    void httpEndpoint_neverEchoesAPassword_inItsMessages() {
        for (String endpoint : new String[] {"https://AKIA:" + SECRET + "@minio.internal:9000",
                "ftp://AKIA:" + SECRET + "@minio.internal", "https://AKIA:" + SECRET + "@minio.internal:9000/bucket",
                "https://AKIA:" + SECRET + "@minio internal:9000", "https://AKIA:" + SECRET + "@[::1"}) {
            assertThatThrownBy(() -> ConfigChecks.httpEndpoint("endpoint", endpoint)).as(endpoint)
                    .isInstanceOfSatisfying(ProvisioningException.class, e -> {
                        assertThat(e.code()).isEqualTo(ErrorCode.INVALID_REQUEST);
                        assertThat(e.getMessage()).startsWith("endpoint:").doesNotContain(SECRET);
                        assertThat(e.toString()).doesNotContain(SECRET);
                        for (Throwable t = e.getCause(); t != null; t = t.getCause()) {
                            assertThat(String.valueOf(t)).doesNotContain(SECRET);
                        }
                    });
        }
    }
}
