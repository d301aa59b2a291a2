package org.volprov.jdbc.testkit;

import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.nio.file.attribute.UserPrincipal;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Stream;
import org.volprov.jdbc.JdbcJobStoreConfig;

/**
 * A PostgreSQL cluster of the test's own, which the test may stop and start: the shared server is
 * never restarted. {@link #start()} runs {@code initdb} into a fresh temporary directory and starts
 * the server on a free 127.0.0.1 port with trust authentication; {@link #close()} stops it and
 * deletes the directory. When the JVM runs as root, the binaries run as the {@code postgres} OS
 * user through {@code runuser} (initdb and postgres refuse root), with directories that user owns.
 *
 * <p>{@link #unavailableReason()} says why it cannot run here (no binaries, no {@code postgres}
 * user), so that a test can skip and print it. Not thread-safe.
 */
public final class PrivatePostgres implements AutoCloseable {
    private static final long COMMAND_TIMEOUT_SECONDS = 120;

    private final Path bin;
    private final Path base;
    private final Path data;
    private final Path run;
    private final int port;
    private final boolean asPostgresUser;
    private final AtomicBoolean closed = new AtomicBoolean();
    private final Thread stopAtExit;
    private boolean running;

    private PrivatePostgres(Path bin, Path base, int port, boolean asPostgresUser) {
        this.bin = bin;
        this.base = base;
        this.data = base.resolve("data");
        this.run = base.resolve("run");
        this.port = port;
        this.asPostgresUser = asPostgresUser;
        this.stopAtExit = new Thread(this::stopQuietly, "private-postgres-stop");
    }

    /** Why a private cluster cannot run on this machine, or empty when it can. */
    public static Optional<String> unavailableReason() {
        if (binaries().isEmpty()) {
            return Optional.of("no PostgreSQL server binaries (initdb, pg_ctl) in /usr/lib/postgresql/*/bin or on the PATH");
        }
        if (isRoot()) {
            if (!Files.isExecutable(Path.of("/usr/sbin/runuser")) && !Files.isExecutable(Path.of("/sbin/runuser"))) {
                return Optional.of("running as root without runuser to start PostgreSQL as another user");
            }
            try {
                postgresUser();
            } catch (IOException e) {
                return Optional.of("running as root and there is no 'postgres' OS user to run PostgreSQL as");
            }
        }
        return Optional.empty();
    }

    /** Creates and starts a cluster. */
    public static PrivatePostgres start() throws IOException {
        Path bin = binaries().orElseThrow(() -> new IOException(unavailableReason().orElse("no binaries")));
        boolean root = isRoot();
        Path base = Files.createTempDirectory("volprov-pg-");
        PrivatePostgres pg = new PrivatePostgres(bin, base, freePort(), root);
        try {
            // The postgres user must be able to reach the directory; only data and run are its own.
            Files.setPosixFilePermissions(base, PosixFilePermissions.fromString("rwxr-xr-x"));
            Files.createDirectories(pg.data);
            Files.createDirectories(pg.run);
            if (root) {
                UserPrincipal owner = postgresUser();
                Files.setOwner(pg.data, owner);
                Files.setOwner(pg.run, owner);
            }
            Files.setPosixFilePermissions(pg.data, PosixFilePermissions.fromString("rwx------"));
            pg.command("initdb", "-D", pg.data.toString(), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                    "--no-sync");
            Runtime.getRuntime().addShutdownHook(pg.stopAtExit);
            pg.startServer();
            return pg;
        } catch (IOException | RuntimeException e) {
            pg.close();
            throw e;
        }
    }

    public int port() {
        return port;
    }

    public String jdbcUrl() {
        return "jdbc:postgresql://127.0.0.1:" + port + "/postgres";
    }

    /** A store config on this cluster, in {@code schema}. */
    public JdbcJobStoreConfig.Builder config(String schema) {
        return JdbcJobStoreConfig.postgres(jdbcUrl()).credentials("postgres", "").schema(schema);
    }

