package org.volprov.redis;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.volprov.VolumeGuard;
import org.volprov.contract.VolumeGuardContract;
import org.volprov.redis.testkit.RedisTestServer;

/** Core's {@link VolumeGuardContract} on the Redis volume guard. */
class RedisVolumeGuardContractIT extends VolumeGuardContract {
    private static RedisTestServer server;

    private final String prefix = RedisTestServer.uniquePrefix("guard");
    private RedisCoordination redis;

    @BeforeAll
    static void server() {
        server = RedisTestServer.shared();
    }

    @Override
    protected VolumeGuard newGuard() {
        redis = RedisCoordination.create(server.config(prefix).hostId("guard-host").build());
        return redis.volumeGuard();
    }

    @AfterEach
    void closeRedis() {
        // Runs before the contract releases its locks: closing the coordination releases them in
        // Redis, and the contract's later close() calls find them released already.
        if (redis != null) {
            redis.close();
        }
        server.deleteKeys(prefix);
    }
}
