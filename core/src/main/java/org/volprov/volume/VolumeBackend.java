package org.volprov.volume;

import java.nio.channels.ReadableByteChannel;
import java.util.Optional;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;

/**
 * Where volumes live: a libvirt storage pool, or a directory of files.
 *
 * <p>Thread-safe. Names passed in are valid by {@link VolumeNames}; implementations check them
 * again before they reach XML, a path or a command line. Failures are
 * {@link ProvisioningException}s: {@code INSUFFICIENT_SPACE} when the pool has no room,
 * {@code VOLUME_CONFLICT} when a volume exists where one is to be created, {@code BACKEND_FAILURE}
 * for everything else, with the underlying error as the cause.
 */
public interface VolumeBackend extends AutoCloseable {

    /** The volume called {@code name}, when it exists. */
    Optional<VolumeInfo> find(String name);

    /**
     * Creates a raw volume of at least {@code capacityBytes} (see {@link #capacityFor}); the
     * returned {@link VolumeInfo} has its real capacity. {@code VOLUME_CONFLICT} when it exists.
     */
    VolumeInfo create(String name, long capacityBytes);

    /**
     * The capacity {@link #create} makes for a request of {@code requestedBytes}: at least that, and
     * more when the pool allocates in larger units (a disk partition ends on a sector). The engine
     * compares an existing volume with it, so that repeating a request on the volume it made is not
     * a conflict. Default: exactly {@code requestedBytes}.
     */
    default long capacityFor(long requestedBytes) {
        return requestedBytes;
    }

    /** Grows the volume to {@code capacityBytes}; shrinking is refused with {@code VOLUME_CONFLICT}. */
    VolumeInfo resize(String name, long capacityBytes);

    /** Opens the volume for writing its content from offset 0. */
    VolumeWriter openWriter(VolumeInfo volume);

    /**
     * Whether {@link #openReader} reads volumes back, which the engine's {@code verifyWrittenVolume}
     * option needs. Default false.
     */
    default boolean readsBack() {
        return false;
    }

    /**
     * Opens the volume for reading its content from offset 0, to check what was written; the
     * caller closes the channel. Default: refused with {@code BACKEND_FAILURE}, as for every backend
     * whose {@link #readsBack} is false.
     */
    default ReadableByteChannel openReader(VolumeInfo volume) {
        throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, getClass().getSimpleName()
                + " does not read volumes back");
    }

    /** Deletes the volume; returns false when there was none. */
    boolean delete(String name);

    /** Releases connections; idempotent. */
    @Override
    default void close() {
    }
}
