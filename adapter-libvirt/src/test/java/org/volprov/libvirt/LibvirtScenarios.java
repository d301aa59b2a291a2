package org.volprov.libvirt;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;
import org.volprov.libvirt.testkit.LibvirtTestPool;
import org.volprov.testing.LoopDevice;
import org.volprov.volume.VolumeInfo;
import org.volprov.volume.VolumeWriter;

/**
 * Behaviour beyond the shared contract that every pool shows which makes its own volumes, against a
 * real libvirtd: a {@code dir} pool of sparse files and a {@code disk} pool of thick partitions.
 */
abstract class LibvirtScenarios {
    static final long MIB = 1L << 20;

    private final LibvirtTestPool pool;
    private final List<AutoCloseable> toClose = new ArrayList<>();

    LibvirtScenarios(LibvirtTestPool pool) {
        this.pool = pool;
    }

    LibvirtTestPool pool() {
        return pool;
    }

    @AfterEach
    void closeAll() throws Exception {
        for (int i = toClose.size() - 1; i >= 0; i--) {
            toClose.get(i).close();
        }
    }

    LibvirtVolumeBackend backend(WriteMode mode) {
        LibvirtVolumeBackend b = pool.backend(mode);
        toClose.add(b);
        return b;
    }

    String name(String suffix) {
        return pool.volumeName(suffix);
    }

