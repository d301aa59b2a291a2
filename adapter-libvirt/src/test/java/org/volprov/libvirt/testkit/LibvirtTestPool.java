package org.volprov.libvirt.testkit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.io.InputStream;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.stream.Stream;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.BeforeEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.volprov.libvirt.LibvirtConfig;
import org.volprov.libvirt.LibvirtVolumeBackend;
import org.volprov.libvirt.WriteMode;
import org.volprov.testing.LoopDevice;
import org.volprov.volume.VolumeInfo;

/**
 * A real libvirt storage pool for one test class, of one of three {@link Kind kinds}. Register with
 * {@code @RegisterExtension static final LibvirtTestPool POOL = new LibvirtTestPool();} (a
 * {@code dir} pool), {@link #disk(long)} or {@link #linked(long)}.
 *
 * <p>Before all tests: makes sure libvirtd answers on the URI (starting {@code libvirtd -d} on this
 * host when it does not; failing with what to install when it cannot), then makes the pool under a
 * unique name. A {@code DISK} or {@code LINKED} pool sits on a {@link LoopDevice} of its own, filled
 * with an earlier tenant's bytes and labelled GPT. Before each test the names handed out are
 * forgotten; after each test: fails when the pool holds a volume that appeared during the test and
 * was not handed out by {@link #volumeName} or {@link #existingVolume} (a {@code dir} pool: does not
 * carry {@link #prefix()}), then deletes what the test made, and gives the space the test used
 * back to the tenant (its pattern is written over it again). After all: removes the pool, the
 * links and the loop device, also when a step fails; it never touches a loop device or pool it did
 * not make.
 *
 * <p>{@code TEST_LIBVIRT_URI} replaces {@code qemu:///system}; {@code TEST_LIBVIRT_POOL} names an
 * existing pool to use instead of a {@code dir} pool (it is then neither started nor removed, and
 * only volumes carrying this run's prefix are deleted). The block-device kinds need libvirtd and
 * the loop device on this host: with a remote URI or {@code TEST_LOOP_DEVICES=off} their tests are
 * skipped, saying so. Everything is checked with {@code virsh}, {@code parted} and direct reads,
 * not with the code under test.
 */
public final class LibvirtTestPool implements BeforeAllCallback, BeforeEachCallback, AfterEachCallback, AfterAllCallback {
    public static final String URI = envOr("TEST_LIBVIRT_URI", "qemu:///system");
    private static final String GIVEN_POOL = System.getenv("TEST_LIBVIRT_POOL");
    private static final Duration DAEMON_WAIT = Duration.ofSeconds(60);
    private static final Path LINK_ROOT = Path.of("/run/volprov-test");

    /** What the pool's volumes are. */
    public enum Kind {
        /** A {@code dir} pool: sparse files in a temp directory (or the pool {@code TEST_LIBVIRT_POOL} names). */
        DIR("a dir pool"),
        /** A {@code disk} pool: GPT partitions of a loop device, made and deleted by libvirt. */
        DISK("a disk pool (loop device partitions)"),
        /**
         * LVM's path shape: a {@code dir} pool whose volumes are symlinks to partitions of a loop
         * device ({@code vm-1 -> /dev/loop3p1}, as {@code /dev/vg/lv -> /dev/dm-3}); the volumes are
         * made by {@link #existingVolume}, and deleting one removes the link only.
         */
        LINKED("volumes linked to loop partitions (LVM's path shape)");

        private final String label;

        Kind(String label) {
            this.label = label;
        }

        @Override
        public String toString() {
            return label;
        }
    }

    private final Kind kind;
    private final long deviceBytes;
    private final String prefix = "vpit" + UUID.randomUUID().toString().substring(0, 8) + "-";
    private final Map<String, String> names = new HashMap<>();
    private final List<Integer> partitionsMade = new ArrayList<>();
    private String pool;
    private Path directory;
    private Path links;
    private LoopDevice loop;
    private boolean ownPool;
    private Set<String> before = Set.of();

    /** A {@code dir} pool. */
    public LibvirtTestPool() {
        this(Kind.DIR, 0);
    }

    private LibvirtTestPool(Kind kind, long deviceBytes) {
        this.kind = kind;
        this.deviceBytes = deviceBytes;
    }

