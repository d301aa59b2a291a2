package org.volprov;

import java.time.Duration;

/** Waits between retries. Injected so tests advance a clock instead of sleeping. */
@FunctionalInterface
public interface Sleeper {
    /** Sleeps the real time. */
    Sleeper SYSTEM = d -> Thread.sleep(d.toMillis(), (int) (d.toNanosPart() % 1_000_000));

    void sleep(Duration duration) throws InterruptedException;
}
