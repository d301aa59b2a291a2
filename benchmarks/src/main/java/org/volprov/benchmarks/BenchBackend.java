package org.volprov.benchmarks;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.UUID;
import org.libvirt.Connect;
import org.libvirt.LibvirtException;
import org.libvirt.StoragePool;
import org.volprov.libvirt.LibvirtConfig;
import org.volprov.libvirt.LibvirtVolumeBackend;
import org.volprov.libvirt.WriteMode;
import org.volprov.testing.LoopDevice;
import org.volprov.volume.FileVolumeBackend;
import org.volprov.volume.VolumeBackend;

/**
 * A volume backend in a directory of its own, removed on {@link #close()}: {@code file} (the
 * embedded {@link FileVolumeBackend}), {@code libvirt-local} / {@code libvirt-stream} (a
 * {@link LibvirtVolumeBackend} on a {@code dir} pool defined for the run at {@code qemu:///system}
 * and undefined after it), or {@code libvirt-disk-local} / {@code libvirt-disk-stream} (a
 * {@code disk} pool whose volumes are partitions of a loop device: the one {@code scripts/bench.sh}
 * made and names in {@value #DISK_POOL_ENV}, so that {@code dd} writes the same device in the same
 * run; else one made here, over a file in the directory, and removed with the pool).
 */
final class BenchBackend implements AutoCloseable {
    /** The name of an existing disk pool for the {@code libvirt-disk-*} kinds. */
    static final String DISK_POOL_ENV = "VOLPROV_BENCH_DISK_POOL";

    private final VolumeBackend backend;
    private final String pool;
    private final LoopDevice loop;

    private BenchBackend(VolumeBackend backend, String pool, LoopDevice loop) {
        this.backend = backend;
        this.pool = pool;
        this.loop = loop;
    }

    /** Opens a backend of {@code kind} in {@code dir}, with room for one volume of {@code volumeBytes}. */
    static BenchBackend open(String kind, Path dir, long volumeBytes) {
        return switch (kind) {
            case "file" -> new BenchBackend(FileVolumeBackend.open(dir), null, null);
            case "libvirt-local" -> libvirt(WriteMode.LOCAL, dir);
            case "libvirt-stream" -> libvirt(WriteMode.STREAM, dir);
            case "libvirt-disk-local" -> disk(WriteMode.LOCAL, dir, volumeBytes);
            case "libvirt-disk-stream" -> disk(WriteMode.STREAM, dir, volumeBytes);
            default -> throw new IllegalArgumentException("no backend " + kind
                    + "; use file, libvirt-local, libvirt-stream, libvirt-disk-local or libvirt-disk-stream");
        };
    }

    private static BenchBackend libvirt(WriteMode mode, Path dir) {
        String pool = "volprov-bench-" + UUID.randomUUID().toString().substring(0, 8);
        LibvirtVolumeBackend b = LibvirtVolumeBackend.open(LibvirtConfig.builder()
                .uri(LibvirtConfig.DEFAULT_URI)
                .poolName(pool)
                .definePoolAt(dir)
                .writeMode(mode)
                .build());
        return new BenchBackend(b, pool, null);
    }

    private static BenchBackend disk(WriteMode mode, Path dir, long volumeBytes) {
        String given = System.getenv(DISK_POOL_ENV);
        if (given != null && !given.isBlank()) {
            return new BenchBackend(openPool(given, mode), null, null);
        }
        LoopDevice loop = null;
        String pool = "volprov-bench-disk-" + UUID.randomUUID().toString().substring(0, 8);
        try {
            loop = LoopDevice.create(dir, (volumeBytes + (2L << 20) + (1 << 20) - 1) / (1 << 20) * (1 << 20));
            // Named loopNp, so that libvirt can delete the partitions it makes (see the adapter's README).
            Path source = Files.createSymbolicLink(dir.resolve(loop.device().getFileName() + "p"), loop.device());
            definePool(pool, source);
            return new BenchBackend(openPool(pool, mode), pool, loop);
        } catch (IOException | RuntimeException e) {
            removePool(pool);
            if (loop != null) {
                loop.close();
            }
            if (e instanceof IOException io) {
                throw new UncheckedIOException("cannot make a disk pool on a loop device (root?): " + e.getMessage(), io);
            }
            throw (RuntimeException) e;
        }
    }

    private static LibvirtVolumeBackend openPool(String pool, WriteMode mode) {
        return LibvirtVolumeBackend.open(LibvirtConfig.builder().uri(LibvirtConfig.DEFAULT_URI).poolName(pool)
                .writeMode(mode).build());
    }

    VolumeBackend backend() {
        return backend;
    }

    /** The name the next volume gets: {@code usual}, or in a disk pool the partition it makes next. */
    String volumeName(String usual) {
        return backend instanceof LibvirtVolumeBackend l ? l.nextVolumeName().orElse(usual) : usual;
    }

    @Override
    public void close() {
        backend.close();
        if (pool != null) {
            removePool(pool);
        }
        if (loop != null) {
            loop.close();
        }
    }

    private static void definePool(String name, Path source) {
        String xml = "<pool type='disk'><name>" + name + "</name><source><device path='" + source + "'/>"
                + "<format type='gpt'/></source><target><path>/dev</path></target></pool>";
        Connect c = null;
        try {
            c = new Connect(LibvirtConfig.DEFAULT_URI);
            c.storagePoolCreateXML(xml, 0).free(); // transient: gone when destroyed
        } catch (LibvirtException e) {
            throw new IllegalStateException("cannot start disk pool " + name + " on " + source + ": " + e, e);
        } finally {
            closeQuietly(c);
        }
    }

    /** Stops the pool and undefines it when it is defined; its directory is the caller's to delete. */
    private static void removePool(String name) {
        Connect c = null;
        try {
            c = new Connect(LibvirtConfig.DEFAULT_URI);
            StoragePool p = c.storagePoolLookupByName(name);
            try {
                if (p.isActive() != 0) {
                    p.destroy();
                }
                if (p.isPersistent() != 0) {
                    p.undefine();
                }
            } finally {
                p.free();
            }
        } catch (LibvirtException e) {
            if (e.getError() == null || e.getError().getCode() != org.libvirt.Error.ErrorNumber.VIR_ERR_NO_STORAGE_POOL) {
                System.err.println("[bench] cannot remove storage pool " + name + " (virsh pool-destroy " + name + "): " + e);
            }
        } finally {
            closeQuietly(c);
        }
    }

    private static void closeQuietly(Connect c) {
        if (c != null) {
            try {
                c.close();
            } catch (LibvirtException ignored) {
                // the pool is gone or reported above; the connection goes with the process
            }
        }
    }
}