    @Test
    void localAndStreamWrites_ofTheSameData_giveIdenticalBytes() throws Exception {
        assumeTrue(pool.isLocal(), "LOCAL writes need the volume on this host");
        long size = 24 * MIB;
        byte[] expected = new byte[(int) size];
        VolumeInfo local = backend(WriteMode.LOCAL).create(name("same-local"), size);
        VolumeInfo stream = backend(WriteMode.STREAM).create(name("same-stream"), size);
        try (VolumeWriter w = backend(WriteMode.LOCAL).openWriter(local)) {
            assertThat(w.localPath()).isPresent();
            writeScript(w, expected, local.readsAsZeros());
        }
        try (VolumeWriter w = backend(WriteMode.STREAM).openWriter(stream)) {
            assertThat(w.localPath()).isEmpty();
            writeScript(w, new byte[(int) size], stream.readsAsZeros());
        }
        String want = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(expected));
        assertThat(pool.sha256(local)).as("LOCAL").isEqualTo(want);
        assertThat(pool.sha256(stream)).as("STREAM").isEqualTo(want);
    }

    /**
     * Random data with zero regions written three ways (writeZeros; skip, where the fresh volume
     * reads as zeros, else writeZeros again; the tail); mirrors it in {@code image}.
     */
    static void writeScript(VolumeWriter w, byte[] image, boolean readsAsZeros) throws IOException {
        Random r = new Random(7);
        int pos = 0;
        pos = data(w, image, pos, (int) (5 * MIB) + 3, r);
        w.writeZeros(4 * MIB);
        pos += (int) (4 * MIB);
        pos = data(w, image, pos, (int) (2 * MIB), r);
        if (readsAsZeros) {
            w.skip(3 * MIB - 3);
        } else {
            w.writeZeros(3 * MIB - 3);
        }
        pos += (int) (3 * MIB) - 3;
        pos = data(w, image, pos, (int) MIB + 777, r);
        w.writeZeros(image.length - pos);
        assertThat(w.position()).isEqualTo(image.length);
        w.finish();
    }

    private static int data(VolumeWriter w, byte[] image, int pos, int len, Random r) throws IOException {
        byte[] b = new byte[len];
        r.nextBytes(b);
        System.arraycopy(b, 0, image, pos, len);
        w.write(ByteBuffer.wrap(b));
        return pos + len;
    }

    @Test
    void create_newVolume_readsAsZerosOnlyInAFilePool_elseHoldsAnEarlierTenantsBytes() throws Exception {
        LibvirtVolumeBackend b = backend(WriteMode.AUTO);
        boolean filePool = List.of("dir", "fs", "netfs").contains(b.poolType());
        VolumeInfo v = b.create(name("sparse"), 16 * MIB);
        assertThat(v.readsAsZeros()).as("new volume in a " + b.poolType() + " pool reads as zeros").isEqualTo(filePool);
        assertThat(b.find(v.name()).orElseThrow().readsAsZeros()).isFalse();
        if (filePool && pool.isLocal()) {
            assertThat(LibvirtTestPool.run(List.of("du", "-B1", "--apparent-size", v.path()), true)).startsWith(Long.toString(16 * MIB));
            long used = Long.parseLong(LibvirtTestPool.run(List.of("du", "-B1", v.path()), true).split("\\s+")[0]);
            assertThat(used).as("blocks allocated for a new 16 MiB volume").isLessThan(MIB);
        }
        if (pool.blockDevices()) {
            assertThat(LoopDevice.holdsTenantPattern(Path.of(v.path()), pool.partitionOf(v).start(), 0, v.capacityBytes()))
                    .as("a new partition holds what the device held before: thick, never zeroed").isTrue();
        }
    }

    @Test
    void openWriter_inAutoMode_onALocalUri_writesThroughThePath() throws IOException {
        assumeTrue(pool.isLocal(), "AUTO picks STREAM for a remote TEST_LIBVIRT_URI");
        LibvirtVolumeBackend b = backend(WriteMode.AUTO);
        VolumeInfo v = b.create(name("auto"), MIB);
        try (VolumeWriter w = b.openWriter(v)) {
            assertThat(w.localPath()).contains(Path.of(v.path()).toRealPath());
        }
    }

    @Test
    void streamWriter_pastTheVolumeEnd_failsWithoutGrowingIt() throws Exception {
        LibvirtVolumeBackend b = backend(WriteMode.STREAM);
        VolumeInfo v = b.create(name("bounded"), MIB); // an LV is rounded up to whole extents
        try (VolumeWriter w = b.openWriter(v)) {
            assertThatThrownBy(() -> w.write(ByteBuffer.allocate((int) v.capacityBytes() + 1))).isInstanceOf(IOException.class)
                    .hasMessageContaining("passes the end");
        }
        assertThat(b.find(v.name()).orElseThrow().capacityBytes()).isEqualTo(v.capacityBytes());
    }

    @Test
    void streamWriter_closedWithoutFinish_abortsAndTheBackendStaysUsable() throws Exception {
        LibvirtVolumeBackend b = backend(WriteMode.STREAM);
        VolumeInfo v = b.create(name("aborted"), 2 * MIB);
        try (VolumeWriter w = b.openWriter(v)) {
            w.write(ByteBuffer.wrap(new byte[] {9, 9, 9}));
        }
        try (VolumeWriter w = b.openWriter(v)) {
            w.write(ByteBuffer.wrap(new byte[] {1, 2}));
            w.finish();
        }
        assertThat(pool.read(v, 0, 2)).containsExactly(1, 2);
        assertThat(b.delete(v.name())).isTrue();
    }

    @Test
    void everyOperation_withAnXmlBreakingName_isRefusedBeforeLibvirt() throws Exception {
        LibvirtVolumeBackend b = backend(WriteMode.STREAM);
        for (String bad : new String[] {"<volume>", "a'b", "x\"/><name>y", "a&amp;", "../../etc/passwd", "-rf", "a b", "snapshot"}) {
            for (Runnable op : List.<Runnable>of(() -> b.create(bad, MIB), () -> b.find(bad), () -> b.delete(bad),
                    () -> b.resize(bad, MIB), () -> b.openWriter(new VolumeInfo(bad, MIB, "/dev/null", false)))) {
                assertThatThrownBy(op::run).as(bad)
                        .isInstanceOf(ProvisioningException.class)
                        .extracting(e -> ((ProvisioningException) e).code()).isEqualTo(ErrorCode.INVALID_REQUEST);
            }
        }
        assertThat(LibvirtTestPool.volumes(pool.pool())).as("volumes in the pool").isEmpty();
    }

    @Test
    void create_largerThanThePool_failsWithInsufficientSpace() {
        assertThatThrownBy(() -> backend(WriteMode.AUTO).create(name("huge"), 1L << 60))
                .isInstanceOf(ProvisioningException.class)
                .hasMessageContaining("bytes available")
                .extracting(e -> ((ProvisioningException) e).code()).isEqualTo(ErrorCode.INSUFFICIENT_SPACE);
    }
}
