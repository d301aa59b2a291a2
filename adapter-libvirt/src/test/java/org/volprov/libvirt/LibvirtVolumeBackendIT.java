package org.volprov.libvirt;

import org.volprov.libvirt.testkit.LibvirtTestPool;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import java.util.UUID;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;
import org.volprov.VolumeInfo;
import org.volprov.VolumeWriter;

/** Behaviour beyond the shared contract, against a real libvirtd and a real dir pool. */
class LibvirtVolumeBackendIT {
    @RegisterExtension
    static final LibvirtTestPool POOL = new LibvirtTestPool();
    private static final long MIB = 1L << 20;

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

    private String name(String suffix) {
        return POOL.prefix() + suffix;
    }

    @Test
    void localAndStreamWrites_ofTheSameData_giveIdenticalBytes() throws Exception {
        assumeTrue(POOL.isLocal(), "LOCAL writes need the volume on this host");
        long size = 24 * MIB;
        byte[] expected = new byte[(int) size];
        VolumeInfo local = backend(WriteMode.LOCAL).create(name("same-local"), size);
        VolumeInfo stream = backend(WriteMode.STREAM).create(name("same-stream"), size);
        try (VolumeWriter w = backend(WriteMode.LOCAL).openWriter(local)) {
            assertThat(w.localPath()).isPresent();
            writeScript(w, expected);
        }
        try (VolumeWriter w = backend(WriteMode.STREAM).openWriter(stream)) {
            assertThat(w.localPath()).isEmpty();
            writeScript(w, new byte[(int) size]);
        }
        String want = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(expected));
        assertThat(POOL.sha256(local)).as("LOCAL").isEqualTo(want);
        assertThat(POOL.sha256(stream)).as("STREAM").isEqualTo(want);
    }

    /** Random data with zero regions written three ways (writeZeros, skip on a fresh volume, tail); mirrors it in {@code image}. */
    private static void writeScript(VolumeWriter w, byte[] image) throws IOException {
        Random r = new Random(7);
        int pos = 0;
        pos = data(w, image, pos, (int) (5 * MIB) + 3, r);
        w.writeZeros(4 * MIB);
        pos += (int) (4 * MIB);
        pos = data(w, image, pos, (int) (2 * MIB), r);
        w.skip(3 * MIB - 3);
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
    void create_newVolume_readsAsZerosOnlyInAFilePool_andIsSparseThere() throws Exception {
        LibvirtVolumeBackend b = backend(WriteMode.AUTO);
        boolean filePool = List.of("dir", "fs", "netfs").contains(b.poolType());
        VolumeInfo v = b.create(name("sparse"), 64 * MIB);
        assertThat(v.readsAsZeros()).as("new volume in a " + b.poolType() + " pool reads as zeros").isEqualTo(filePool);
        assertThat(b.find(v.name()).orElseThrow().readsAsZeros()).isFalse();
        if (filePool && POOL.isLocal()) {
            assertThat(LibvirtTestPool.run(List.of("du", "-B1", "--apparent-size", v.path()), true)).startsWith(Long.toString(64 * MIB));
            long used = Long.parseLong(LibvirtTestPool.run(List.of("du", "-B1", v.path()), true).split("\\s+")[0]);
            assertThat(used).as("blocks allocated for a new 64 MiB volume").isLessThan(MIB);
        }
    }

    @Test
    void openWriter_inAutoMode_onALocalUri_writesThroughThePath() {
        assumeTrue(POOL.isLocal(), "AUTO picks STREAM for a remote TEST_LIBVIRT_URI");
        LibvirtVolumeBackend b = backend(WriteMode.AUTO);
        VolumeInfo v = b.create(name("auto"), MIB);
        try (VolumeWriter w = b.openWriter(v)) {
            assertThat(w.localPath()).contains(Path.of(v.path()));
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
        assertThat(POOL.read(v, 0, 2)).containsExactly(1, 2);
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
        assertThat(LibvirtTestPool.volumes(POOL.pool())).noneMatch(v -> !v.startsWith(POOL.prefix()));
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
    void create_largerThanThePool_failsWithInsufficientSpace() {
        assertThatThrownBy(() -> backend(WriteMode.AUTO).create(name("huge"), 1L << 60))
                .isInstanceOf(ProvisioningException.class)
                .hasMessageContaining("bytes available")
                .extracting(e -> ((ProvisioningException) e).code()).isEqualTo(ErrorCode.INSUFFICIENT_SPACE);
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
