package org.volprov;

import java.time.Clock;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A job's cancellation signal and deadline. Long operations call {@link #checkpoint()} between
 * chunks of work (and before each write), and register an action with {@link #onCancel(Runnable)}
 * to stop what a checkpoint cannot reach (a child process, a blocked read). The engine also fences
 * a job with its volume lock: a lock lost to another process cancels the signal. Thread-safe.
 */
public final class Cancellation {
    private static final Logger LOG = LoggerFactory.getLogger(Cancellation.class);

    private final Clock clock;
    private final Instant deadline;
    private final AtomicReference<ProvisioningException> reason = new AtomicReference<>();
    private final List<Runnable> actions = new ArrayList<>();
    private final List<Fence> fences = new CopyOnWriteArrayList<>();

    /** A condition that cancels the signal once it holds; see {@link #fence}. */
    private record Fence(ErrorCode code, Supplier<String> reason) {
    }

    /**
     * @param clock the clock the deadline is read against
     * @param deadline when the job times out; null for never
     */
    public Cancellation(Clock clock, Instant deadline) {
        this.clock = Objects.requireNonNull(clock, "clock");
        this.deadline = deadline;
    }

    /**
     * Makes {@code reason} part of this signal: every checkpoint and {@link #isCancelled()} asks it,
     * after the deadline and the fences added before it, and a non-null answer cancels with
     * {@code code} and that message. Checkpoints come before each write, so work guarded by
     * something that can be lost (a volume lock) stops before it writes on. {@code reason} must be
     * cheap and must not block, and is asked on any thread that checks the signal.
     */
    public void fence(ErrorCode code, Supplier<String> reason) {
        fences.add(new Fence(Objects.requireNonNull(code, "code"), Objects.requireNonNull(reason, "reason")));
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

    /** Whether the job was cancelled, its deadline has passed or a fence no longer holds. */
    public boolean isCancelled() {
        cancelIfDue();
        return reason.get() != null;
    }

    /** Throws the cancellation's exception when cancelled, past the deadline or fenced off. */
    public void checkpoint() {
        cancelIfDue();
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

    /** The message the job was cancelled with, or null. */
    public String message() {
        ProvisioningException r = reason.get();
        return r == null ? null : r.getMessage();
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

    private void cancelIfDue() {
        if (reason.get() != null) {
            return;
        }
        Instant d = deadline;
        if (d != null && clock.instant().isAfter(d)) {
            cancel(ErrorCode.TIMED_OUT, "the job ran past its deadline " + d);
            return;
        }
        for (Fence f : fences) {
            String why = f.reason().get();
            if (why != null) {
                cancel(f.code(), why);
                return;
            }
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
