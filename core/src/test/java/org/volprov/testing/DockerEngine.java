package org.volprov.testing;

import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.StandardProtocolFamily;
import java.net.URI;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.function.BooleanSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Whether the test kits can start containers, decided once per JVM. The endpoint is looked for
 * first without Testcontainers, which otherwise logs an ERROR block listing every strategy it
 * tried, in every test run of a machine without Docker. Where none accepts a connection, one
 * INFO line says so and the kits use the local services; where one does, Testcontainers makes the
 * real check (and reports a broken engine as loudly as it likes).
 *
 * <p>Looked at, in the order Testcontainers uses them: {@code DOCKER_HOST}, {@code docker.host} in
 * {@code ~/.testcontainers.properties}, then the usual sockets ({@code /var/run/docker.sock},
 * Docker Desktop's and rootless Docker's). A {@code unix://} or {@code tcp://} endpoint must accept a
 * connection within {@value #CONNECT_TIMEOUT_MILLIS} ms; another scheme ({@code npipe}, {@code ssh})
 * is left to Testcontainers. Thread-safe.
 */
public final class DockerEngine {
    static final int CONNECT_TIMEOUT_MILLIS = 2000;
    private static final Logger LOG = LoggerFactory.getLogger(DockerEngine.class);
    private static Boolean available;

    private DockerEngine() {
    }

    /**
     * True when an engine answers and {@code testcontainersCheck} (the caller's
     * {@code DockerClientFactory.instance().isDockerAvailable()}) agrees. The answer is kept for the
     * JVM; a failure of the check, or Testcontainers missing from the class path, counts as no.
     */
    public static synchronized boolean available(BooleanSupplier testcontainersCheck) {
        if (available == null) {
            Probe probe = probe(configuredHost(System.getenv(), Path.of(System.getProperty("user.home"))),
                    defaultSockets(System.getenv()));
            if (!probe.found()) {
                LOG.info("no Docker engine ({}): the tests use the local services", probe.detail());
                available = false;
            } else {
                try {
                    available = testcontainersCheck.getAsBoolean();
                } catch (RuntimeException | LinkageError e) {
                    LOG.debug("Docker at {} but Testcontainers cannot use it: {}", probe.detail(), e.toString());
                    available = false;
                }
            }
        }
        return available;
    }

    /** What the probe found: an endpoint that accepts connections, or why there is none. */
    record Probe(boolean found, String detail) {
    }

    /** {@code DOCKER_HOST}, else {@code docker.host} of the Testcontainers properties; null when neither. */
    static String configuredHost(Map<String, String> env, Path home) {
        String host = env.get("DOCKER_HOST");
        if (host != null && !host.isBlank()) {
            return host.strip();
        }
        Path props = home.resolve(".testcontainers.properties");
        if (Files.isRegularFile(props)) {
            Properties p = new Properties();
            try (InputStream in = Files.newInputStream(props)) {
                p.load(in);
            } catch (IOException e) {
                return null;
            }
            String configured = p.getProperty("docker.host");
            return configured == null || configured.isBlank() ? null : configured.strip();
        }
        return null;
    }

    /** The sockets an engine listens on when nothing is configured, as Testcontainers looks for them. */
    static List<Path> defaultSockets(Map<String, String> env) {
        List<Path> sockets = new ArrayList<>();
        sockets.add(Path.of("/var/run/docker.sock"));
        String home = env.get("HOME");
        if (home != null && !home.isBlank()) {
            sockets.add(Path.of(home, ".docker", "run", "docker.sock"));
            sockets.add(Path.of(home, ".docker", "desktop", "docker.sock"));
        }
        String runtime = env.get("XDG_RUNTIME_DIR");
        if (runtime != null && !runtime.isBlank()) {
            sockets.add(Path.of(runtime, "docker.sock"));
        }
        return sockets;
    }

    /** Tries {@code configuredHost} when set, else each of {@code sockets}. */
    static Probe probe(String configuredHost, List<Path> sockets) {
        if (configuredHost != null) {
            URI uri;
            try {
                uri = URI.create(configuredHost);
            } catch (IllegalArgumentException e) {
                return new Probe(false, "docker host " + configuredHost + " is not a URI");
            }
            String scheme = String.valueOf(uri.getScheme());
            return switch (scheme) {
                case "unix" -> unix(Path.of(uri.getPath()));
                case "tcp", "http", "https" -> tcp(uri);
                default -> new Probe(true, configuredHost + " (not probed)");
            };
        }
        List<String> tried = new ArrayList<>();
        for (Path socket : sockets) {
            Probe p = unix(socket);
            if (p.found()) {
                return p;
            }
            tried.add(p.detail());
        }
        return new Probe(false, "DOCKER_HOST unset; " + String.join("; ", tried));
    }

    private static Probe unix(Path socket) {
        if (!Files.exists(socket)) {
            return new Probe(false, "no " + socket);
        }
        // A connect to a Unix socket is answered at once: accepted, or refused when nothing listens.
        try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            ch.connect(UnixDomainSocketAddress.of(socket));
            return new Probe(true, "unix://" + socket);
        } catch (IOException | UnsupportedOperationException e) {
            return new Probe(false, "nothing answers at " + socket + " (" + e.getMessage() + ")");
        }
    }

    private static Probe tcp(URI uri) {
        int port = uri.getPort() > 0 ? uri.getPort() : "https".equals(uri.getScheme()) ? 2376 : 2375;
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress(uri.getHost(), port), CONNECT_TIMEOUT_MILLIS);
            return new Probe(true, uri.toString());
        } catch (IOException | IllegalArgumentException e) {
            return new Probe(false, "nothing answers at " + uri + " (" + e.getMessage() + ")");
        }
    }
}
