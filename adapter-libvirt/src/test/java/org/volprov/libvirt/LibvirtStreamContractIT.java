package org.volprov.libvirt;

import org.volprov.libvirt.testkit.LibvirtTestPool;
import java.io.IOException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.volprov.VolumeBackend;
import org.volprov.VolumeInfo;
import org.volprov.contract.VolumeBackendContract;

/** The shared {@link VolumeBackend} contract, writing through virStorageVolUpload streams. */
class LibvirtStreamContractIT extends VolumeBackendContract {
    @RegisterExtension
    static final LibvirtTestPool POOL = new LibvirtTestPool();

    private LibvirtVolumeBackend backend;

    @Override
    protected VolumeBackend backend() {
        if (backend == null) {
            backend = POOL.backend(WriteMode.STREAM);
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
