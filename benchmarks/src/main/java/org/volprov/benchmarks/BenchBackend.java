package org.volprov.benchmarks;

import java.nio.file.Path;
import java.util.UUID;
import org.libvirt.Connect;
import org.libvirt.LibvirtException;
import org.libvirt.StoragePool;
import org.volprov.VolumeBackend;
import org.volprov.embedded.FileVolumeBackend;
import org.volprov.libvirt.LibvirtConfig;
import org.volprov.libvirt.LibvirtVolumeBackend;
import org.volprov.libvirt.WriteMode;

/**
 * A volume backend in a directory of its own, removed on {@link #close()}: {@code file} (the
 * embedded {@link FileVolumeBackend}), or {@code libvirt-local} / {@code libvirt-stream} (a
 * {@link LibvirtVolumeBackend} on a {@code dir} pool defined for the run at {@code qemu:///system}
 * and undefined after it).
 */
final class BenchBackend implements AutoCloseable {
    private final VolumeBackend backend;
    private final String pool;

    private BenchBackend(VolumeBackend backend, String pool) {
        this.backend = backend;
        this.pool = pool;
    }

    static BenchBackend open(String kind, Path dir) {
        return switch (kind) {
            case "file" -> new BenchBackend(FileVolumeBackend.open(dir), null);
            case "libvirt-local" -> libvirt(WriteMode.LOCAL, dir);
            case "libvirt-stream" -> libvirt(WriteMode.STREAM, dir);
            default -> throw new IllegalArgumentException("no backend " + kind
                    + "; use file, libvirt-local or libvirt-stream");
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
        return new BenchBackend(b, pool);
    }

    VolumeBackend backend() {
        return backend;
    }

    @Override
    public void close() {
        backend.close();
        if (pool != null) {
            removePool(pool);
        }
    }

    /** Stops and undefines the pool; its directory is the caller's to delete. */
    private static void removePool(String name) {
        Connect c = null;
        try {
            c = new Connect(LibvirtConfig.DEFAULT_URI);
            StoragePool p = c.storagePoolLookupByName(name);
            try {
                if (p.isActive() != 0) {
                    p.destroy();
                }
                p.undefine();
            } finally {
                p.free();
            }
        } catch (LibvirtException e) {
            System.err.println("[bench] cannot remove storage pool " + name + " (virsh pool-undefine " + name + "): " + e);
        } finally {
            if (c != null) {
                try {
                    c.close();
                } catch (LibvirtException ignored) {
                    // the pool is gone or reported above; the connection goes with the process
                }
            }
        }
    }
}
