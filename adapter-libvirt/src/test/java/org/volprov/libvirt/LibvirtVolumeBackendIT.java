package org.volprov.libvirt;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.UUID;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;
import org.volprov.libvirt.testkit.LibvirtTestPool;
import org.volprov.testing.LoopDevice;
import org.volprov.volume.VolumeInfo;
import org.volprov.volume.VolumeWriter;

/**
 * Behaviour beyond the shared contract, against a real libvirtd: {@link LibvirtScenarios} and what
 * only a {@code dir} pool has, on a {@code dir} pool; the same scenarios and the partition rules on
 * a {@code disk} pool; and LOCAL writes through a symlink to a block device, the way an LVM pool
 * presents its volumes.
 */
class LibvirtVolumeBackendIT {
    private static final long MIB = 1L << 20;

    @Nested
    @DisplayName("dir pool")
    class DirPool extends LibvirtScenarios {
        @RegisterExtension
        static final LibvirtTestPool POOL = new LibvirtTestPool();

        DirPool() {
            super(POOL);
        }

        @Test
        void create_withZeroCapacity_isAnInvalidRequest() {
            assertThatThrownBy(() -> backend(WriteMode.AUTO).create(name("zero"), 0))
                    .isInstanceOf(ProvisioningException.class)
                    .extracting(e -> ((ProvisioningException) e).code()).isEqualTo(ErrorCode.INVALID_REQUEST);
        }

        @Test
        void resize_ofAMissingVolume_failsWithBackendFailure() {
            assertThatThrownBy(() -> backend(WriteMode.AUTO).resize(name("nothere"), MIB))
                    .isInstanceOf(ProvisioningException.class)
                    .hasMessageContaining("does not exist")
                    .extracting(e -> ((ProvisioningException) e).code()).isEqualTo(ErrorCode.BACKEND_FAILURE);
        }

        @Test
        void create_inASmallTmpfsPool_failsWithInsufficientSpace_andLeavesNothing() throws Exception {
            assumeTrue(POOL.isLocal(), "mounting a tmpfs needs the daemon on this host");
            Path mount = Files.createTempDirectory("volprov-tmpfs-");
            String pool = "volprov-small-" + UUID.randomUUID().toString().substring(0, 8);
            LibvirtTestPool.run(List.of("mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", mount.toString()), true);
            try {
                LibvirtTestPool.defineDirPool(pool, mount);
                try (LibvirtVolumeBackend b = LibvirtVolumeBackend.open(
                        LibvirtConfig.builder().uri(POOL.uri()).poolName(pool).writeMode(WriteMode.LOCAL).build())) {
                    assertThatThrownBy(() -> b.create("too-big", 64 * MIB))
                            .isInstanceOf(ProvisioningException.class)
                            .hasMessageContaining("too-big needs " + 64 * MIB + " bytes")
                            .hasMessageContaining(pool)
                            .extracting(e -> ((ProvisioningException) e).code()).isEqualTo(ErrorCode.INSUFFICIENT_SPACE);
                    assertThat(b.find("too-big")).isEmpty();
                    VolumeInfo fits = b.create("fits", 8 * MIB);
                    assertThatThrownBy(() -> b.resize("fits", 64 * MIB))
                            .isInstanceOf(ProvisioningException.class)
                            .extracting(e -> ((ProvisioningException) e).code()).isEqualTo(ErrorCode.INSUFFICIENT_SPACE);
                    assertThat(b.delete(fits.name())).isTrue();
                }
                assertThat(LibvirtTestPool.volumes(pool)).isEmpty();
            } finally {
                LibvirtTestPool.removePool(pool);
                LibvirtTestPool.run(List.of("umount", mount.toString()), true);
                Files.delete(mount);
            }
        }

        @Test
        void open_whenThePoolDoesNotExist_failsWithBackendFailureNamingIt() {
            LibvirtConfig c = LibvirtConfig.builder().uri(POOL.uri()).poolName("volprov-no-such-pool").build();
            assertThatThrownBy(() -> LibvirtVolumeBackend.open(c))
                    .isInstanceOf(ProvisioningException.class)
                    .hasMessageContaining("volprov-no-such-pool does not exist")
                    .extracting(e -> ((ProvisioningException) e).code()).isEqualTo(ErrorCode.BACKEND_FAILURE);
        }

