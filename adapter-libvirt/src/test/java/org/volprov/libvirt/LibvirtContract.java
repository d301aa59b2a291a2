package org.volprov.libvirt;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.volprov.contract.VolumeBackendContract;
import org.volprov.libvirt.testkit.LibvirtTestPool;
import org.volprov.volume.VolumeBackend;
import org.volprov.volume.VolumeInfo;

/** Core's {@link VolumeBackendContract} on one test pool in one write mode. */
abstract class LibvirtContract extends VolumeBackendContract {
    private final LibvirtTestPool pool;
    private final WriteMode mode;
    private LibvirtVolumeBackend backend;

    LibvirtContract(LibvirtTestPool pool, WriteMode mode) {
        this.pool = pool;
        this.mode = mode;
    }

    @BeforeEach
    void needsTheVolumesOnThisHost() {
        // Only a remote TEST_LIBVIRT_URI (docker-compose.test.yml) lands here; on a libvirt host this always runs.
        assumeTrue(mode != WriteMode.LOCAL || pool.isLocal(), "LOCAL writes need the volumes on this host; "
                + pool.uri() + " is remote");
    }

    @Override
    protected VolumeBackend backend() {
        if (backend == null) {
            backend = pool.backend(mode);
        }
        return backend;
    }

    @Override
    protected byte[] read(VolumeInfo volume, long offset, int length) throws IOException {
        return pool.read(volume, offset, length);
    }

    @Override
    protected String prefix() {
        return pool.prefix();
    }

    @Override
    protected String name(String suffix) {
        return pool.volumeName(suffix);
    }

    /** libvirt 9.0 resizes neither partitions nor, in every version, LVs. */
    @Override
    protected boolean resizes() {
        return pool.kind() != LibvirtTestPool.Kind.DISK;
    }

    @AfterEach
    void closeBackend() {
        if (backend != null) {
            backend.close();
        }
    }
}
