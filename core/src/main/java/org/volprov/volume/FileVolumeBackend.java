package org.volprov.volume;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.channels.FileChannel;
import java.nio.channels.ReadableByteChannel;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Objects;
import java.util.Optional;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;

/**
 * A {@link VolumeBackend} that keeps each volume as a sparse raw file in one directory: the shape
 * of a libvirt {@code dir} pool, with no daemon. The embedded default. Thread-safe.
 */
public final class FileVolumeBackend implements VolumeBackend {
    private final Path directory;
    private final long reserveBytes;

    private FileVolumeBackend(Path directory, long reserveBytes) {
        this.directory = directory;
        this.reserveBytes = reserveBytes;
    }

    /**
     * A backend in {@code directory}, created when missing.
     *
     * @param reserveBytes free space to keep on the file system; a volume whose capacity does not
     *     fit in the rest is refused with {@code INSUFFICIENT_SPACE}
     */
    public static FileVolumeBackend open(Path directory, long reserveBytes) {
        Objects.requireNonNull(directory, "directory");
        if (reserveBytes < 0) {
            throw new IllegalArgumentException("reserveBytes must not be negative");
        }
        try {
            Files.createDirectories(directory);
        } catch (IOException e) {
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "cannot create volume directory " + directory, e);
        }
        return new FileVolumeBackend(directory.toAbsolutePath().normalize(), reserveBytes);
    }

    public static FileVolumeBackend open(Path directory) {
        return open(directory, 0);
    }

    public Path directory() {
        return directory;
    }

    @Override
    public Optional<VolumeInfo> find(String name) {
        Path p = pathOf(name);
        if (!Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS)) {
            return Optional.empty();
        }
        try {
            return Optional.of(new VolumeInfo(name, Files.size(p), p.toString(), false));
        } catch (IOException e) {
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "cannot read volume " + p, e);
        }
    }

    @Override
    public VolumeInfo create(String name, long capacityBytes) {
        if (capacityBytes <= 0) {
            throw new IllegalArgumentException("capacityBytes must be greater than 0");
        }
        Path p = pathOf(name);
        long usable = usableSpace();
        if (capacityBytes > usable - reserveBytes) {
            throw new ProvisioningException(ErrorCode.INSUFFICIENT_SPACE, "volume " + name + " needs " + capacityBytes
                    + " bytes but " + directory + " has " + Math.max(0, usable - reserveBytes) + " bytes to spare");
        }
        try {
            Files.createFile(p);
        } catch (FileAlreadyExistsException e) {
            throw new ProvisioningException(ErrorCode.VOLUME_CONFLICT, "volume " + name + " exists already", e);
        } catch (IOException e) {
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "cannot create volume " + p, e);
        }
        try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "rw")) {
            f.setLength(capacityBytes);
        } catch (IOException e) {
            deleteQuietly(p);
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "cannot size volume " + p, e);
        }
        return new VolumeInfo(name, capacityBytes, p.toString(), true);
    }

    @Override
    public VolumeInfo resize(String name, long capacityBytes) {
        VolumeInfo current = find(name).orElseThrow(
                () -> new ProvisioningException(ErrorCode.BACKEND_FAILURE, "volume " + name + " does not exist"));
        if (capacityBytes < current.capacityBytes()) {
            throw new ProvisioningException(ErrorCode.VOLUME_CONFLICT, "volume " + name + " is "
                    + current.capacityBytes() + " bytes and cannot shrink to " + capacityBytes);
        }
        try (RandomAccessFile f = new RandomAccessFile(current.path(), "rw")) {
            f.setLength(capacityBytes);
        } catch (IOException e) {
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "cannot resize volume " + name, e);
        }
        return new VolumeInfo(name, capacityBytes, current.path(), false);
    }

    @Override
    public VolumeWriter openWriter(VolumeInfo volume) {
        return LocalVolumeWriter.open(pathOf(volume.name()), false);
    }

    @Override
    public boolean readsBack() {
        return true;
    }

    @Override
    public ReadableByteChannel openReader(VolumeInfo volume) {
        try {
            return FileChannel.open(pathOf(volume.name()), StandardOpenOption.READ);
        } catch (IOException e) {
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "cannot read volume " + volume.name(), e);
        }
    }

    @Override
    public boolean delete(String name) {
        try {
            return Files.deleteIfExists(pathOf(name));
        } catch (IOException e) {
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "cannot delete volume " + name, e);
        }
    }

    private Path pathOf(String name) {
        return directory.resolve(VolumeNames.validate(name));
    }

    private long usableSpace() {
        try {
            return Files.getFileStore(directory).getUsableSpace();
        } catch (IOException e) {
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "cannot read free space of " + directory, e);
        }
    }

    private static void deleteQuietly(Path p) {
        try {
            Files.deleteIfExists(p);
        } catch (IOException ignored) {
            // The create already failed; that error is the one reported.
        }
    }

    @Override
    public String toString() {
        return "FileVolumeBackend[" + directory + "]";
    }
}