        @Test
        void operations_whenThePoolWasStopped_failWithBackendFailure_andOpenRefusesIt() throws Exception {
            assumeTrue(POOL.isLocal(), "the pool is defined on this host");
            Path dir = Files.createTempDirectory("volprov-stopped-");
            String pool = "volprov-stopped-" + UUID.randomUUID().toString().substring(0, 8);
            LibvirtTestPool.defineDirPool(pool, dir);
            try (LibvirtVolumeBackend b = LibvirtVolumeBackend.open(LibvirtConfig.builder().uri(POOL.uri()).poolName(pool).build())) {
                LibvirtTestPool.virsh("pool-destroy", pool);
                assertThatThrownBy(() -> b.find("x"))
                        .isInstanceOf(ProvisioningException.class)
                        .hasMessageContaining("is not active")
                        .extracting(e -> ((ProvisioningException) e).code()).isEqualTo(ErrorCode.BACKEND_FAILURE);
                assertThatThrownBy(() -> LibvirtVolumeBackend.open(LibvirtConfig.builder().uri(POOL.uri()).poolName(pool).build()))
                        .isInstanceOf(ProvisioningException.class)
                        .extracting(e -> ((ProvisioningException) e).code()).isEqualTo(ErrorCode.BACKEND_FAILURE);
            } finally {
                LibvirtTestPool.virsh("pool-undefine", pool);
                Files.deleteIfExists(dir);
            }
        }

        @Test
        void open_withDefinePoolAt_definesAndStartsAMissingDirPool() throws Exception {
            assumeTrue(POOL.isLocal(), "the pool directory is on this host");
            Path dir = Files.createTempDirectory("volprov-defined-").resolve("pool");
            String pool = "volprov-defined-" + UUID.randomUUID().toString().substring(0, 8);
            try (LibvirtVolumeBackend b = LibvirtVolumeBackend.open(
                    LibvirtConfig.builder().uri(POOL.uri()).poolName(pool).definePoolAt(dir).build())) {
                VolumeInfo v = b.create("first", MIB);
                assertThat(Path.of(v.path())).isEqualTo(dir.resolve("first"));
                assertThat(LibvirtTestPool.virsh("pool-info", pool)).contains("running");
                b.delete("first");
            } finally {
                LibvirtTestPool.removePool(pool);
                Files.deleteIfExists(dir);
                Files.deleteIfExists(dir.getParent());
            }
        }

        @Test
        void operations_afterLibvirtdRestart_reconnectOnTheSameInstance() throws Exception {
            assumeTrue(POOL.isLocal(), "restarting the daemon needs it on this host");
            LibvirtVolumeBackend b = backend(WriteMode.STREAM);
            VolumeInfo before = b.create(name("restart-a"), MIB);

            ProcessHandle daemon = ProcessHandle.of(LibvirtTestPool.daemonPid()).orElseThrow();
            assertThat(daemon.destroy()).as("SIGTERM sent to libvirtd").isTrue();
            daemon.onExit().get(60, TimeUnit.SECONDS);
            assertThat(LibvirtTestPool.daemonAnswers()).isFalse();
            LibvirtTestPool.startDaemon();

            assertThat(b.find(before.name())).isPresent();
            VolumeInfo after = b.create(name("restart-b"), MIB);
            try (VolumeWriter w = b.openWriter(after)) {
                w.write(ByteBuffer.wrap(new byte[] {4, 2}));
                w.finish();
            }
            assertThat(POOL.read(after, 0, 2)).containsExactly(4, 2);
        }

        @Test
        void operations_whileLibvirtdIsDown_failWithBackendFailure_thenRecover() throws Exception {
            assumeTrue(POOL.isLocal(), "stopping the daemon needs it on this host");
            LibvirtVolumeBackend b = backend(WriteMode.AUTO);
            ProcessHandle daemon = ProcessHandle.of(LibvirtTestPool.daemonPid()).orElseThrow();
            daemon.destroy();
            daemon.onExit().get(60, TimeUnit.SECONDS);
            try {
                assertThatThrownBy(() -> b.find(name("down")))
                        .isInstanceOf(ProvisioningException.class)
                        .hasMessageContaining("cannot connect to libvirt at " + POOL.uri())
                        .extracting(e -> ((ProvisioningException) e).code()).isEqualTo(ErrorCode.BACKEND_FAILURE);
            } finally {
                LibvirtTestPool.startDaemon();
            }
            assertThat(b.find(name("down"))).isEmpty();
        }