    /** A {@code disk} pool on a loop device of {@code deviceBytes} (whole MiB). */
    public static LibvirtTestPool disk(long deviceBytes) {
        return new LibvirtTestPool(Kind.DISK, deviceBytes);
    }

    /** A {@code dir} pool of symlinks to partitions of a loop device of {@code deviceBytes}. */
    public static LibvirtTestPool linked(long deviceBytes) {
        return new LibvirtTestPool(Kind.LINKED, deviceBytes);
    }

    public Kind kind() {
        return kind;
    }

    /** Whether the pool's volumes are block devices. */
    public boolean blockDevices() {
        return kind != Kind.DIR;
    }

    public String uri() {
        return URI;
    }

    public String pool() {
        return pool;
    }

    /** Every volume a test creates in a {@code dir} pool starts with this. */
    public String prefix() {
        return prefix;
    }

    /** The loop device under a block-device pool. */
    public LoopDevice loopDevice() {
        if (loop == null) {
            throw new IllegalStateException(kind + " has no loop device");
        }
        return loop;
    }

    public boolean isLocal() {
        return LibvirtConfig.isLocal(URI);
    }

    public LibvirtVolumeBackend backend(WriteMode mode) {
        return LibvirtVolumeBackend.open(LibvirtConfig.builder().uri(URI).poolName(pool).writeMode(mode).build());
    }

    /**
     * A name for a volume the test is about to create, the same for the same {@code hint} during one
     * test: {@code prefix() + hint}, or in a {@code disk} pool the name of the partition libvirt makes
     * next ({@code loop3p1}: a disk pool takes no other), read from the device with {@code parted}.
     * Ask for it just before the create, as the next partition is the lowest number free then.
     */
    public String volumeName(String hint) {
        return names.computeIfAbsent(hint, h -> {
            if (kind != Kind.DISK) {
                return prefix + h;
            }
            try {
                return loop.partitionName(loop.nextPartitionNumber());
            } catch (IOException e) {
                throw new IllegalStateException("cannot read the partitions of " + loop, e);
            }
        });
    }

    /**
     * A volume made outside the code under test, as an earlier tenant left it: {@code bytes} (whole
     * sectors) that all hold {@link LoopDevice#tenantByte the tenant's pattern}. In a {@code LINKED}
     * pool this is the only way to a volume.
     */
    public VolumeInfo existingVolume(String hint, long bytes) throws IOException {
        String name = volumeName(hint);
        Path node;
        long offset = 0;
        switch (kind) {
            case LINKED -> {
                LoopDevice.Partition p = loop.addPartition(bytes);
                partitionsMade.add(p.number());
                node = loop.partitionNode(p.number());
                offset = p.start();
                Files.createSymbolicLink(directory.resolve(name), node);
                virsh("pool-refresh", pool);
            }
            case DISK -> {
                virsh("vol-create-as", pool, name, Long.toString(bytes));
                LoopDevice.Partition p = partitionOf(info(name));
                node = loop.partitionNode(p.number());
                offset = p.start();
            }
            default -> {
                virsh("vol-create-as", pool, name, Long.toString(bytes));
                node = Path.of(virsh("vol-path", "--pool", pool, name).strip());
                if (!(isLocal() && Files.isWritable(node))) {
                    Path tmp = Files.createTempFile("volprov-tenant-", ".bin");
                    try {
                        LoopDevice.writeTenantPattern(tmp, 0, bytes);
                        virsh("vol-upload", "--pool", pool, name, tmp.toString());
                    } finally {
                        Files.deleteIfExists(tmp);
                    }
                    return info(name);
                }
            }
        }
        LoopDevice.writeTenantPattern(node, offset, bytes);
        return info(name);
    }

    /** The volume as virsh reports it (capacity and target path), not as the backend under test does. */
    public VolumeInfo info(String name) throws IOException {
        String path = virsh("vol-path", "--pool", pool, name).strip();
        long capacity = -1;
        for (String line : virsh("vol-info", "--bytes", "--pool", pool, name).split("\n")) {
            if (line.startsWith("Capacity:")) {
                capacity = Long.parseLong(line.substring("Capacity:".length()).strip().split("\\s+")[0]);
            }
        }
        assertThat(capacity).as("capacity of " + name + " per virsh vol-info").isNotNegative();
        return new VolumeInfo(name, capacity, path, false);
    }

