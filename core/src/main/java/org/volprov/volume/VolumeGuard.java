package org.volprov.volume;

import java.util.Optional;

/**
 * Keeps two jobs from writing one volume at once. The engine holds a lock per volume name for a
 * job's whole life. The default guards one process; a shared implementation (Redis) guards several.
 * Thread-safe.
 */
public interface VolumeGuard {

    /** The lock on {@code volumeName}, or empty when another job holds it. */
    Optional<Lock> tryLock(String volumeName);

    /**
     * A held lock; closing releases it, closing twice does nothing. A lock that is lost to another
     * holder (a shared lock whose lease ran out while its holder stalled) says so, and the engine
     * stops the job before its next write.
     */
    interface Lock extends AutoCloseable {

        /**
         * Why this lock no longer keeps other holders off its volume, or empty while it does. Once
         * lost, a lock stays lost; closing it then leaves the new holder's lock in place. The engine
         * asks before every write of a job, so this must be cheap and must not block: a guard learns
         * about a loss in the background, and presumes one as soon as it cannot be sure of the lock
         * (its lease ran out without a renewal). The default never loses a lock, as a guard of one
         * process cannot.
         */
        default Optional<String> lost() {
            return Optional.empty();
        }

        @Override
        void close();
    }
}
