package org.volprov.redis;

import static org.assertj.core.api.Assertions.assertThat;
import static org.volprov.redis.Peers.image;
import static org.volprov.redis.Peers.key;
import static org.volprov.redis.Peers.sha256;
import static org.volprov.redis.Peers.write;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.volprov.Cancellation;
import org.volprov.cache.CacheLease;
import org.volprov.redis.testkit.RedisTestServer;

/**
 * A real second process: a child JVM holds the fill lock of an image mid-download and is killed
 * with SIGKILL, so it neither releases nor renews anything. This process then asks for the same
 * image: it waits for the lock's lease to run out, takes over and downloads the image once.
 */
class FillLockCrashIT {
    private static final int IMAGE = 512 * 1024;
    private static final long SEED = 77;
    private static RedisTestServer server;

    @TempDir
    Path dir;

    private final String prefix = RedisTestServer.uniquePrefix("crash");
    private Process child;
    private Peers peers;

    @BeforeAll
    static void server() {
        server = RedisTestServer.shared();
    }

    @AfterEach
    void cleanUp() throws InterruptedException {
        if (child != null && child.isAlive()) {
            child.destroyForcibly().waitFor(30, TimeUnit.SECONDS);
        }
        if (peers != null) {
            peers.close();
        }
        server.deleteKeys(prefix);
    }

    @Test
    void fillLock_ofAProcessKilledMidDownload_expiresAndThisProcessDownloadsTheImageOnce() throws Exception {
        byte[] img = image(IMAGE, SEED);
        long leaseMillis = 1500;
        ProcessBuilder pb = new ProcessBuilder(List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp", System.getProperty("java.class.path"),
                FillLockHolder.class.getName(),
                prefix, "host-1", dir.toString(), Long.toString(leaseMillis), Integer.toString(IMAGE),
                Long.toString(SEED)))
                .redirectErrorStream(true);
        pb.environment().put("VOLPROV_TEST_REDIS_URI", server.uri());
        child = pb.start();
        CountDownLatch filling = new CountDownLatch(1);
        StringBuffer output = new StringBuffer();
        Thread reader = new Thread(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(child.getInputStream(),
                    StandardCharsets.UTF_8))) {
                for (String line; (line = r.readLine()) != null; ) {
                    output.append(line).append('\n');
                    if (line.equals("FILLING")) {
                        filling.countDown();
                    }
                }
            } catch (java.io.IOException e) {
                // The child was killed: its pipe closes.
            }
        }, "child-output");
        reader.setDaemon(true);
        reader.start();
        assertThat(filling.await(60, TimeUnit.SECONDS)).as("the child never started filling:\n%s", output).isTrue();
        String lockKey = new Keys(prefix, "host-1").fill(sha256(img));
        assertThat(server.client().exists(lockKey)).isTrue();

        child.destroyForcibly(); // SIGKILL: no finally block, no shutdown hook, no release
        assertThat(child.waitFor(30, TimeUnit.SECONDS)).isTrue();
        assertThat(child.exitValue()).isEqualTo(137);
        assertThat(tempFiles()).isOne(); // the dead child's partial download

        peers = new Peers(server.uri(), prefix);
        Peers.Peer survivor = peers.open("host-1", dir, 100L * IMAGE, c -> c.leaseTime(Duration.ofMillis(leaseMillis)),
                null, null);
        assertThat(tempFiles()).as("a young temp file may be another process's download: the sweep spares it")
                .isOne();
        AtomicInteger runs = new AtomicInteger();
        try (CacheLease lease = survivor.cache().admit(key("crash.qcow2", img), sink -> {
            runs.incrementAndGet();
            write(sink, img, (int) sink.position(), IMAGE);
        }, Cancellation.none())) {
            assertThat(lease.hit()).isFalse();
            assertThat(Files.readAllBytes(lease.path())).isEqualTo(img);
        }
        assertThat(runs).hasValue(1);
        assertThat(server.client().exists(lockKey)).isFalse();
    }

    private long tempFiles() throws java.io.IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(p -> p.getFileName().toString().endsWith(".tmp")).count();
        }
    }
}