        @Test
        void concurrentJobs_onOneBackend_allSucceed() throws Exception {
            LibvirtVolumeBackend b = backend(WriteMode.STREAM);
            ExecutorService pool = Executors.newFixedThreadPool(4);
            try {
                List<Future<byte[]>> results = new ArrayList<>();
                for (int i = 0; i < 8; i++) {
                    String n = name("par-" + i);
                    byte fill = (byte) (i + 1);
                    results.add(pool.submit(() -> {
                        VolumeInfo v = b.create(n, 2 * MIB);
                        try (VolumeWriter w = b.openWriter(v)) {
                            byte[] data = new byte[(int) (2 * MIB)];
                            java.util.Arrays.fill(data, fill);
                            w.write(ByteBuffer.wrap(data));
                            w.finish();
                        }
                        assertThat(b.find(n)).isPresent();
                        byte[] got = POOL.read(v, 0, (int) (2 * MIB));
                        assertThat(b.delete(n)).isTrue();
                        return got;
                    }));
                }
                for (int i = 0; i < results.size(); i++) {
                    assertThat(results.get(i).get(2, TimeUnit.MINUTES)).containsOnly((byte) (i + 1));
                }
            } finally {
                pool.shutdownNow();
                assertThat(pool.awaitTermination(1, TimeUnit.MINUTES)).isTrue();
            }
        }

        @Test
        void close_isIdempotent_andLaterCallsFailWithBackendFailure() {
            LibvirtVolumeBackend b = POOL.backend(WriteMode.AUTO);
            b.close();
            b.close();
            assertThatThrownBy(() -> b.find(name("closed")))
                    .isInstanceOf(ProvisioningException.class)
                    .hasMessageContaining("closed")
                    .extracting(e -> ((ProvisioningException) e).code()).isEqualTo(ErrorCode.BACKEND_FAILURE);
        }

        @Test
        void open_onAnUnreachableUri_failsWithBackendFailure() {
            LibvirtConfig c = LibvirtConfig.builder().uri("qemu+unix:///system?socket=/nonexistent/libvirt-sock")
                    .poolName("whatever").build();
            assertThatThrownBy(() -> LibvirtVolumeBackend.open(c))
                    .isInstanceOf(ProvisioningException.class)
                    .hasMessageContaining("cannot connect to libvirt")
                    .extracting(e -> ((ProvisioningException) e).code()).isEqualTo(ErrorCode.BACKEND_FAILURE);
        }

        @Test
        void open_whenTheConnectionFails_neverShowsThePasswordOfTheUri() {
            // The first libvirt quotes in its own message; the second fails to connect to a closed port.
            for (String uri : new String[] {"nosuchdriver://admin:hunter2@kvm7/system",
                    "qemu+tcp://admin:hunter2@127.0.0.1:1/system?password=hunter2"}) {
                LibvirtConfig c = LibvirtConfig.builder().uri(uri).poolName("whatever").build();
                assertThatThrownBy(() -> LibvirtVolumeBackend.open(c)).as(uri)
                        .isInstanceOfSatisfying(ProvisioningException.class, e -> {
                            assertThat(e.code()).isEqualTo(ErrorCode.BACKEND_FAILURE);
                            assertThat(e.getMessage()).contains("cannot connect to libvirt at", "admin:****@");
                            for (Throwable t = e; t != null; t = t.getCause()) {
                                assertThat(String.valueOf(t)).doesNotContain("hunter2");
                            }
                        });
            }
        }
    }

    @Nested
    @DisplayName("disk pool (loop device partitions)")
    class DiskPool extends LibvirtScenarios {
        @RegisterExtension
        static final LibvirtTestPool POOL = LibvirtTestPool.disk(64 * MIB);

        DiskPool() {
            super(POOL);
        }

