package org.volprov.testing;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.util.concurrent.atomic.AtomicReference;

/** A clock a test moves by hand, so that leases and deadlines expire without sleeping. Thread-safe. */
public final class SettableClock extends Clock {
    private final AtomicReference<Instant> now;

    /** Starts at 2026-01-01T00:00:00Z. */
    public SettableClock() {
        this(Instant.parse("2026-01-01T00:00:00Z"));
    }

    public SettableClock(Instant start) {
        this.now = new AtomicReference<>(start);
    }

    public void advance(Duration d) {
        now.updateAndGet(t -> t.plus(d));
    }

    @Override
    public ZoneId getZone() {
        return ZoneOffset.UTC;
    }

    @Override
    public Clock withZone(ZoneId zone) {
        return this;
    }

    @Override
    public Instant instant() {
        return now.get();
    }
}
