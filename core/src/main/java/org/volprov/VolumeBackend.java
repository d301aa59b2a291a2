package org.volprov;

import java.util.Optional;

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

    /** Creates a raw volume of {@code capacityBytes}; {@code VOLUME_CONFLICT} when it exists. */
    VolumeInfo create(String name, long capacityBytes);

    /** Grows the volume to {@code capacityBytes}; shrinking is refused with {@code VOLUME_CONFLICT}. */
    VolumeInfo resize(String name, long capacityBytes);

    /** Opens the volume for writing its content from offset 0. */
    VolumeWriter openWriter(VolumeInfo volume);

    /** Deletes the volume; returns false when there was none. */
    boolean delete(String name);

    /** Releases connections; idempotent. */
    @Override
    default void close() {
    }
}