        private LoopDevice loop() {
            return POOL.loopDevice();
        }

        @Test
        void nextVolumeName_isThePartitionLibvirtMakesNext() throws IOException {
            LibvirtVolumeBackend b = backend(WriteMode.AUTO);
            assertThat(b.nextVolumeName()).as("from the device the pool's link points at").contains(loop().partitionName(1));
            assertThat(b.create(POOL.volumeName("one"), 4 * MIB).name()).isEqualTo(loop().partitionName(1));
            assertThat(b.nextVolumeName()).contains(loop().partitionName(2));
            b.create(POOL.volumeName("two"), 4 * MIB);
            assertThat(b.nextVolumeName()).contains(loop().partitionName(3));
            assertThat(b.delete(loop().partitionName(1))).isTrue();
            assertThat(b.nextVolumeName()).as("GPT takes the lowest number free").contains(loop().partitionName(1));
            assertThat(loop().partitions()).extracting(LoopDevice.Partition::number).containsExactly(2);
        }

        @Test
        void create_withANameThePoolWouldNotGive_isRefusedBeforeAnyPartitionIsMade() throws IOException {
            LibvirtVolumeBackend b = backend(WriteMode.AUTO);
            b.create(POOL.volumeName("first"), 4 * MIB);
            List<LoopDevice.Partition> before = loop().partitions();
            for (String wrong : List.of("vm-42-root", loop().partitionName(3), loop().partitionName(1) + "0")) {
                assertThatThrownBy(() -> b.create(wrong, 4 * MIB)).as(wrong)
                        .isInstanceOf(ProvisioningException.class)
                        .hasMessageStartingWith("volumeName: ")
                        .hasMessageContaining("the next one is " + loop().partitionName(2))
                        .extracting(e -> ((ProvisioningException) e).code()).isEqualTo(ErrorCode.INVALID_REQUEST);
            }
            assertThat(loop().partitions()).as("partitions on " + loop()).isEqualTo(before);
        }

        @Test
        void create_withAWrongName_whenItCannotBeToldInAdvance_isRefused_andLeavesNoPartition() throws IOException {
            // As for an empty pool on another host whose device is a by-id link: only libvirt knows the
            // name, and tells it after making the partition.
            LibvirtVolumeBackend b = backend(WriteMode.AUTO);
            assertThatThrownBy(() -> b.create("vm-42-root", 4 * MIB, false))
                    .isInstanceOf(ProvisioningException.class)
                    .hasMessageStartingWith("volumeName: ")
                    .hasMessageContaining("it made " + loop().partitionName(1) + " and refused the name vm-42-root")
                    .hasMessageContaining("ask for " + loop().partitionName(1))
                    .extracting(e -> ((ProvisioningException) e).code()).isEqualTo(ErrorCode.INVALID_REQUEST);
            assertThat(loop().partitions()).as("partitions on " + loop()).isEmpty();
            assertThat(LibvirtTestPool.volumes(POOL.pool())).isEmpty();
        }

        @Test
        void create_ofASizeNotInWholeSectors_isRoundedUp_asCapacityForSays() throws IOException {
            LibvirtVolumeBackend b = backend(WriteMode.LOCAL);
            long asked = 10_000_000;
            VolumeInfo v = b.create(POOL.volumeName("odd"), asked);
            assertThat(b.capacityFor(asked)).isEqualTo(10_000_384);
            assertThat(v.capacityBytes()).isEqualTo(10_000_384);
            assertThat(POOL.partitionOf(v).size()).as("the partition, per parted").isEqualTo(10_000_384);
            assertThat(LibvirtTestPool.sizeOnDisk(Path.of(v.path()))).isEqualTo(10_000_384);
        }

