package org.volprov.internal.engine;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import org.volprov.Cancellation;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;

/**
 * This engine's hold on one job in the job store, as far as the engine knows it: <i>held</i> while
 * less than the lease has passed since the store last confirmed it, <i>in doubt</i> once the lease
 * time has passed without a confirmation (the store may have given the job to another engine),
 * <i>lost</i> once the store said another engine holds it. Confirmation times are those at which the
 * confirming request was sent, so the engine's idea of the lease never outlasts the store's.
 *
 * <p>Writes to the job's volume pass {@link #awaitHeld}: they go on while the lease is held, wait
 * while it is in doubt, and stop for good once it is lost. Thread-safe.
 */
final class JobLease {
    private final String jobId;
    private final Clock clock;
    private final Duration length;
    private final long pollMillis;
    private Instant confirmedAt; // guarded by this
    private String lostReason; // guarded by this
    private boolean givenUp; // guarded by this
    private Runnable onLost; // guarded by this

    /**
     * @param confirmedAt when the request that took the hold was sent
     * @param pollMillis how often a waiting writer looks at the clock again (a test's clock moves
     *     without telling anyone)
     */
    JobLease(String jobId, Instant confirmedAt, Clock clock, Duration length, long pollMillis) {
        this.jobId = jobId;
        this.confirmedAt = confirmedAt;
        this.clock = clock;
        this.length = length;
        this.pollMillis = Math.max(1, pollMillis);
    }

    String jobId() {
        return jobId;
    }

    /** The store confirmed the hold with a request sent at {@code sentAt}. */
    synchronized void confirmed(Instant sentAt) {
        if (lostReason == null && sentAt.isAfter(confirmedAt)) {
            confirmedAt = sentAt;
        }
        notifyAll();
    }

    /** The store said another engine holds the job: it is not this engine's any more. Runs the callback once. */
    void lost(String reason) {
        Runnable action;
        synchronized (this) {
            if (lostReason != null) {
                return;
            }
            lostReason = reason;
            action = onLost;
            notifyAll();
        }
        if (action != null) {
            action.run();
        }
    }

    /** What to do when the lease is lost (stop the job); run at once when it is lost already. */
    void onLost(Runnable action) {
        boolean now;
        synchronized (this) {
            onLost = action;
            now = lostReason != null;
        }
        if (now) {
            action.run();
        }
    }

    synchronized boolean isLost() {
        return lostReason != null;
    }

    synchronized String lostReason() {
        return lostReason;
    }

    synchronized boolean inDoubt() {
        return lostReason == null && !clock.instant().isBefore(confirmedAt.plus(length));
    }

    /** The engine is closing: a writer waiting out a doubt stops waiting ({@link #awaitResolved} says false). */
    synchronized void giveUp() {
        givenUp = true;
        notifyAll();
    }

    /**
     * Returns while the lease is held; waits while it is in doubt, looking at {@code cancellation}
     * (the job's timeout and cancel still apply).
     *
     * @throws ProvisioningException {@code INTERRUPTED} once the lease is lost, or the
     *     cancellation's exception
     */
    void awaitHeld(Cancellation cancellation) {
        while (true) {
            synchronized (this) {
                if (lostReason != null) {
                    throw new ProvisioningException(ErrorCode.INTERRUPTED, lostReason);
                }
                if (!inDoubt()) {
                    return;
                }
                if (givenUp) {
                    throw new ProvisioningException(ErrorCode.INTERRUPTED, "the engine stopped while the job store "
                            + "could not confirm that it still holds the job");
                }
                waitQuietly();
            }
            cancellation.checkpoint();
        }
    }

    /**
     * Waits while the lease is in doubt; true when it is held, false when it is lost or the engine
     * gave up waiting (closing). For a rollback, which must not touch a volume another engine may
     * own now.
     */
    synchronized boolean awaitResolved() {
        while (lostReason == null && !givenUp && inDoubt()) {
            waitQuietly();
        }
        return lostReason == null && !inDoubt();
    }

    private void waitQuietly() {
        try {
            wait(pollMillis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            givenUp = true;
        }
    }
}
