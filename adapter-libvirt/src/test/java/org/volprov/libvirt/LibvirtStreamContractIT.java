package org.volprov.libvirt;

import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.volprov.libvirt.testkit.LibvirtTestPool;
import org.volprov.volume.VolumeBackend;

/** The shared {@link VolumeBackend} contract, writing through virStorageVolUpload streams, on a file and a block-device pool. */
class LibvirtStreamContractIT {
    @Nested
    @DisplayName("dir pool")
    class DirPool extends LibvirtContract {
        @RegisterExtension
        static final LibvirtTestPool POOL = new LibvirtTestPool();

        DirPool() {
            super(POOL, WriteMode.STREAM);
        }
    }

    @Nested
    @DisplayName("disk pool (loop device partitions)")
    class DiskPool extends LibvirtContract {
        @RegisterExtension
        static final LibvirtTestPool POOL = LibvirtTestPool.disk(64L << 20);

        DiskPool() {
            super(POOL, WriteMode.STREAM);
        }
    }
}