    /** The partition of the loop device that a block-device volume is (its path, or the node its link points at). */
    public LoopDevice.Partition partitionOf(VolumeInfo v) throws IOException {
        Path node = Path.of(v.path()).toRealPath();
        for (LoopDevice.Partition p : loop.partitions()) {
            if (loop.partitionNode(p.number()).equals(node)) {
                return p;
            }
        }
        throw new AssertionError(v.path() + " is no partition of " + loop + ": " + loop.partitions());
    }

    /** The volume's size as this host sees it: its file's size, or the block device's. */
    public static long sizeOnDisk(Path p) throws IOException {
        Path real = p.toRealPath();
        if (Files.isRegularFile(real)) {
            return Files.size(real);
        }
        return Long.parseLong(run(List.of("blockdev", "--getsize64", real.toString()), true).strip());
    }

    @Override
    public void beforeAll(ExtensionContext context) throws Exception {
        if (blockDevices()) {
            assumeTrue(LibvirtConfig.isLocal(URI), kind + " needs libvirtd on this host; TEST_LIBVIRT_URI " + URI
                    + " is remote (docker-compose.test.yml covers block devices with its LVM pool)");
            assumeTrue(LoopDevice.unavailableReason().isEmpty(), () -> LoopDevice.unavailableReason().orElseThrow());
        }
        ensureDaemon();
        if (kind == Kind.DIR && GIVEN_POOL != null && !GIVEN_POOL.isBlank()) {
            pool = GIVEN_POOL;
            virsh("pool-info", pool);
            return;
        }
        pool = "volprov-it-" + UUID.randomUUID().toString().substring(0, 8);
        try {
            switch (kind) {
                case DIR -> {
                    directory = Files.createTempDirectory("volprov-pool-");
                    defineDirPool(pool, directory);
                }
                case LINKED -> {
                    loop = LoopDevice.create(Path.of(System.getProperty("java.io.tmpdir")), deviceBytes);
                    directory = Files.createTempDirectory("volprov-linked-");
                    defineDirPool(pool, directory);
                }
                case DISK -> {
                    loop = LoopDevice.create(Path.of(System.getProperty("java.io.tmpdir")), deviceBytes);
                    defineDiskPool();
                }
            }
            ownPool = true;
        } catch (Exception e) {
            ownPool = true;
            try {
                afterAll(context);
            } catch (Exception cleanup) {
                e.addSuppressed(cleanup);
            }
            throw e;
        }
    }

    /**
     * The disk pool's source device is a symlink named after the loop device plus {@code p}
     * ({@code /run/volprov-test/<pool>/loop3p -> /dev/loop3}): libvirt deletes a partition with
     * {@code parted <source> rm <partition name minus source name>}, which is {@code p1} for
     * {@code /dev/loop3} (refused by parted) and {@code 1} through the link.
     */
    private void defineDiskPool() throws IOException {
        links = Files.createDirectories(LINK_ROOT.resolve(pool));
        Path source = Files.createSymbolicLink(links.resolve(loop.device().getFileName() + "p"), loop.device());
        Path xml = links.resolve("pool.xml");
        Files.writeString(xml, "<pool type='disk'>\n  <name>" + pool + "</name>\n  <source>\n    <device path='" + source
                + "'/>\n    <format type='gpt'/>\n  </source>\n  <target>\n    <path>/dev</path>\n  </target>\n</pool>\n");
        virsh("pool-define", xml.toString());
        virsh("pool-start", pool);
    }

    @Override
    public void beforeEach(ExtensionContext context) throws Exception {
        names.clear();
        partitionsMade.clear();
        before = volumes(pool);
    }

