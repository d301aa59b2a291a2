package org.volprov.cache;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;

/**
 * The operating system's lock on a cache directory's lock file, taken once per directory per
 * process and counted by its users.
 *
 * <p>The lock is a POSIX record lock, and such a lock belongs to the process, not to the channel:
 * closing <em>any</em> channel on the file drops every lock the process holds on it. So a second
 * cache of this process must never open its own channel on a lock file this process has locked,
 * not even to find out that it is locked: closing that channel, once refused, would free the
 * directory for other processes while the first cache still uses it. This registry is process-wide
 * state because the lock it mirrors is: it is asked first, and only a directory no cache of this
 * process holds reaches the file system.
 *
 * <p>Thread-safe.
 */
final class DirectoryLock {
    private static final Logger LOG = LoggerFactory.getLogger(DirectoryLock.class);
    /** The directories this process has locked, by real path. Guarded by itself. */
    private static final Map<Path, DirectoryLock> HELD = new HashMap<>();

    private final Path key;
    private final boolean shared;
    private final FileChannel channel;
    private final FileLock lock;
    private int users; // guarded by HELD

    private DirectoryLock(Path key, boolean shared, FileChannel channel, FileLock lock) {
        this.key = key;
        this.shared = shared;
        this.channel = channel;
        this.lock = lock;
    }

    /** One cache's use of a directory lock; closing it lets go once. */
    interface Handle extends AutoCloseable {
        @Override
        void close();
    }

    /**
     * Locks {@code directory}'s lock file for one cache: exclusively, or shared with the other
     * caches that share the directory (in this process or in others).
     *
     * @throws ProvisioningException {@code BACKEND_FAILURE} when another cache (of this process or
     *     of another) holds the directory in a way that excludes this one, or the file cannot be locked
     */
    static Handle acquire(Path directory, String lockFile, boolean shared) {
        Path key;
        try {
            key = directory.toRealPath();
        } catch (IOException e) {
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "cannot lock cache directory " + directory
                    + ": " + e, e);
        }
        DirectoryLock held;
        synchronized (HELD) {
            held = HELD.get(key);
            if (held != null) {
                if (!(shared && held.shared)) {
                    throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "cache directory " + directory
                            + " is in use by another open cache of this process" + (shared
                            ? " that does not share it" : ""));
                }
            } else {
                held = lock(key, lockFile, shared, directory);
                HELD.put(key, held);
            }
            held.users++;
        }
        DirectoryLock l = held;
        AtomicBoolean released = new AtomicBoolean();
        return () -> {
            if (released.compareAndSet(false, true)) {
                l.release();
            }
        };
    }

    private static DirectoryLock lock(Path key, String lockFile, boolean shared, Path directory) {
        FileChannel channel = null;
        try {
            channel = FileChannel.open(key.resolve(lockFile), StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                    StandardOpenOption.READ);
            FileLock lock = channel.tryLock(0, Long.MAX_VALUE, shared);
            if (lock == null) {
                // Closing is safe here: no cache of this process holds a lock on this file.
                closeQuietly(channel);
                throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "cache directory " + directory
                        + " is in use by an open cache of another process" + (shared ? " that does not share it" : ""));
            }
            return new DirectoryLock(key, shared, channel, lock);
        } catch (OverlappingFileLockException e) {
            // Other code of this JVM locked the file without this registry. The channel stays open:
            // closing it would drop that lock.
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "cache directory " + directory
                    + " is locked by other code of this process", e);
        } catch (IOException e) {
            closeQuietly(channel);
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "cannot lock cache directory " + directory
                    + ": " + e, e);
        }
    }

    private void release() {
        synchronized (HELD) {
            if (--users > 0) {
                return;
            }
            HELD.remove(key);
            try {
                lock.release();
            } catch (IOException e) {
                LOG.debug("releasing the lock of {}", key, e);
            }
            closeQuietly(channel);
        }
    }

    private static void closeQuietly(FileChannel channel) {
        if (channel != null) {
            try {
                channel.close();
            } catch (IOException e) {
                LOG.debug("closing a lock file", e);
            }
        }
    }
}
