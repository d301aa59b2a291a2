package org.volprov.volume;

import java.util.Objects;

/**
 * A volume as the backend sees it.
 *
 * @param name the volume's name
 * @param capacityBytes its size
 * @param path where it lives: a file or device path, or a backend key
 * @param readsAsZeros true only when every byte is known to read as zero (a sparse file or a thin
 *     volume just created); the engine then skips writing zero regions
 */
public record VolumeInfo(String name, long capacityBytes, String path, boolean readsAsZeros) {
    public VolumeInfo {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(path, "path");
        if (capacityBytes < 0) {
            throw new IllegalArgumentException("capacityBytes must not be negative");
        }
    }
}