    @Override
    public void afterEach(ExtensionContext context) throws Exception {
        ensureDaemon(); // a test may have stopped it
        Set<String> now = volumes(pool);
        List<String> unexpected = new ArrayList<>();
        List<String> made = new ArrayList<>();
        for (String v : now) {
            if (before.contains(v)) {
                continue;
            }
            boolean ours = kind == Kind.DISK ? names.containsValue(v) : v.startsWith(prefix);
            if (!ours) {
                unexpected.add(v);
            }
            if (ours || kind != Kind.DIR) {
                made.add(v); // a block-device pool is this class's alone: nothing in it is anyone else's
            }
        }
        List<LoopDevice.Partition> used = new ArrayList<>();
        if (kind == Kind.DISK) {
            for (String v : made) {
                used.add(partitionOf(info(v)));
            }
        }
        for (String v : made) {
            virsh("vol-delete", "--pool", pool, v);
        }
        if (kind == Kind.LINKED) {
            for (LoopDevice.Partition p : loop.partitions()) {
                if (partitionsMade.contains(p.number())) {
                    used.add(p);
                    loop.removePartition(p.number());
                }
            }
        }
        for (LoopDevice.Partition p : used) {
            loop.restoreTenantPattern(p.start(), p.size()); // the next test finds the tenant's bytes there again
        }
        assertThat(unexpected).as("volumes the test did not expect in pool " + pool).isEmpty();
    }

    @Override
    public void afterAll(ExtensionContext context) throws Exception {
        if (!ownPool) {
            return;
        }
        List<Exception> failures = new ArrayList<>();
        step(failures, () -> {
            if (pool != null && poolDefined(pool)) {
                removePool(pool);
            }
        });
        step(failures, () -> deleteTree(directory));
        step(failures, () -> deleteTree(links));
        step(failures, () -> {
            if (loop != null) {
                loop.close();
            }
        });
        if (!failures.isEmpty()) {
            Exception first = failures.get(0);
            failures.subList(1, failures.size()).forEach(first::addSuppressed);
            throw first;
        }
    }

    @Override
    public String toString() {
        return kind.toString();
    }

