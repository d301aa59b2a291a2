package org.volprov.libvirt;

import org.volprov.libvirt.testkit.LibvirtTestPool;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.volprov.VolumeBackend;
import org.volprov.VolumeInfo;
import org.volprov.contract.VolumeBackendContract;

/** The shared {@link VolumeBackend} contract, writing through the volume's local path. */
class LibvirtLocalContractIT extends VolumeBackendContract {
    @RegisterExtension
    static final LibvirtTestPool POOL = new LibvirtTestPool();

    private LibvirtVolumeBackend backend;

    @BeforeAll
    static void needsTheVolumesOnThisHost() {
        // Only a remote TEST_LIBVIRT_URI (docker-compose.test.yml) lands here; on a libvirt host this always runs.
        assumeTrue(POOL.isLocal(), "LOCAL writes need the volumes on this host; " + POOL.uri() + " is remote");
    }

    @Override
    protected VolumeBackend backend() {
        if (backend == null) {
            backend = POOL.backend(WriteMode.LOCAL);
        }
        return backend;
    }

    @Override
    protected byte[] read(VolumeInfo volume, long offset, int length) throws IOException {
        return POOL.read(volume, offset, length);
    }

    @Override
    protected String prefix() {
        return POOL.prefix();
    }

    @AfterEach
    void closeBackend() {
        if (backend != null) {
            backend.close();
        }
    }
}
