package org.volprov;

import java.util.Optional;

/**
 * Keeps two jobs from writing one volume at once. The engine holds a lock per volume name for a
 * job's whole life. The default guards one process; a shared implementation (Redis) guards several.
 * Thread-safe.
 */
public interface VolumeGuard {

    /** The lock on {@code volumeName}, or empty when another job holds it. */
    Optional<Lock> tryLock(String volumeName);

    /** A held lock; closing releases it, closing twice does nothing. */
    interface Lock extends AutoCloseable {
        @Override
        void close();
    }
}
