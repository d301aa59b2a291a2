package org.volprov.it;

import java.io.IOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A link shaped by the kernel in front of a server of this host, made and removed by
 * {@code scripts/shaped-link.sh}: a network namespace joined by a veth pair whose ends each send
 * through a {@code tbf} qdisc at the rate, and a forwarder in the namespace. Clients that connect to
 * {@link #endpoint()} get the server's bytes across the shaped veth. Needs root, ip, tc, socat and
 * nsenter ({@link #unavailable()} says which is missing). {@link #close()} removes all of it.
 */
final class ShapedLink implements AutoCloseable {
    private static final AtomicInteger COUNT = new AtomicInteger();
    private final String name;
    private final URI endpoint;

    private ShapedLink(String name, URI endpoint) {
        this.name = name;
        this.endpoint = endpoint;
    }

    /** Why no link can be made here, or empty when one can. */
    static Optional<String> unavailable() {
        if (!Files.isRegularFile(script())) {
            return Optional.of("no " + script());
        }
        if (!"root".equals(System.getProperty("user.name"))) {
            return Optional.of("a shaped link needs root (network namespaces and tc)");
        }
        for (String tool : List.of("ip", "tc", "socat", "nsenter")) {
            if (!onPath(tool)) {
                return Optional.of("a shaped link needs " + tool);
            }
        }
        return Optional.empty();
    }

    /** A link at {@code rate} (a tc rate: {@code 1gbit}) in front of the server at {@code server}'s host and port. */
    static ShapedLink open(URI server, String rate) throws IOException, InterruptedException {
        // At most 10 characters: the script names interfaces after it.
        String name = "i" + (ProcessHandle.current().pid() % 100_000) + "n" + COUNT.incrementAndGet();
        String address = run("up", name, server.getHost() + ":" + server.getPort(), rate);
        return new ShapedLink(name, URI.create("http://" + address));
    }

    /** Where clients connect: {@code http://<namespace address>:<port>}. */
    URI endpoint() {
        return endpoint;
    }

    @Override
    public void close() {
        try {
            run("down", name);
        } catch (IOException e) {
            throw new IllegalStateException("cannot remove shaped link " + name + " (scripts/shaped-link.sh down "
                    + name + "): " + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static String run(String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of("bash", script().toString()));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
        if (!p.waitFor(60, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IOException("scripts/shaped-link.sh " + String.join(" ", args) + " did not end within 60 s");
        }
        if (p.exitValue() != 0) {
            throw new IOException("scripts/shaped-link.sh " + String.join(" ", args) + " exited with " + p.exitValue());
        }
        return out;
    }

    /** The script, from the integration module's directory (where Maven runs the tests). */
    private static Path script() {
        return Path.of(System.getProperty("user.dir")).toAbsolutePath().getParent().resolve("scripts/shaped-link.sh");
    }

    private static boolean onPath(String tool) {
        for (String dir : System.getenv().getOrDefault("PATH", "").split(":")) {
            if (!dir.isEmpty() && Files.isExecutable(Path.of(dir, tool))) {
                return true;
            }
        }
        return false;
    }
}
