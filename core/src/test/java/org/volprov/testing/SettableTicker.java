package org.volprov.testing;

import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;
import org.volprov.Ticker;

/** A ticker a test moves by hand, so that retry intervals and throttles pass without waiting. Thread-safe. */
public final class SettableTicker implements Ticker {
    private final AtomicLong nanos = new AtomicLong();

    public void advance(Duration d) {
        nanos.addAndGet(d.toNanos());
    }

    @Override
    public long nanos() {
        return nanos.get();
    }
}