    /** Reads part of a volume: from its file or device when it is on this host, else through {@code virsh vol-download}. */
    public byte[] read(VolumeInfo v, long offset, int length) throws IOException {
        Path p = Path.of(v.path());
        if (isLocal() && Files.isReadable(p)) {
            LoopDevice.dropCache(p);
            try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "r")) {
                byte[] b = new byte[length];
                f.seek(offset);
                f.readFully(b);
                return b;
            }
        }
        Path tmp = Files.createTempFile("volprov-dl-", ".bin");
        try {
            virsh("vol-download", "--pool", pool, v.name(), tmp.toString(), "--offset", Long.toString(offset),
                    "--length", Long.toString(length));
            byte[] b = Files.readAllBytes(tmp);
            assertThat(b).as("bytes downloaded").hasSize(length);
            return b;
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    /** SHA-256 of the whole volume (its capacity), read independently of the backend under test. */
    public String sha256(VolumeInfo v) throws IOException {
        Path p = Path.of(v.path());
        Path tmp = null;
        if (!(isLocal() && Files.isReadable(p))) {
            tmp = Files.createTempFile("volprov-dl-", ".bin");
            virsh("vol-download", "--pool", pool, v.name(), tmp.toString());
            p = tmp;
        }
        LoopDevice.dropCache(p);
        try (InputStream in = Files.newInputStream(p)) {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            byte[] buf = new byte[1 << 20];
            long left = v.capacityBytes();
            for (int n; left > 0 && (n = in.read(buf, 0, (int) Math.min(buf.length, left))) > 0; left -= n) {
                md.update(buf, 0, n);
            }
            return HexFormat.of().formatHex(md.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        } finally {
            if (tmp != null) {
                Files.deleteIfExists(tmp);
            }
        }
    }

    // ---- virsh and the daemon ----

    public static Set<String> volumes(String pool) throws IOException {
        // Refresh so files that appeared outside libvirt count too; this virsh has no vol-list --name.
        virsh("pool-refresh", pool);
        Set<String> names = new HashSet<>();
        String[] lines = virsh("vol-list", "--pool", pool).split("\n");
        for (int i = 2; i < lines.length; i++) {
            String line = lines[i].strip();
            if (!line.isEmpty()) {
                names.add(line.split("\\s+")[0]);
            }
        }
        return names;
    }

    public static void defineDirPool(String name, Path dir) throws IOException {
        virsh("pool-define-as", name, "dir", "--target", dir.toString());
        virsh("pool-build", name);
        virsh("pool-start", name);
    }

    public static void removePool(String name) throws IOException {
        if (run(List.of("virsh", "-c", URI, "pool-info", name), false).contains("running")) {
            for (String v : volumes(name)) {
                virsh("vol-delete", "--pool", name, v);
            }
        }
        run(List.of("virsh", "-c", URI, "pool-destroy", name), false);
        virsh("pool-undefine", name);
    }

    private static boolean poolDefined(String name) {
        try {
            virsh("pool-info", name);
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    /** Runs virsh on the test URI; fails the test with virsh's output when it exits non-zero. */
    public static String virsh(String... args) throws IOException {
        List<String> cmd = new ArrayList<>(List.of("virsh", "-c", URI));
        cmd.addAll(Arrays.asList(args));
        return run(cmd, true);
    }

    public static String run(List<String> cmd, boolean check) throws IOException {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        try {
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (!p.waitFor(2, TimeUnit.MINUTES)) {
                p.destroyForcibly();
                throw new IOException(String.join(" ", cmd) + " did not end within 2 minutes");
            }
            if (check && p.exitValue() != 0) {
                throw new IOException(String.join(" ", cmd) + " failed (exit " + p.exitValue() + "): " + out.strip());
            }
            return out;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            p.destroyForcibly();
            throw new IOException("interrupted running " + cmd, e);
        }
    }

    public static boolean daemonAnswers() {
        try {
            run(List.of("virsh", "-c", URI, "version"), true);
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    /** Makes sure libvirtd answers on {@link #URI}, starting it on this host when needed. */
    public static synchronized void ensureDaemon() throws IOException {
        if (daemonAnswers()) {
            return;
        }
        if (!LibvirtConfig.isLocal(URI)) {
            fail("libvirtd at " + URI + " (TEST_LIBVIRT_URI) does not answer `virsh -c " + URI + " version`");
        }
        if (Stream.of("/usr/sbin/libvirtd", "/usr/bin/virsh").anyMatch(f -> !Files.isExecutable(Path.of(f)))) {
            fail("libvirtd or virsh is not installed; install the Debian packages libvirt-daemon-system, "
                    + "libvirt-clients and libvirt0 (apt-get install libvirt-daemon-system), or set TEST_LIBVIRT_URI");
        }
        startDaemon();
    }

    public static void startDaemon() throws IOException {
        Files.createDirectories(Path.of("/var/log/libvirt"));
        String out = run(List.of("/usr/sbin/libvirtd", "-d"), false);
        if (!waitUntil(LibvirtTestPool::daemonAnswers, DAEMON_WAIT)) {
            fail("started `libvirtd -d` but `virsh -c " + URI + " version` still fails after " + DAEMON_WAIT.toSeconds()
                    + " s (libvirtd said: " + out.strip() + "); check /var/log/libvirt and that libvirt-daemon-system is installed");
        }
    }

    /** The pid of the local libvirtd, from its pid file. */
    public static long daemonPid() throws IOException {
        for (String f : List.of("/run/libvirtd.pid", "/var/run/libvirtd.pid")) {
            Path p = Path.of(f);
            if (Files.exists(p)) {
                return Long.parseLong(Files.readString(p).strip());
            }
        }
        throw new IOException("libvirtd has no pid file in /run");
    }

    /** Polls an outside process's state (there is nothing to wait on) every 100 ms, up to {@code timeout}. */
    public static boolean waitUntil(BooleanSupplier condition, Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            if (condition.getAsBoolean()) {
                return true;
            }
            if (System.nanoTime() > deadline) {
                return false;
            }
            try {
                Thread.sleep(100);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return false;
            }
        }
    }

    @FunctionalInterface
    private interface Step {
        void run() throws Exception;
    }

    private static void step(List<Exception> failures, Step step) {
        try {
            step.run();
        } catch (Exception e) {
            failures.add(e);
        }
    }

    private static void deleteTree(Path dir) throws IOException {
        if (dir == null || !Files.exists(dir, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
            return;
        }
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted((a, b) -> b.getNameCount() - a.getNameCount()).toList()) {
                Files.deleteIfExists(p); // a symlink is removed, never what it points at
            }
        }
    }

    private static String envOr(String name, String fallback) {
        String v = System.getenv(name);
        return v == null || v.isBlank() ? fallback : v;
    }
}
