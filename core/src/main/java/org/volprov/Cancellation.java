package org.volprov;

import java.time.Clock;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicReference;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A job's cancellation signal and deadline. Long operations call {@link #checkpoint()} between
 * chunks of work, and register an action with {@link #onCancel(Runnable)} to stop what a
 * checkpoint cannot reach (a child process, a blocked read). Thread-safe.
 */
public final class Cancellation {
    private static final Logger LOG = LoggerFactory.getLogger(Cancellation.class);

    private final Clock clock;
    private volatile Instant deadline;
    private final AtomicReference<ProvisioningException> reason = new AtomicReference<>();
    private final List<Runnable> actions = new ArrayList<>();

    /**
     * @param clock the clock the deadline is read against
     * @param deadline when the job times out; null for never
     */
    public Cancellation(Clock clock, Instant deadline) {
        this.clock = Objects.requireNonNull(clock, "clock");
        this.deadline = deadline;
    }

    /** Sets the deadline, once the job starts running: the timeout counts from then. */
    void deadline(Instant when) {
        this.deadline = when;
    }

    /** A signal that is never cancelled by time, only by {@link #cancel}. */
    public static Cancellation none() {
        return new Cancellation(Clock.systemUTC(), null);
    }

    /**
     * Cancels with {@code code}; the first call wins and runs the registered actions, later ones do
     * nothing. Returns whether this call cancelled.
     */
    public boolean cancel(ErrorCode code, String message) {
        if (!reason.compareAndSet(null, new ProvisioningException(code, message))) {
            return false;
        }
        List<Runnable> toRun;
        synchronized (actions) {
            toRun = new ArrayList<>(actions);
        }
        for (Runnable action : toRun) {
            runQuietly(action);
        }
        return true;
    }

    /** Whether the job was cancelled or its deadline has passed. */
    public boolean isCancelled() {
        expireIfDue();
        return reason.get() != null;
    }

    /** Throws the cancellation's exception when cancelled or past the deadline. */
    public void checkpoint() {
        expireIfDue();
        ProvisioningException r = reason.get();
        if (r != null) {
            throw new ProvisioningException(r.code(), r.getMessage());
        }
    }

    /** The code the job was cancelled with, or null. */
    public ErrorCode code() {
        ProvisioningException r = reason.get();
        return r == null ? null : r.code();
    }

    /**
     * Runs {@code action} when cancelled (at once if already cancelled). Closing the returned handle
     * unregisters it.
     */
    public AutoCloseableAction onCancel(Runnable action) {
        synchronized (actions) {
            actions.add(action);
        }
        if (reason.get() != null) {
            runQuietly(action);
        }
        return () -> {
            synchronized (actions) {
                actions.remove(action);
            }
        };
    }

    private void expireIfDue() {
        Instant d = deadline;
        if (d != null && reason.get() == null && clock.instant().isAfter(d)) {
            cancel(ErrorCode.TIMED_OUT, "the job ran past its deadline " + d);
        }
    }

    private static void runQuietly(Runnable action) {
        try {
            action.run();
        } catch (RuntimeException e) {
            LOG.debug("cancellation action failed", e);
        }
    }

    /** A registration that can be closed without a checked exception. */
    @FunctionalInterface
    public interface AutoCloseableAction extends AutoCloseable {
        @Override
        void close();
    }
}
