package org.volprov.redis;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;

class RedisConfigTest {

    @Test
    void uri_withCredentialsDatabaseAndTls_isParsedAndToStringHidesThePassword() {
        RedisConfig c = RedisConfig.builder().uri("rediss://ops:s3cr%40t@redis.internal:6380/3").hostId("hv-1").build();
        assertThat(c.host()).isEqualTo("redis.internal");
        assertThat(c.port()).isEqualTo(6380);
        assertThat(c.database()).isEqualTo(3);
        assertThat(c.tls()).isTrue();
        assertThat(c.user()).isEqualTo("ops");
        assertThat(c.password()).isEqualTo("s3cr@t");
        assertThat(c.endpoint()).isEqualTo("rediss://redis.internal:6380/3");
        assertThat(c.toString()).doesNotContain("s3cr").contains("password=****", "hostId=hv-1");
    }

    @Test
    void uri_withPasswordOnly_setsNoUser() {
        RedisConfig c = RedisConfig.builder().uri("redis://:pw@127.0.0.1").build();
        assertThat(c.user()).isNull();
        assertThat(c.password()).isEqualTo("pw");
        assertThat(c.port()).isEqualTo(6379);
        assertThat(c.database()).isZero();
    }

    @Test
    void defaults_renewAThirdOfTheLeaseAndNameTheLocalHost() {
        RedisConfig c = RedisConfig.builder().leaseTime(Duration.ofSeconds(9)).build();
        assertThat(c.renewInterval()).isEqualTo(Duration.ofSeconds(3));
        assertThat(c.hostId()).matches("[A-Za-z0-9._:-]+");
        assertThat(c.keyPrefix()).isEqualTo("volprov");
        assertThat(c.toString()).doesNotContain("password");
    }

    @Test
    void badOptions_areRefusedWithInvalidRequestNamingTheOption() {
        assertInvalid(() -> RedisConfig.builder().uri("http://x:6379"), "uri");
        assertInvalid(() -> RedisConfig.builder().uri("redis://x:6379/zero"), "uri");
        assertInvalid(() -> RedisConfig.builder().uri("redis://:pw@:6379 x"), "uri");
        assertInvalid(() -> RedisConfig.builder().port(0), "port");
        assertInvalid(() -> RedisConfig.builder().database(-1), "database");
        assertInvalid(() -> RedisConfig.builder().keyPrefix("a b"), "keyPrefix");
        assertInvalid(() -> RedisConfig.builder().keyPrefix("x*"), "keyPrefix");
        assertInvalid(() -> RedisConfig.builder().hostId(""), "hostId");
        assertInvalid(() -> RedisConfig.builder().leaseTime(Duration.ofMillis(10)), "leaseTime");
        assertInvalid(() -> RedisConfig.builder().renewInterval(Duration.ZERO), "renewInterval");
        assertInvalid(() -> RedisConfig.builder().probeInterval(Duration.ofSeconds(-1)), "probeInterval");
        assertInvalid(() -> RedisConfig.builder().maxConnections(0), "maxConnections");
        assertInvalid(() -> RedisConfig.builder().leaseTime(Duration.ofSeconds(1))
                .renewInterval(Duration.ofMillis(501)).build(), "renewInterval");
        assertThat(RedisConfig.builder().leaseTime(Duration.ofSeconds(1)).renewInterval(Duration.ofMillis(500))
                .build().renewInterval()).isEqualTo(Duration.ofMillis(500));
    }

    @Test
    void badUri_messageNeverEchoesThePassword() {
        assertThatThrownBy(() -> RedisConfig.builder().uri("redis://:hunter2@host:6379/ x"))
                .hasMessageNotContaining("hunter2");
    }

    private static void assertInvalid(Runnable r, String field) {
        assertThatThrownBy(r::run).isInstanceOfSatisfying(ProvisioningException.class, e -> {
            assertThat(e.code()).isEqualTo(ErrorCode.INVALID_REQUEST);
            assertThat(e.getMessage()).startsWith(field);
        });
    }
}
