package org.volprov.volume;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;
import org.volprov.testing.LoopDevice;

/**
 * The writer on a real block device: a partition of a loop device that holds an earlier tenant's
 * bytes, reached as LVM presents a logical volume, through a symbolic link to the device node.
 */
class LocalVolumeWriterIT {
    private static final long MIB = 1L << 20;
    private static final long PART = 16 * MIB;

    @TempDir
    static Path shared;
    private static LoopDevice disk;
    private LoopDevice.Partition part;
    @TempDir
    Path dir;

    @BeforeAll
    static void attach() throws IOException {
        assumeTrue(LoopDevice.unavailableReason().isEmpty(), () -> LoopDevice.unavailableReason().orElseThrow());
        disk = LoopDevice.create(shared, 64 * MIB);
    }

    @AfterAll
    static void detach() {
        if (disk != null) {
            disk.close();
        }
    }

    @BeforeEach
    void partition() throws IOException {
        part = disk.addPartition(PART);
        LoopDevice.writeTenantPattern(node(), part.start(), PART); // an earlier test wrote here
        assertThat(LoopDevice.holdsTenantPattern(node(), part.start(), 0, PART)).as("the partition holds the tenant's bytes before the write")
                .isTrue();
    }

    @AfterEach
    void removePartition() throws IOException {
        disk.removePartition(part.number());
    }

    private Path node() {
        return disk.partitionNode(part.number());
    }

    @ParameterizedTest(name = "block device required: {0}")
    @ValueSource(booleans = {true, false})
    void open_throughASymlinkToThePartition_writesTheDevice_andZeroesTheRest(boolean requireBlockDevice) throws IOException {
        Path link = Files.createSymbolicLink(dir.resolve("vm-root"), node()); // like /dev/vg/lv -> /dev/dm-3
        byte[] data = new byte[(int) (3 * MIB) + 4096];
        new Random(3).nextBytes(data);
        try (LocalVolumeWriter w = LocalVolumeWriter.open(link, requireBlockDevice)) {
            assertThat(w.localPath()).as("the writer works on the resolved node").contains(node().toRealPath());
            w.write(ByteBuffer.wrap(data));
            w.writeZeros(PART - data.length); // BLKZEROOUT through blkdiscard --zeroout
            w.finish();
        }
        assertThat(Files.isSymbolicLink(link)).isTrue();
        assertThat(read(node(), 0, data.length)).isEqualTo(data);
        assertThat(read(node(), data.length, (int) (PART - data.length))).containsOnly((byte) 0);
        assertThat(LoopDevice.holdsTenantPattern(disk.device(), 0, part.start() + PART, MIB))
                .as("the bytes after the partition are untouched").isTrue();
    }

    @Test
    void open_onTheDeviceNode_writesIt() throws IOException {
        try (LocalVolumeWriter w = LocalVolumeWriter.open(node(), true)) {
            w.write(ByteBuffer.wrap(new byte[] {1, 2, 3}));
            w.writeZeros(PART - 3);
            w.finish();
        }
        assertThat(read(node(), 0, 3)).containsExactly(1, 2, 3);
        assertThat(read(node(), 3, (int) (PART - 3))).containsOnly((byte) 0);
    }

    @Test
    void open_throughALinkWhoseNodeVanished_failsAndCreatesNothing() throws IOException {
        Path gone = disk.partitionNode(part.number() + 7);
        Path link = Files.createSymbolicLink(dir.resolve("vm-gone"), gone);
        assertThatThrownBy(() -> LocalVolumeWriter.open(link, true))
                .isInstanceOf(ProvisioningException.class)
                .extracting(e -> ((ProvisioningException) e).code()).isEqualTo(ErrorCode.BACKEND_FAILURE);
        assertThat(gone).doesNotExist();
    }

    private static byte[] read(Path p, long offset, int length) throws IOException {
        try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "r")) {
            byte[] b = new byte[length];
            f.seek(offset);
            f.readFully(b);
            return b;
        }
    }
}
