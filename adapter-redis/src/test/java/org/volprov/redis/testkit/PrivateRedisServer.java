package org.volprov.redis.testkit;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import redis.clients.jedis.DefaultJedisClientConfig;
import redis.clients.jedis.HostAndPort;
import redis.clients.jedis.Jedis;
import redis.clients.jedis.exceptions.JedisException;

/**
 * A {@code redis-server} child process of the test, on a free loopback port, without persistence
 * ({@code --save "" --appendonly no}) and with its own directory, for tests that stop and restart
 * Redis: the shared server is never touched. A restart keeps the port and loses the data, as a
 * restart of a Redis without persistence does. The binary is {@code $REDIS_SERVER} or
 * {@code redis-server} on the PATH. Not thread-safe: one test drives it.
 */
public final class PrivateRedisServer implements AutoCloseable {
    private static final long READY_TIMEOUT_NANOS = TimeUnit.SECONDS.toNanos(15);

    private final Path dir;
    private final int port;
    private Process process;

    private PrivateRedisServer(Path dir, int port) {
        this.dir = dir;
        this.port = port;
    }

    /** Whether a {@code redis-server} binary can be run here. */
    public static boolean available() {
        try {
            Process p = new ProcessBuilder(binary(), "--version").redirectErrorStream(true).start();
            p.getInputStream().readAllBytes();
            return p.waitFor(10, TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (IOException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    /** Starts a server with its files in {@code dir} (created) and waits until it answers. */
    public static PrivateRedisServer start(Path dir) throws IOException {
        Files.createDirectories(dir);
        PrivateRedisServer s = new PrivateRedisServer(dir, freePort());
        s.startProcess();
        System.out.println("[PrivateRedisServer] redis-server child on 127.0.0.1:" + s.port + " in " + dir);
        return s;
    }

    private static String binary() {
        String b = System.getenv("REDIS_SERVER");
        return b == null || b.isBlank() ? "redis-server" : b;
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    private void startProcess() throws IOException {
        process = new ProcessBuilder(List.of(binary(), "--port", Integer.toString(port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", dir.toString(), "--daemonize", "no"))
                .redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(dir.resolve("redis.log").toFile()))
                .start();
        long deadline = System.nanoTime() + READY_TIMEOUT_NANOS;
        while (!answers()) {
            if (!process.isAlive()) {
                throw new IOException("redis-server exited with " + process.exitValue() + "; see " + dir.resolve("redis.log"));
            }
            if (System.nanoTime() > deadline) {
                stop();
                throw new IOException("redis-server did not answer on port " + port + " within 15 s");
            }
            // An external process becomes ready on its own time: there is nothing to wait on but the port.
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(20));
        }
    }

    private boolean answers() {
        // A plain connection speaks RESP2 as asked: one that negotiates would warn on every probe.
        try (Jedis j = new Jedis(new HostAndPort("127.0.0.1", port),
                DefaultJedisClientConfig.builder().timeoutMillis(500).serverDefaultProtocol().build())) {
            return "PONG".equals(j.ping());
        } catch (JedisException e) {
            return false;
        }
    }

    public int port() {
        return port;
    }

    /** {@code redis://127.0.0.1:<port>}. */
    public String uri() {
        return "redis://127.0.0.1:" + port;
    }

    public boolean running() {
        return process != null && process.isAlive();
    }

    /** Stops the server (SIGTERM, then SIGKILL after 10 s) and waits until it is gone. */
    public void stop() {
        if (process == null) {
            return;
        }
        process.destroy();
        try {
            if (!process.waitFor(10, TimeUnit.SECONDS)) {
                process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            process.destroyForcibly();
        }
        process = null;
    }

    /** Starts the server again on the same port, empty. */
    public void restart() throws IOException {
        stop();
        startProcess();
    }

    @Override
    public void close() {
        stop();
    }

    @Override
    public String toString() {
        return "PrivateRedisServer[127.0.0.1:" + port + (running() ? "" : ", stopped") + "]";
    }
}
