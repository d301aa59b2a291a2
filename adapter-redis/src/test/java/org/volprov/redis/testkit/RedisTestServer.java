package org.volprov.redis.testkit;

import java.net.URI;
import java.security.SecureRandom;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import org.testcontainers.DockerClientFactory;
import org.testcontainers.containers.GenericContainer;
import org.testcontainers.utility.DockerImageName;
import org.volprov.redis.RedisConfig;
import org.volprov.testing.DockerEngine;
import redis.clients.jedis.RedisClient;
import redis.clients.jedis.exceptions.JedisException;
import redis.clients.jedis.params.ScanParams;
import redis.clients.jedis.resps.ScanResult;

/**
 * A real Redis for tests, resolved in this order and announced on stdout:
 * <ol>
 *   <li>{@code TEST_REDIS_URL} ({@code redis://[:password@]host:port[/db]});</li>
 *   <li>Redis in a container ({@value #REDIS_IMAGE}) when a Docker engine answers;</li>
 *   <li>the local server on 127.0.0.1:6379.</li>
 * </ol>
 * The server may be shared with other test runs: a test takes its own key prefix from
 * {@link #uniquePrefix(String)} and removes it with {@link #deleteKeys(String)}; nothing here ever
 * flushes, stops or reconfigures the server. Thread-safe.
 */
public final class RedisTestServer implements AutoCloseable {
    public static final String REDIS_IMAGE = "redis:7.2.4-alpine";
    private static final SecureRandom RANDOM = new SecureRandom();
    private static RedisTestServer shared;

    private final String kind;
    private final String uri;
    private final AutoCloseable owned;
    private final RedisClient client;
    private final AtomicBoolean closed = new AtomicBoolean();

    private RedisTestServer(String kind, String uri, AutoCloseable owned) {
        this.kind = kind;
        this.uri = uri;
        this.owned = owned;
        this.client = RedisClient.create(URI.create(uri));
    }

    /** One server per JVM, resolved on first use; a container is stopped when the JVM exits. */
    public static synchronized RedisTestServer shared() {
        if (shared == null) {
            shared = start();
            RedisTestServer s = shared;
            Runtime.getRuntime().addShutdownHook(new Thread(s::close, "redis-test-server-stop"));
        }
        return shared;
    }

    /** Resolves a server following the order above and checks that it answers. */
    public static RedisTestServer start() {
        String env = System.getenv("TEST_REDIS_URL");
        RedisTestServer s;
        if (env != null && !env.isBlank()) {
            s = new RedisTestServer("env", env.strip(), null);
            announce("TEST_REDIS_URL", s.endpoint());
        } else if (dockerAvailable()) {
            GenericContainer<?> redis = new GenericContainer<>(DockerImageName.parse(REDIS_IMAGE)).withExposedPorts(6379);
            redis.start();
            s = new RedisTestServer("testcontainers", "redis://" + redis.getHost() + ":" + redis.getMappedPort(6379),
                    redis::stop);
            announce("testcontainers " + REDIS_IMAGE, s.endpoint());
        } else {
            s = new RedisTestServer("local", "redis://127.0.0.1:6379", null);
            announce("the local server", s.endpoint());
        }
        try {
            s.client.ping();
        } catch (JedisException e) {
            s.close();
            throw new IllegalStateException("no Redis answers at " + s.endpoint() + " (" + s.kind + "); start one"
                    + " on 127.0.0.1:6379 or set TEST_REDIS_URL", e);
        }
        return s;
    }

    private static boolean dockerAvailable() {
        return DockerEngine.available(() -> DockerClientFactory.instance().isDockerAvailable());
    }

    private static void announce(String kind, String endpoint) {
        System.out.println("[RedisTestServer] using " + kind + " at " + endpoint);
    }

    /** {@code env}, {@code testcontainers} or {@code local}. */
    public String kind() {
        return kind;
    }

    /** The server's URI, credentials included: hand it to {@link RedisConfig.Builder#uri}, never print it. */
    public String uri() {
        return uri;
    }

    /** The server's address without credentials, for messages. */
    public String endpoint() {
        URI u = URI.create(uri);
        return u.getScheme() + "://" + u.getHost() + ":" + u.getPort() + (u.getPath() == null ? "" : u.getPath());
    }

    /** A config for this server with {@code keyPrefix}; short timeouts suit a server on loopback. */
    public RedisConfig.Builder config(String keyPrefix) {
        return RedisConfig.builder().uri(uri).keyPrefix(keyPrefix);
    }

    /** A client for assertions and cleanup. */
    public RedisClient client() {
        return client;
    }

    /** A prefix no other test run uses: {@code volprov-test:<name>:<random>}. */
    public static String uniquePrefix(String name) {
        byte[] b = new byte[6];
        RANDOM.nextBytes(b);
        return "volprov-test:" + name + ":" + HexFormat.of().formatHex(b);
    }

    /** Deletes every key under {@code prefix} (with SCAN and UNLINK, never a flush); returns how many. */
    public long deleteKeys(String prefix) {
        return deleteKeys(client, prefix);
    }

    /** {@link #deleteKeys(String)} on any client, for a private server too. */
    public static long deleteKeys(RedisClient client, String prefix) {
        if (!prefix.matches("[A-Za-z0-9._:-]+")) {
            throw new IllegalArgumentException("the prefix must not hold glob characters: " + prefix);
        }
        long deleted = 0;
        ScanParams params = new ScanParams().match(prefix + ":*").count(500);
        String cursor = ScanParams.SCAN_POINTER_START;
        do {
            ScanResult<String> page = client.scan(cursor, params);
            List<String> keys = page.getResult();
            if (!keys.isEmpty()) {
                deleted += client.unlink(keys.toArray(String[]::new));
            }
            cursor = page.getCursor();
        } while (!cursor.equals(ScanParams.SCAN_POINTER_START));
        return deleted;
    }

    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) {
            return;
        }
        client.close();
        if (owned != null) {
            try {
                owned.close();
            } catch (Exception e) {
                System.err.println("[RedisTestServer] stop failed: " + e);
            }
        }
    }

    @Override
    public String toString() {
        return "RedisTestServer[" + kind + " " + endpoint() + "]";
    }
}
