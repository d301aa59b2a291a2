package org.volprov.libvirt.testkit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

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
import java.util.HexFormat;
import java.util.HashSet;
import java.util.List;
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
import org.volprov.VolumeInfo;
import org.volprov.libvirt.LibvirtConfig;
import org.volprov.libvirt.LibvirtVolumeBackend;
import org.volprov.libvirt.WriteMode;

/**
 * A real libvirt storage pool for one test class. Register with
 * {@code @RegisterExtension static final LibvirtTestPool POOL = new LibvirtTestPool();}.
 *
 * <p>Before all tests: makes sure libvirtd answers on the URI (starting {@code libvirtd -d} on this
 * host when it does not; failing with what to install when it cannot), then defines and starts a
 * {@code dir} pool with a unique name in a temp directory. After each test: fails when the pool
 * holds a volume that appeared during the test and does not carry {@link #prefix()} (every volume
 * a test makes must), then deletes the prefixed volumes. After all: destroys and undefines the pool.
 *
 * <p>{@code TEST_LIBVIRT_URI} replaces {@code qemu:///system}; {@code TEST_LIBVIRT_POOL} names an
 * existing pool to use instead of creating one (it is then neither started nor removed, and only
 * volumes carrying this run's prefix are deleted). Everything is checked with {@code virsh}, not
 * with the code under test.
 */
public final class LibvirtTestPool implements BeforeAllCallback, BeforeEachCallback, AfterEachCallback, AfterAllCallback {
    public static final String URI = envOr("TEST_LIBVIRT_URI", "qemu:///system");
    private static final String GIVEN_POOL = System.getenv("TEST_LIBVIRT_POOL");
    private static final Duration DAEMON_WAIT = Duration.ofSeconds(60);

    private final String prefix = "vpit" + UUID.randomUUID().toString().substring(0, 8) + "-";
    private String pool;
    private Path directory;
    private boolean ownPool;
    private Set<String> before = Set.of();

    public String uri() {
        return URI;
    }

    public String pool() {
        return pool;
    }

    /** Every volume a test creates starts with this. */
    public String prefix() {
        return prefix;
    }

    public boolean isLocal() {
        return LibvirtConfig.isLocal(URI);
    }

    public LibvirtVolumeBackend backend(WriteMode mode) {
        return LibvirtVolumeBackend.open(LibvirtConfig.builder().uri(URI).poolName(pool).writeMode(mode).build());
    }

    @Override
    public void beforeAll(ExtensionContext context) throws Exception {
        ensureDaemon();
        if (GIVEN_POOL != null && !GIVEN_POOL.isBlank()) {
            pool = GIVEN_POOL;
            virsh("pool-info", pool);
            return;
        }
        pool = "volprov-it-" + UUID.randomUUID().toString().substring(0, 8);
        directory = Files.createTempDirectory("volprov-pool-");
        defineDirPool(pool, directory);
        ownPool = true;
    }

    @Override
    public void beforeEach(ExtensionContext context) throws Exception {
        before = volumes(pool);
    }

    @Override
    public void afterEach(ExtensionContext context) throws Exception {
        ensureDaemon(); // a test may have stopped it
        Set<String> now = volumes(pool);
        List<String> unexpected = new ArrayList<>();
        for (String v : now) {
            if (!before.contains(v) && !v.startsWith(prefix)) {
                unexpected.add(v);
            }
        }
        for (String v : now) {
            if (v.startsWith(prefix)) {
                virsh("vol-delete", "--pool", pool, v);
            }
        }
        assertThat(unexpected).as("volumes the test did not expect in pool " + pool).isEmpty();
    }

    @Override
    public void afterAll(ExtensionContext context) throws Exception {
        if (ownPool) {
            removePool(pool);
            deleteTree(directory);
        }
    }

    /** Reads part of a volume: from its file when it is on this host, else through {@code virsh vol-download}. */
    public byte[] read(VolumeInfo v, long offset, int length) throws IOException {
        Path p = Path.of(v.path());
        if (isLocal() && Files.isReadable(p)) {
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

    /** SHA-256 of the whole volume, read independently of the backend under test. */
    public String sha256(VolumeInfo v) throws IOException {
        Path p = Path.of(v.path());
        Path tmp = null;
        if (!(isLocal() && Files.isReadable(p))) {
            tmp = Files.createTempFile("volprov-dl-", ".bin");
            virsh("vol-download", "--pool", pool, v.name(), tmp.toString());
            p = tmp;
        }
        try (InputStream in = Files.newInputStream(p)) {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            byte[] buf = new byte[1 << 20];
            for (int n; (n = in.read(buf)) > 0; ) {
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
        for (String v : volumes(name)) {
            virsh("vol-delete", "--pool", name, v);
        }
        run(List.of("virsh", "-c", URI, "pool-destroy", name), false);
        virsh("pool-undefine", name);
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

    private static void deleteTree(Path dir) throws IOException {
        if (dir == null || !Files.exists(dir)) {
            return;
        }
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted((a, b) -> b.getNameCount() - a.getNameCount()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }

    private static String envOr(String name, String fallback) {
        String v = System.getenv(name);
        return v == null || v.isBlank() ? fallback : v;
    }
}
