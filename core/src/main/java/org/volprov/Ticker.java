package org.volprov;

/**
 * A source of nanoseconds for measuring elapsed time: the engine's progress throttle, the spacing of
 * its job-store retries, close's grace period and the metrics' timings. Injected beside the
 * {@link java.time.Clock} (which gives timestamps and deadlines), so that tests advance time instead
 * of waiting for it. Only differences between two readings mean anything. Thread-safe.
 */
@FunctionalInterface
public interface Ticker {
    /** {@link System#nanoTime()}. */
    Ticker SYSTEM = System::nanoTime;

    /** Nanoseconds from an arbitrary origin; never decreases. */
    long nanos();
}
