package org.volprov;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import org.junit.jupiter.api.Test;

class RetryPolicyTest {
    private final RetryPolicy policy =
            new RetryPolicy(10, Duration.ofMillis(100), Duration.ofSeconds(1), Duration.ofMinutes(1), 0.5);

    @Test
    void backoff_doublesUpToTheCap() {
        assertThat(policy.backoff(1, 0)).isEqualTo(Duration.ofMillis(100));
        assertThat(policy.backoff(2, 0)).isEqualTo(Duration.ofMillis(200));
        assertThat(policy.backoff(4, 0)).isEqualTo(Duration.ofMillis(800));
        assertThat(policy.backoff(5, 0)).isEqualTo(Duration.ofSeconds(1));
        assertThat(policy.backoff(60, 0)).isEqualTo(Duration.ofSeconds(1));
    }

    @Test
    void jitter_takesAwayUpToItsShare() {
        assertThat(policy.backoff(3, 0.999)).isBetween(Duration.ofMillis(200), Duration.ofMillis(201));
        assertThat(policy.backoff(3, 0.5)).isEqualTo(Duration.ofMillis(300));
    }

    @Test
    void invalidSettings_areRefused() {
        assertThatThrownBy(() -> new RetryPolicy(0, Duration.ZERO, Duration.ZERO, Duration.ZERO, 0))
                .hasMessageContaining("maxAttempts");
        assertThatThrownBy(() -> new RetryPolicy(1, Duration.ofSeconds(2), Duration.ofSeconds(1), Duration.ZERO, 0))
                .hasMessageContaining("maxBackoff");
        assertThatThrownBy(() -> new RetryPolicy(1, Duration.ZERO, Duration.ZERO, Duration.ZERO, 1.5))
                .hasMessageContaining("jitter");
    }
}
