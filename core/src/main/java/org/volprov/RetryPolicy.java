package org.volprov;

import java.time.Duration;
import java.util.Objects;

/**
 * How transient failures ({@link ErrorCode#retryable()}, I/O errors) are retried: exponential
 * backoff from {@code initialBackoff}, capped at {@code maxBackoff}, with up to {@code jitter} of
 * each delay randomised away, at most {@code maxAttempts} attempts in a row without progress and
 * no new attempt after {@code maxElapsed}.
 */
public record RetryPolicy(int maxAttempts, Duration initialBackoff, Duration maxBackoff, Duration maxElapsed,
        double jitter) {

    /** 6 attempts, 500 ms doubling to 15 s, 2 minutes in all, 50 % jitter. */
    public static final RetryPolicy DEFAULT =
            new RetryPolicy(6, Duration.ofMillis(500), Duration.ofSeconds(15), Duration.ofMinutes(2), 0.5);

    /** One attempt: no retry. */
    public static final RetryPolicy NONE = new RetryPolicy(1, Duration.ZERO, Duration.ZERO, Duration.ZERO, 0);

    public RetryPolicy {
        if (maxAttempts < 1) {
            throw new IllegalArgumentException("maxAttempts must be at least 1");
        }
        Objects.requireNonNull(initialBackoff, "initialBackoff");
        Objects.requireNonNull(maxBackoff, "maxBackoff");
        Objects.requireNonNull(maxElapsed, "maxElapsed");
        if (initialBackoff.isNegative() || maxBackoff.isNegative() || maxElapsed.isNegative()) {
            throw new IllegalArgumentException("durations must not be negative");
        }
        if (maxBackoff.compareTo(initialBackoff) < 0) {
            throw new IllegalArgumentException("maxBackoff must be at least initialBackoff");
        }
        if (!(jitter >= 0 && jitter <= 1)) {
            throw new IllegalArgumentException("jitter must be between 0 and 1");
        }
    }

    /**
     * The delay before attempt {@code attempt + 1} after {@code attempt} failures (1-based), given a
     * random number in [0, 1).
     */
    public Duration backoff(int attempt, double random) {
        long base = initialBackoff.toNanos();
        long max = maxBackoff.toNanos();
        long delay = base;
        for (int i = 1; i < attempt && delay < max; i++) {
            delay = Math.min(max, delay * 2);
        }
        delay = Math.min(max, delay);
        long jittered = (long) (delay * (1 - jitter * random));
        return Duration.ofNanos(jittered);
    }
}
