package org.volprov.libvirt;

import org.volprov.libvirt.testkit.LibvirtTestPool;
import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.ByteBuffer;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.volprov.VolumeInfo;
import org.volprov.VolumeWriter;

/**
 * Prints LOCAL and STREAM write throughput into the same dir pool in the same run. No absolute
 * thresholds: machines differ. {@code TEST_THROUGHPUT_MIB} sets the volume size (default 1024).
 */
class WriteThroughputIT {
    @RegisterExtension
    static final LibvirtTestPool POOL = new LibvirtTestPool();
    private static final int MIB = 1 << 20;

    @Test
    void localAndStreamWrites_ofOneGib_reportMegabytesPerSecond_andMatch() throws Exception {
        assumeTrue(POOL.isLocal(), "LOCAL writes need the volume on this host");
        long mib = Long.parseLong(System.getenv().getOrDefault("TEST_THROUGHPUT_MIB", "1024"));
        byte[] block = new byte[4 * MIB];
        new Random(1).nextBytes(block);
        double local;
        double stream;
        String localHash;
        String streamHash;
        try (LibvirtVolumeBackend l = POOL.backend(WriteMode.LOCAL); LibvirtVolumeBackend s = POOL.backend(WriteMode.STREAM)) {
            VolumeInfo lv = l.create(POOL.prefix() + "tp-local", mib * MIB);
            VolumeInfo sv = s.create(POOL.prefix() + "tp-stream", mib * MIB);
            local = write(l.openWriter(lv), block, mib);
            stream = write(s.openWriter(sv), block, mib);
            localHash = POOL.sha256(lv);
            streamHash = POOL.sha256(sv);
        }
        System.out.printf("volprov-libvirt throughput, %d MiB into a dir pool (incl. fsync): LOCAL %.1f MB/s, STREAM %.1f MB/s,"
                + " LOCAL/STREAM %.2f%n", mib, local, stream, local / stream);
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