        @Test
        void create_whenNoFreeRegionIsLargeEnough_failsWithInsufficientSpace_beforeMakingAPartition() throws IOException {
            LibvirtVolumeBackend b = backend(WriteMode.AUTO);
            for (int i = 1; i <= 3; i++) {
                b.create(POOL.volumeName("fill-" + i), 20 * MIB);
            }
            b.delete(loop().partitionName(2)); // 20 MiB free between p1 and p3, and under 4 MiB after p3
            List<LoopDevice.Partition> before = loop().partitions();
            assertThat(POOL.volumeName("hole")).isEqualTo(loop().partitionName(2));
            assertThatThrownBy(() -> b.create(loop().partitionName(2), 22 * MIB))
                    .isInstanceOf(ProvisioningException.class)
                    .hasMessageContaining("in one free region")
                    .extracting(e -> ((ProvisioningException) e).code()).isEqualTo(ErrorCode.INSUFFICIENT_SPACE);
            assertThatThrownBy(() -> b.create(loop().partitionName(2), 20 * MIB))
                    .as("libvirt uses a region only when it is larger than the request")
                    .isInstanceOf(ProvisioningException.class)
                    .extracting(e -> ((ProvisioningException) e).code()).isEqualTo(ErrorCode.INSUFFICIENT_SPACE);
            assertThat(loop().partitions()).isEqualTo(before);
            assertThat(b.create(loop().partitionName(2), 19 * MIB).capacityBytes()).isEqualTo(19 * MIB);
        }

        @Test
        void localWriter_onAPartitionHoldingATenantsBytes_leavesOnlyWhatWasWritten() throws IOException {
            LibvirtVolumeBackend b = backend(WriteMode.LOCAL);
            VolumeInfo v = b.create(POOL.volumeName("tenant"), 8 * MIB);
            long start = POOL.partitionOf(v).start();
            byte[] data = new byte[(int) MIB + 5];
            new Random(5).nextBytes(data);
            try (VolumeWriter w = b.openWriter(v)) {
                w.write(ByteBuffer.wrap(data));
                w.writeZeros(v.capacityBytes() - data.length);
                w.finish();
            }
            assertThat(POOL.read(v, 0, data.length)).isEqualTo(data);
            assertThat(POOL.read(v, data.length, (int) (v.capacityBytes() - data.length))).containsOnly((byte) 0);
            assertThat(LoopDevice.holdsTenantPattern(loop().device(), 0, start + v.capacityBytes(), MIB))
                    .as("the bytes after the partition").isTrue();
        }

