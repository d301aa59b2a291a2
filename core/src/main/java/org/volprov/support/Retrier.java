package org.volprov.support;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.Supplier;
import org.volprov.Cancellation;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;
import org.volprov.RetryPolicy;
import org.volprov.Sleeper;

/** Runs operations under a {@link RetryPolicy}, sleeping through the injected {@link Sleeper}. */
public final class Retrier {
    private static final Duration SLICE = Duration.ofMillis(200);

    private final RetryPolicy policy;
    private final Clock clock;
    private final Sleeper sleeper;

    public Retrier(RetryPolicy policy, Clock clock, Sleeper sleeper) {
        this.policy = policy;
        this.clock = clock;
        this.sleeper = sleeper;
    }

    /** Calls {@code op} until it succeeds, fails with a code that is not retryable, or the policy gives up. */
    public <T> T call(String what, Supplier<T> op, Cancellation cancellation) {
        Instant start = clock.instant();
        for (int failures = 0; ; ) {
            cancellation.checkpoint();
            try {
                return op.get();
            } catch (ProvisioningException e) {
                if (!e.code().retryable()) {
                    throw e;
                }
                failures++;
                pause(what, failures, start, e, cancellation);
            }
        }
    }

    /**
     * After the {@code failures}-th failure in a row: sleeps the backoff, or throws
     * {@code SOURCE_UNAVAILABLE} when the policy's attempts or time are used up.
     */
    public void pause(String what, int failures, Instant start, Exception cause, Cancellation cancellation) {
        Duration elapsed = Duration.between(start, clock.instant());
        if (failures >= policy.maxAttempts() || elapsed.compareTo(policy.maxElapsed()) >= 0) {
            throw new ProvisioningException(ErrorCode.SOURCE_UNAVAILABLE, what + " failed after " + failures
                    + (failures == 1 ? " attempt" : " attempts") + " in " + elapsed.toMillis() + " ms: "
                    + cause.getMessage(), cause);
        }
        Duration delay = policy.backoff(failures, ThreadLocalRandom.current().nextDouble());
        sleep(delay, cancellation);
    }

    private void sleep(Duration delay, Cancellation cancellation) {
        Duration left = delay;
        try {
            while (!left.isNegative() && !left.isZero()) {
                cancellation.checkpoint();
                Duration step = left.compareTo(SLICE) < 0 ? left : SLICE;
                sleeper.sleep(step);
                left = left.minus(step);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new ProvisioningException(ErrorCode.INTERRUPTED, "interrupted while waiting to retry", e);
        }
        cancellation.checkpoint();
    }
}
