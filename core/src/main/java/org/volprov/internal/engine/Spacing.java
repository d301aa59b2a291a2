package org.volprov.internal.engine;

import org.volprov.Ticker;

/**
 * The pace of retries against a job store that failed: an operation is due again once the interval
 * has passed on the engine's {@link Ticker} since it was last put off. A store that is down may take
 * seconds to say so, and the engine must not crawl at that pace. Used by one thread.
 */
final class Spacing {
    /** How long a failed job-store write waits before the store is tried again. */
    static final long STORE_RETRY_NANOS = 5_000_000_000L;

    private final Ticker ticker;
    private long dueAt;
    private boolean deferred;

    Spacing(Ticker ticker) {
        this.ticker = ticker;
    }

    /** Whether the interval has passed since the last {@link #defer()} (true before the first). */
    boolean due() {
        return !deferred || ticker.nanos() - dueAt >= 0;
    }

    /** Puts the operation off for one interval from now. */
    void defer() {
        dueAt = ticker.nanos() + STORE_RETRY_NANOS;
        deferred = true;
    }
}