        /**
         * A disk pool defined on the loop device itself, as most would define it: libvirt 9.0 deletes
         * a partition with {@code parted /dev/loopN rm pM}, which parted refuses. The backend refuses
         * a wrong name before libvirt makes a partition (which libvirt then could not remove), a
         * delete fails saying why and what to do, and a refusal libvirt makes after the fact says
         * which partition it left.
         */
        @Test
        void onAPoolDefinedOnTheLoopDeviceItself_wrongNamesMakeNothing_andDeleteSaysWhyItCannot() throws Exception {
            Path dir = Files.createTempDirectory("volprov-raw-disk-");
            String name = "volprov-raw-" + UUID.randomUUID().toString().substring(0, 8);
            try (LoopDevice raw = LoopDevice.create(dir, 32 * MIB)) {
                Path xml = Files.writeString(dir.resolve("pool.xml"), "<pool type='disk'><name>" + name + "</name><source>"
                        + "<device path='" + raw.device() + "'/><format type='gpt'/></source><target><path>/dev</path>"
                        + "</target></pool>");
                LibvirtTestPool.virsh("pool-create", xml.toString()); // transient: gone when destroyed
                try (LibvirtVolumeBackend b = LibvirtVolumeBackend.open(
                        LibvirtConfig.builder().uri(POOL.uri()).poolName(name).writeMode(WriteMode.LOCAL).build())) {
                    assertThat(b.nextVolumeName()).contains(raw.partitionName(1));
                    assertThatThrownBy(() -> b.create("vm-1", 4 * MIB))
                            .isInstanceOf(ProvisioningException.class)
                            .extracting(e -> ((ProvisioningException) e).code()).isEqualTo(ErrorCode.INVALID_REQUEST);
                    assertThat(raw.partitions()).as("nothing left behind").isEmpty();

                    VolumeInfo v = b.create(raw.partitionName(1), 4 * MIB);
                    try (VolumeWriter w = b.openWriter(v)) {
                        w.write(ByteBuffer.wrap(new byte[] {4, 2}));
                        w.writeZeros(v.capacityBytes() - 2);
                        w.finish();
                    }
                    assertThatThrownBy(() -> b.delete(v.name()))
                            .isInstanceOf(ProvisioningException.class)
                            .hasMessageContaining("cannot delete partitions of [" + raw.device() + "]")
                            .hasMessageContaining("symlink whose name ends in 'p'")
                            .extracting(e -> ((ProvisioningException) e).code()).isEqualTo(ErrorCode.BACKEND_FAILURE);
                    assertThat(raw.partitions()).extracting(LoopDevice.Partition::number).containsExactly(1);

                    // Where the name could not be told in advance, libvirt's refusal leaves a partition neither can remove.
                    assertThatThrownBy(() -> b.create("vm-2", 4 * MIB, false))
                            .isInstanceOf(ProvisioningException.class)
                            .hasMessageContaining("it made " + raw.partitionName(2) + " and refused the name vm-2")
                            .hasMessageContaining("could not be deleted and is left in the pool")
                            .extracting(e -> ((ProvisioningException) e).code()).isEqualTo(ErrorCode.INVALID_REQUEST);
                    assertThat(raw.partitions()).extracting(LoopDevice.Partition::number).containsExactly(1, 2);
                } finally {
                    LibvirtTestPool.run(List.of("virsh", "-c", POOL.uri(), "pool-destroy", name), false);
                }
            } finally {
                Files.deleteIfExists(dir.resolve("pool.xml"));
                Files.deleteIfExists(dir);
            }
        }
        /**
         * libvirt 9.0 keys a disk pool's volumes by the links in its target directory but looks a new
         * partition up by its node: with a volume in the pool, a create would delete that partition.
         */
        @Test
        void onAPoolWhoseTargetIsADirectoryOfLinks_aSecondCreateIsRefused_andTheFirstPartitionStays() throws Exception {
            Path dir = Files.createTempDirectory("volprov-linked-target-");
            String name = "volprov-bylink-" + UUID.randomUUID().toString().substring(0, 8);
            Path links = Path.of("/dev", name);
            try (LoopDevice dev = LoopDevice.create(dir, 32 * MIB)) {
                Files.createDirectories(links);
                for (int i = 1; i <= 4; i++) {
                    Files.createSymbolicLink(links.resolve("part" + i), dev.partitionNode(i));
                }
                Path source = Files.createSymbolicLink(dir.resolve(dev.device().getFileName() + "p"), dev.device());
                Path xml = Files.writeString(dir.resolve("pool.xml"), "<pool type='disk'><name>" + name + "</name><source>"
                        + "<device path='" + source + "'/><format type='gpt'/></source><target><path>" + links
                        + "</path></target></pool>");
                LibvirtTestPool.virsh("pool-create", xml.toString());
                try (LibvirtVolumeBackend b = LibvirtVolumeBackend.open(
                        LibvirtConfig.builder().uri(POOL.uri()).poolName(name).writeMode(WriteMode.LOCAL).build())) {
                    VolumeInfo first = b.create(dev.partitionName(1), 4 * MIB);
                    assertThat(first.path()).isEqualTo(links.resolve("part1").toString());
                    assertThatThrownBy(() -> b.create(dev.partitionName(2), 4 * MIB))
                            .isInstanceOf(ProvisioningException.class)
                            .hasMessageContaining("would take an existing partition")
                            .extracting(e -> ((ProvisioningException) e).code()).isEqualTo(ErrorCode.BACKEND_FAILURE);
                    assertThat(dev.partitions()).extracting(LoopDevice.Partition::number).containsExactly(1);
                    assertThat(b.find(first.name())).isPresent();
                } finally {
                    LibvirtTestPool.run(List.of("virsh", "-c", POOL.uri(), "pool-destroy", name), false);
                }
            } finally {
                try (java.util.stream.Stream<Path> s = Files.list(links)) {
                    for (Path p : s.toList()) {
                        Files.delete(p);
                    }
                } catch (java.nio.file.NoSuchFileException e) {
                    // never made
                }
                Files.deleteIfExists(links);
                try (java.util.stream.Stream<Path> s = Files.list(dir)) {
                    for (Path p : s.toList()) {
                        Files.delete(p);
                    }
                }
                Files.delete(dir);
            }
        }
    }

