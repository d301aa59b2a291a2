package org.volprov.libvirt;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.ByteBuffer;
import java.util.Random;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.volprov.libvirt.testkit.LibvirtTestPool;
import org.volprov.volume.VolumeInfo;
import org.volprov.volume.VolumeWriter;

/**
 * Prints LOCAL and STREAM write throughput into the same pool in the same run, on a {@code dir}
 * pool and on a {@code disk} pool. No absolute thresholds: machines differ ({@code scripts/bench.sh}
 * compares the disk pool with {@code dd oflag=direct} onto the same loop device). The two writes
 * must give the same bytes. {@code TEST_THROUGHPUT_MIB} sets the dir pool's volume size (default
 * 1024); the disk pool's volumes are a quarter of it.
 */
class WriteThroughputIT {
    private static final int MIB = 1 << 20;
    private static final long SIZE_MIB = Long.parseLong(System.getenv().getOrDefault("TEST_THROUGHPUT_MIB", "1024"));

    @Nested
    @DisplayName("dir pool")
    class DirPool {
        @RegisterExtension
        static final LibvirtTestPool POOL = new LibvirtTestPool();

        @Test
        void localAndStreamWrites_reportMegabytesPerSecond_andMatch() throws Exception {
            measure(POOL, SIZE_MIB);
        }
    }

    @Nested
    @DisplayName("disk pool (loop device partitions)")
    class DiskPool {
        @RegisterExtension
        static final LibvirtTestPool POOL = LibvirtTestPool.disk((2 * Math.max(1, SIZE_MIB / 4) + 4) * MIB);

        @Test
        void localAndStreamWrites_reportMegabytesPerSecond_andMatch() throws Exception {
            measure(POOL, Math.max(1, SIZE_MIB / 4));
        }
    }

    private static void measure(LibvirtTestPool pool, long mib) throws Exception {
        assumeTrue(pool.isLocal(), "LOCAL writes need the volume on this host");
        byte[] block = new byte[4 * MIB];
        new Random(1).nextBytes(block);
        double local;
        double stream;
        String localHash;
        String streamHash;
        try (LibvirtVolumeBackend l = pool.backend(WriteMode.LOCAL); LibvirtVolumeBackend s = pool.backend(WriteMode.STREAM)) {
            VolumeInfo lv = l.create(pool.volumeName("tp-local"), mib * MIB);
            local = write(l.openWriter(lv), block, mib);
            VolumeInfo sv = s.create(pool.volumeName("tp-stream"), mib * MIB);
            stream = write(s.openWriter(sv), block, mib);
            localHash = pool.sha256(lv);
            streamHash = pool.sha256(sv);
        }
        System.out.printf("volprov-libvirt throughput, %d MiB into %s (incl. fsync): LOCAL %.1f MB/s, STREAM %.1f MB/s,"
                + " LOCAL/STREAM %.2f%n", mib, pool, local, stream, local / stream);
        assertThat(streamHash).isEqualTo(localHash);
    }

    /** Writes {@code mib} MiB of non-zero data in 1 MiB writes and returns MB/s (10^6 bytes) including finish(). */
    private static double write(VolumeWriter w, byte[] block, long mib) throws Exception {
        long start = System.nanoTime();
        try (w) {
            for (long i = 0; i < mib; i++) {
                int off = (int) (i % 4) * MIB;
                w.write(ByteBuffer.wrap(block, off, MIB));
            }
            w.finish();
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        return mib * MIB / 1e6 / seconds;
    }
}
