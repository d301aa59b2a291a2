package org.volprov.it;

import java.time.Duration;
import org.volprov.libvirt.testkit.LibvirtTestPool;
import org.volprov.redis.testkit.RedisTestServer;
import org.volprov.s3.testkit.S3TestServer;

/**
 * The real services the suite runs against, resolved once per JVM and announced on stdout: each
 * from its {@code TEST_*} variable when set, else from Testcontainers when a Docker engine answers,
 * else the local service (the embedded S3 server, PostgreSQL on 127.0.0.1:5432, Redis on
 * 127.0.0.1:6379, libvirtd on {@code qemu:///system} with the pools the suite creates: {@code dir},
 * and {@code disk} on a loop device).
 */
final class Services {
    private static boolean announced;

    private Services() {
    }

    /** The S3 server every category reads images from. */
    static S3TestServer s3() {
        announce();
        return S3TestServer.shared();
    }

    /** The Redis server categories that share a cache index use. */
    static RedisTestServer redis() {
        announce();
        return RedisTestServer.shared();
    }

    /** How long a test waits for one job: {@code TEST_TIMEOUT} (ISO-8601, e.g. PT15M), default 10 minutes. */
    static Duration jobWait() {
        String env = System.getenv("TEST_TIMEOUT");
        return env == null || env.isBlank() ? Duration.ofMinutes(10) : Duration.parse(env);
    }

    static synchronized void announce() {
        if (announced) {
            return;
        }
        announced = true;
        S3TestServer s3 = S3TestServer.shared();
        System.out.println("[services] S3:         " + s3.kind() + " at " + s3.endpoint());
        System.out.println("[services] PostgreSQL: " + JobStores.postgres().kind()
                + " (location above; each stack in a schema of its own)");
        System.out.println("[services] Redis:      " + RedisTestServer.shared().kind() + " at "
                + RedisTestServer.shared().endpoint());
        System.out.println("[services] libvirt:    " + LibvirtTestPool.URI
                + (System.getenv("TEST_LIBVIRT_POOL") != null ? " pool " + System.getenv("TEST_LIBVIRT_POOL")
                        : " (per test class: a dir pool, and where the volume's nature matters a disk pool on a loop"
                                + " device and a dir pool of symlinks to loop partitions)"));
        System.out.println("[services] images:     " + ImageSet.directory());
        System.out.println("[services] job wait:   " + jobWait());
    }
}