    @Nested
    @DisplayName("symlinks to loop partitions (LVM's path shape)")
    class LinkedPartitions {
        @RegisterExtension
        static final LibvirtTestPool POOL = LibvirtTestPool.linked(64 * MIB);

        private final List<AutoCloseable> toClose = new ArrayList<>();

        @AfterEach
        void closeAll() throws Exception {
            for (int i = toClose.size() - 1; i >= 0; i--) {
                toClose.get(i).close();
            }
        }

        private LibvirtVolumeBackend backend(WriteMode mode) {
            LibvirtVolumeBackend b = POOL.backend(mode);
            toClose.add(b);
            return b;
        }

        @Test
        void localWriter_throughTheSymlink_writesThePartition_andZeroesItsTail() throws IOException {
            VolumeInfo existing = POOL.existingVolume("vm-root", 8 * MIB);
            assertThat(Files.isSymbolicLink(Path.of(existing.path()))).as(existing.path()).isTrue();
            LibvirtVolumeBackend b = backend(WriteMode.LOCAL);
            VolumeInfo v = b.find(existing.name()).orElseThrow();
            assertThat(v.path()).isEqualTo(existing.path());
            assertThat(v.readsAsZeros()).isFalse();
            Path node = Path.of(v.path()).toRealPath();
            long start = POOL.partitionOf(v).start();
            byte[] data = new byte[(int) (2 * MIB) + 123];
            new Random(9).nextBytes(data);
            try (VolumeWriter w = b.openWriter(v)) {
                assertThat(w.localPath()).contains(node);
                w.write(ByteBuffer.wrap(data));
                w.writeZeros(v.capacityBytes() - data.length);
                w.finish();
            }
            assertThat(Files.isSymbolicLink(Path.of(v.path()))).as("still a link to the device").isTrue();
            assertThat(POOL.read(v, 0, data.length)).isEqualTo(data);
            assertThat(POOL.read(v, data.length, (int) (v.capacityBytes() - data.length))).containsOnly((byte) 0);
            assertThat(LoopDevice.holdsTenantPattern(POOL.loopDevice().device(), 0, start + v.capacityBytes(), MIB))
                    .as("the bytes after the partition").isTrue();
        }

        @Test
        void autoMode_onALocalUri_writesLocally_andStreamWritesTheSameBytes() throws Exception {
            LibvirtVolumeBackend auto = backend(WriteMode.AUTO);
            VolumeInfo a = auto.find(POOL.existingVolume("vm-a", 24 * MIB).name()).orElseThrow();
            VolumeInfo s = auto.find(POOL.existingVolume("vm-s", 24 * MIB).name()).orElseThrow();
            byte[] expected = new byte[(int) a.capacityBytes()];
            try (VolumeWriter w = auto.openWriter(a)) {
                assertThat(w.localPath()).contains(Path.of(a.path()).toRealPath());
                LibvirtScenarios.writeScript(w, expected, false);
            }
            try (VolumeWriter w = backend(WriteMode.STREAM).openWriter(s)) {
                LibvirtScenarios.writeScript(w, new byte[(int) s.capacityBytes()], false);
            }
            assertThat(POOL.sha256(s)).as("STREAM").isEqualTo(POOL.sha256(a));
            assertThat(POOL.read(a, 5 * MIB + 3, (int) (4 * MIB))).as("a region written as zeros").containsOnly((byte) 0);
        }

        @Test
        void localWriter_whenTheLinkedNodeVanished_failsAndCreatesNothing() throws IOException {
            VolumeInfo v = POOL.existingVolume("vm-gone", 4 * MIB);
            Path node = Path.of(v.path()).toRealPath();
            LibvirtVolumeBackend b = backend(WriteMode.LOCAL);
            VolumeInfo found = b.find(v.name()).orElseThrow();
            POOL.loopDevice().removePartition(POOL.partitionOf(v).number()); // an LV removed behind the pool's back
            assertThatThrownBy(() -> b.openWriter(found))
                    .isInstanceOf(ProvisioningException.class)
                    .extracting(e -> ((ProvisioningException) e).code()).isEqualTo(ErrorCode.BACKEND_FAILURE);
            assertThat(node).doesNotExist();
        }
    }
}