    /** Starts the stopped server on the same port and data; returns once it accepts connections. */
    public void startServer() throws IOException {
        command("pg_ctl", "-D", data.toString(), "-l", run.resolve("postgres.log").toString(), "-w", "-t", "60",
                "-o", "-p " + port + " -c listen_addresses=127.0.0.1 -k " + run + " -c fsync=off"
                        + " -c full_page_writes=off -c max_connections=40",
                "start");
        running = true;
    }

    /** Stops the server (fast shutdown: open connections are dropped); returns once it is down. */
    public void stopServer() throws IOException {
        command("pg_ctl", "-D", data.toString(), "-w", "-t", "60", "-m", "fast", "stop");
        running = false;
    }

    /** Stops the server and deletes its directory; idempotent. */
    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) {
            return;
        }
        stopQuietly();
        try {
            Runtime.getRuntime().removeShutdownHook(stopAtExit);
        } catch (IllegalStateException | IllegalArgumentException e) {
            // the JVM is exiting, or the hook was never added
        }
        deleteTree(base);
    }

    private void stopQuietly() {
        if (running) {
            try {
                stopServer();
            } catch (IOException | RuntimeException e) {
                System.err.println("[volprov tests] cannot stop the private PostgreSQL on port " + port + ": " + e);
            }
        }
    }

    private String command(String tool, String... args) throws IOException {
        List<String> cmd = new ArrayList<>();
        if (asPostgresUser) {
            cmd.addAll(List.of("runuser", "-u", "postgres", "--"));
        }
        cmd.add(bin.resolve(tool).toString());
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).directory(base.toFile()).start();
        String out;
        try (InputStream in = p.getInputStream()) {
            // pg_ctl start leaves the server running with its own output in the log file, so this ends.
            out = new String(in.readAllBytes(), StandardCharsets.UTF_8);
            if (!p.waitFor(COMMAND_TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new IOException(tool + " did not end within " + COMMAND_TIMEOUT_SECONDS + " s");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            p.destroyForcibly();
            throw new IOException(tool + " was interrupted", e);
        }
        if (p.exitValue() != 0) {
            throw new IOException(String.join(" ", cmd) + " exited " + p.exitValue() + ": " + out + logTail());
        }
        return out;
    }

    private String logTail() {
        try {
            List<String> lines = Files.readAllLines(run.resolve("postgres.log"));
            return "\nserver log:\n" + String.join("\n", lines.subList(Math.max(0, lines.size() - 20), lines.size()));
        } catch (IOException e) {
            return "";
        }
    }

    private static Optional<Path> binaries() {
        Path versions = Path.of("/usr/lib/postgresql");
        if (Files.isDirectory(versions)) {
            try (Stream<Path> s = Files.list(versions)) {
                Optional<Path> newest = s.map(v -> v.resolve("bin"))
                        .filter(b -> Files.isExecutable(b.resolve("pg_ctl")) && Files.isExecutable(b.resolve("initdb")))
                        .max(Comparator.comparingInt(b -> versionOf(b.getParent())));
                if (newest.isPresent()) {
                    return newest;
                }
            } catch (IOException e) {
                // fall through to the PATH
            }
        }
        String path = System.getenv("PATH");
        if (path != null) {
            for (String dir : path.split(":")) {
                Path b = Path.of(dir);
                if (Files.isExecutable(b.resolve("pg_ctl")) && Files.isExecutable(b.resolve("initdb"))) {
                    return Optional.of(b);
                }
            }
        }
        return Optional.empty();
    }

    private static int versionOf(Path dir) {
        try {
            return Integer.parseInt(dir.getFileName().toString());
        } catch (NumberFormatException e) {
            return 0;
        }
    }

    private static boolean isRoot() {
        return "root".equals(System.getProperty("user.name"));
    }

    private static UserPrincipal postgresUser() throws IOException {
        return Path.of("/").getFileSystem().getUserPrincipalLookupService().lookupPrincipalByName("postgres");
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getByName("127.0.0.1"))) {
            return s.getLocalPort();
        }
    }

    private static void deleteTree(Path root) {
        if (!Files.exists(root)) {
            return;
        }
        try (Stream<Path> s = Files.walk(root)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        } catch (IOException e) {
            System.err.println("[volprov tests] cannot delete " + root + ": " + e);
        }
    }
}
