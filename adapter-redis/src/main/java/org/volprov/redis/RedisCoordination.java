package org.volprov.redis;

import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.HexFormat;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Function;
import org.apache.commons.pool2.impl.GenericObjectPoolConfig;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;
import org.volprov.cache.DiskImageCache;
import org.volprov.cache.FillLock;
import org.volprov.support.DaemonThreads;
import org.volprov.volume.VolumeGuard;
import redis.clients.jedis.Connection;
import redis.clients.jedis.DefaultJedisClientConfig;
import redis.clients.jedis.HostAndPort;
import redis.clients.jedis.RedisClient;
import redis.clients.jedis.SslOptions;
import redis.clients.jedis.UnifiedJedis;
import redis.clients.jedis.exceptions.JedisAccessControlException;
import redis.clients.jedis.exceptions.JedisConnectionException;
import redis.clients.jedis.exceptions.JedisDataException;
import redis.clients.jedis.exceptions.JedisException;

/**
 * One process's connection to the Redis that several provisioner processes share: a pool of Jedis
 * connections, a timer that renews this process's locks and leases, and the state of the link. From
 * it come the pieces to hand to the engine:
 *
 * <pre>{@code
 * RedisCoordination redis = RedisCoordination.create(RedisConfig.builder()
 *         .uri("redis://redis.internal:6379/0").hostId("hv-017").build());
 * DiskImageCache cache = redis.cache()
 *         .directory(Path.of("/var/lib/volprov/cache"))
 *         .maxBytes(200L << 30)
 *         .build();
 * Provisioner p = Provisioner.builder()
 *         .cache(cache)
 *         .volumeGuard(redis.volumeGuard())
 *         ...
 *         .build();
 * // close in reverse order: p, cache, redis
 * }</pre>
 *
 * <p>When Redis cannot be reached, nothing fails because of it: the cache index falls back to one
 * rebuilt from the directory, fill and volume locks to this process's own, and one warning is
 * logged per outage. The timer probes Redis every {@link RedisConfig#probeInterval()}; when it
 * answers, the index in Redis is reconciled with the directory and the locks held meanwhile are
 * taken in Redis. The same reconciliation runs when Redis answers but has lost the index (a restart
 * without persistence, a flush). The {@link #fleet()} view is the exception: it reads Redis and
 * fails while Redis is down.
 *
 * <p>Thread-safe. {@link #close()} is idempotent; close the cache and the engine first.
 */
public final class RedisCoordination implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(RedisCoordination.class);
    private static final SecureRandom RANDOM = new SecureRandom();

    private final RedisConfig config;
    private final Clock clock;
    private final RedisClient jedis;
    private final ScheduledExecutorService scheduler;
    private final boolean ownsScheduler;
    private final Keys keys;
    private final String processId;
    private final RedisLocks locks;
    private final RedisVolumeGuard volumeGuard;
    private final RedisFleetView fleet;
    private final AtomicReference<RedisCacheIndex> index = new AtomicReference<>();
    private final AtomicLong outages = new AtomicLong();
    private final AtomicLong tokens = new AtomicLong();
    private final AtomicBoolean closed = new AtomicBoolean();
    private final Object recovery = new Object();
    private volatile boolean degraded;
    private volatile Instant outageSince;
    private ScheduledFuture<?> renewTask;
    private ScheduledFuture<?> probeTask;

    private RedisCoordination(Builder b) {
        this.config = b.config;
        this.clock = b.clock;
        this.ownsScheduler = b.scheduler == null;
        this.scheduler = b.scheduler != null ? b.scheduler : Executors.newSingleThreadScheduledExecutor(
                DaemonThreads.named("volprov-redis-" + config.hostId()));
        this.keys = new Keys(config.keyPrefix(), config.hostId());
        byte[] id = new byte[6];
        RANDOM.nextBytes(id);
        this.processId = HexFormat.of().formatHex(id);
        GenericObjectPoolConfig<Connection> pool = new GenericObjectPoolConfig<>();
        pool.setMaxTotal(config.maxConnections());
        pool.setMaxIdle(config.maxConnections());
        pool.setMinIdle(0);
        // A pool that is exhausted waits no longer than a connection would take to open.
        pool.setMaxWait(config.connectTimeout());
        pool.setJmxEnabled(false);
        DefaultJedisClientConfig.Builder client = DefaultJedisClientConfig.builder()
                .connectionTimeoutMillis((int) config.connectTimeout().toMillis())
                .socketTimeoutMillis((int) config.socketTimeout().toMillis())
                .database(config.database())
                .clientName("volprov-" + config.hostId() + "-" + processId);
        if (config.tls()) {
            // The JVM's trust store, and the certificate must name the host.
            client.sslOptions(SslOptions.defaults());
        }
        if (config.user() != null) {
            client.user(config.user());
        }
        if (config.password() != null) {
            client.password(config.password());
        }
        this.jedis = RedisClient.builder()
                .hostAndPort(new HostAndPort(config.host(), config.port()))
                .clientConfig(client.build())
                .poolConfig(pool)
                .build();
        this.locks = new RedisLocks(this);
        this.volumeGuard = new RedisVolumeGuard(locks, keys);
        this.fleet = new RedisFleetView(this, keys);
    }

    /** Connects with the system clock and a timer thread of its own. */
    public static RedisCoordination create(RedisConfig config) {
        return builder().config(config).build();
    }

    public static Builder builder() {
        return new Builder();
    }

    /** A builder for this host's cache: a {@link DiskImageCache} over a directory, indexed in Redis. */
    public CacheBuilder cache() {
        checkOpen();
        return new CacheBuilder();
    }

    /** Keeps two processes of this host (and two jobs of this process) off one volume. */
    public VolumeGuard volumeGuard() {
        return volumeGuard;
    }

    /** Which hosts hold which images, and each host's counters. */
    public RedisFleetView fleet() {
        return fleet;
    }

    public RedisConfig config() {
        return config;
    }

    /** False while Redis is unreachable and coordination is local only. */
    public boolean connected() {
        return !degraded;
    }

    /** Outages seen since this coordination was created. */
    public long outages() {
        return outages.get();
    }

    /**
     * Probes Redis now instead of at the next {@link RedisConfig#probeInterval()}; when it answers
     * after an outage, reconciles before returning.
     *
     * @return whether Redis is in use now
     */
    public boolean reconnect() {
        checkOpen();
        probe();
        return !degraded;
    }

    // ------------------------------------------------------------------ for the adapter's classes

    Clock clock() {
        return clock;
    }

    Keys keys() {
        return keys;
    }

    long leaseMillis() {
        return config.leaseTime().toMillis();
    }

    String newToken() {
        return processId + "-" + tokens.incrementAndGet();
    }

    /**
     * Runs {@code op} on a pooled connection.
     *
     * @throws RedisUnreachableException at once while an outage lasts, or when Redis does not answer
     *     (which starts an outage)
     * @throws ProvisioningException {@code BACKEND_FAILURE} when Redis answers with an error
     */
    <T> T call(Function<UnifiedJedis, T> op) {
        if (degraded) {
            throw new RedisUnreachableException("Redis at " + config.endpoint() + " is unreachable", null);
        }
        return direct(op);
    }

    /** Like {@link #call} but tries Redis even during an outage: for probing and reconciling. */
    <T> T direct(Function<UnifiedJedis, T> op) {
        if (closed.get()) {
            throw new RedisUnreachableException("the Redis coordination is closed", null);
        }
        try {
            try {
                return op.apply(jedis);
            } catch (JedisConnectionException first) {
                // After a Redis restart every idle pooled connection is dead: drop them all, and let a
                // fresh connection tell whether Redis is down.
                jedis.getPool().clear();
                return op.apply(jedis);
            }
        } catch (JedisConnectionException e) {
            outage(e);
            throw new RedisUnreachableException("Redis at " + config.endpoint() + " is unreachable", e);
        } catch (JedisDataException e) {
            if (isTransient(e)) {
                outage(e);
                throw new RedisUnreachableException("Redis at " + config.endpoint() + " cannot serve: "
                        + e.getMessage(), e);
            }
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "Redis at " + config.endpoint()
                    + " failed: " + e.getMessage(), e);
        } catch (JedisException e) {
            outage(e);
            throw new RedisUnreachableException("Redis at " + config.endpoint() + " failed: " + e.getMessage(), e);
        }
    }

    /** Errors of a server that is loading, a replica or out of memory: it serves again later. */
    private static boolean isTransient(JedisDataException e) {
        String m = String.valueOf(e.getMessage());
        return !(e instanceof JedisAccessControlException) && (m.startsWith("LOADING") || m.startsWith("READONLY")
                || m.startsWith("MASTERDOWN") || m.startsWith("BUSY") || m.startsWith("OOM")
                || m.startsWith("TRYAGAIN"));
    }

    private void outage(Exception cause) {
        synchronized (recovery) {
            if (degraded || closed.get()) {
                return;
            }
            degraded = true;
            outageSince = clock.instant();
            outages.incrementAndGet();
        }
        LOG.warn("Redis at {} is unreachable ({}); provisioning goes on with this process's own cache index and"
                + " locks until it answers again: meanwhile two processes may download one image", config.endpoint(),
                cause.toString());
    }

    void register(RedisCacheIndex idx) {
        if (!index.compareAndSet(null, idx)) {
            throw new IllegalStateException("this RedisCoordination has an open cache already: one cache directory"
                    + " per host id; close it first or use another coordination with another hostId");
        }
    }

    void unregister(RedisCacheIndex idx) {
        index.compareAndSet(idx, null);
    }

    private void probe() {
        if (!degraded) {
            return;
        }
        synchronized (recovery) {
            if (!degraded || closed.get()) {
                return;
            }
            try {
                jedis.ping();
            } catch (JedisException e) {
                LOG.debug("Redis at {} still unreachable: {}", config.endpoint(), e.toString());
                return;
            }
            degraded = false;
            LOG.info("Redis at {} answers again after {}; reconciling the cache index with the directory",
                    config.endpoint(), Duration.between(outageSince, clock.instant()));
            // Under the lock, so that a concurrent reconnect() returns only once Redis is reconciled.
            reconcileAll();
        }
    }

    private void reconcileAll() {
        try {
            heartbeat();
            RedisCacheIndex idx = index.get();
            if (idx != null) {
                idx.reconcile();
            }
            locks.renewAll();
        } catch (RedisUnreachableException e) {
            // A new outage began (and was logged); the next probe tries again.
        } catch (RuntimeException e) {
            LOG.warn("reconciling with Redis at {} failed", config.endpoint(), e);
        }
    }

    /** Runs the timer's renewal now; for tests that move a clock instead of waiting for the timer. */
    void renewNow() {
        renew();
    }

    /** Renews leases and locks and writes the heartbeat; reconciles when Redis has lost the index. */
    private void renew() {
        if (degraded) {
            return;
        }
        try {
            boolean loaded = heartbeat();
            RedisCacheIndex idx = index.get();
            if (!loaded && idx != null && idx.loaded()) {
                LOG.warn("Redis at {} no longer holds the cache index of host {} (restarted or flushed); rebuilding it"
                        + " from the directory", config.endpoint(), keys.hostId);
                reconcileAll();
                return;
            }
            locks.renewAll();
            if (idx != null) {
                idx.renew();
            }
        } catch (RedisUnreachableException e) {
            // The outage is logged once; the probe takes over.
        } catch (RuntimeException e) {
            LOG.warn("renewing leases in Redis at {} failed", config.endpoint(), e);
        }
    }

    /** Marks this host alive for three lease times; returns whether Redis still holds the host's index. */
    private boolean heartbeat() {
        long loaded = (Long) call(j -> Scripts.HEARTBEAT.run(j, List.of(keys.alive(keys.hostId),
                Long.toString(3 * leaseMillis()), keys.loaded())));
        return loaded == 1;
    }

    private void start() {
        try {
            jedis.ping();
        } catch (JedisException e) {
            if (refusedCredentials(e)) {
                jedis.close();
                if (ownsScheduler) {
                    scheduler.shutdownNow();
                }
                throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "Redis at " + config.endpoint()
                        + " refused the credentials: " + e.getMessage(), e);
            }
            outage(e);
        }
        if (!degraded) {
            try {
                heartbeat();
            } catch (RedisUnreachableException e) {
                // Logged as an outage; the probe takes over.
            }
        }
        long renewMs = config.renewInterval().toMillis();
        long probeMs = config.probeInterval().toMillis();
        renewTask = scheduler.scheduleWithFixedDelay(this::renew, renewMs, renewMs, TimeUnit.MILLISECONDS);
        probeTask = scheduler.scheduleWithFixedDelay(this::probe, probeMs, probeMs, TimeUnit.MILLISECONDS);
    }

    /** A wrong password or user is a mistake to report at once, not an outage to wait out. */
    private static boolean refusedCredentials(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            String m = String.valueOf(t.getMessage());
            if (t instanceof JedisAccessControlException || m.startsWith("NOAUTH") || m.startsWith("WRONGPASS")
                    || m.startsWith("NOPERM")) {
                return true;
            }
        }
        return false;
    }

    private void checkOpen() {
        if (closed.get()) {
            throw new IllegalStateException("the Redis coordination is closed");
        }
    }

    /** Releases the locks this process holds, stops the timer and closes the pool; idempotent. */
    @Override
    public void close() {
        if (closed.get()) {
            return;
        }
        try {
            if (renewTask != null) {
                renewTask.cancel(false);
                probeTask.cancel(false);
            }
            locks.releaseAll();
        } finally {
            closed.set(true);
            try {
                if (ownsScheduler) {
                    scheduler.shutdownNow();
                }
            } finally {
                jedis.close();
            }
        }
    }

    @Override
    public String toString() {
        return "RedisCoordination[" + config + ", process=" + processId + (degraded ? ", unreachable" : "") + "]";
    }

    /** Builds a {@link RedisCoordination}; {@code config} is required. */
    public static final class Builder {
        private RedisConfig config;
        private Clock clock = Clock.systemUTC();
        private ScheduledExecutorService scheduler;

        private Builder() {
        }

        public Builder config(RedisConfig config) {
            this.config = Objects.requireNonNull(config, "config");
            return this;
        }

        /** The clock leases of cache entries are written and read against; default the system's UTC clock. */
        public Builder clock(Clock clock) {
            this.clock = Objects.requireNonNull(clock, "clock");
            return this;
        }

        /**
         * The timer that renews leases and probes Redis; default a daemon thread of its own. A given
         * scheduler is not shut down by {@link RedisCoordination#close()}.
         */
        public Builder scheduler(ScheduledExecutorService scheduler) {
            this.scheduler = Objects.requireNonNull(scheduler, "scheduler");
            return this;
        }

        /**
         * Connects. A Redis that does not answer is not an error: the coordination starts local only
         * and warns.
         *
         * @throws IllegalStateException when {@code config} is missing
         * @throws ProvisioningException {@code BACKEND_FAILURE} when Redis refuses the credentials
         */
        public RedisCoordination build() {
            if (config == null) {
                throw new IllegalStateException("config is required");
            }
            RedisCoordination c = new RedisCoordination(this);
            c.start();
            return c;
        }
    }

    /**
     * Builds this host's cache: a {@link DiskImageCache} whose index, single flight and budget are
     * shared through Redis by every process of the host that opens the same directory with the
     * same host id. {@code directory} and {@code maxBytes} are required.
     */
    public final class CacheBuilder {
        private Path directory;
        private long maxBytes = -1;
        private int maxEntries = Integer.MAX_VALUE;
        private long reserveBytes;
        private boolean verifyOnOpen;
        private Duration staleTempAfter = Duration.ofHours(1);

        private CacheBuilder() {
        }

        /** The cache directory, shared by the host's processes; required. */
        public CacheBuilder directory(Path directory) {
            this.directory = Objects.requireNonNull(directory, "directory");
            return this;
        }

        /** The byte budget of the host's entries; required, positive; every process of the host should give the same. */
        public CacheBuilder maxBytes(long maxBytes) {
            if (maxBytes <= 0) {
                throw ProvisioningException.invalid("maxBytes", "must be positive, was " + maxBytes);
            }
            this.maxBytes = maxBytes;
            return this;
        }

        /** The most entries; positive; default unlimited. */
        public CacheBuilder maxEntries(int maxEntries) {
            if (maxEntries <= 0) {
                throw ProvisioningException.invalid("maxEntries", "must be positive, was " + maxEntries);
            }
            this.maxEntries = maxEntries;
            return this;
        }

        /** Free space left on the file system for others; see {@link DiskImageCache.Builder#reserveBytes}. */
        public CacheBuilder reserveBytes(long reserveBytes) {
            if (reserveBytes < 0) {
                throw ProvisioningException.invalid("reserveBytes", "must not be negative, was " + reserveBytes);
            }
            this.reserveBytes = reserveBytes;
            return this;
        }

        /** Re-hash every entry when opening; default false. */
        public CacheBuilder verifyOnOpen(boolean verifyOnOpen) {
            this.verifyOnOpen = verifyOnOpen;
            return this;
        }

        /**
         * How old a temp file must be before a sweep takes it for a dead process's; default one
         * hour. See {@link DiskImageCache.Builder#sharedDirectory(Duration)}.
         */
        public CacheBuilder staleTempAfter(Duration staleTempAfter) {
            Objects.requireNonNull(staleTempAfter, "staleTempAfter");
            if (staleTempAfter.isNegative() || staleTempAfter.isZero()) {
                throw ProvisioningException.invalid("staleTempAfter", "must be positive, was " + staleTempAfter);
            }
            this.staleTempAfter = staleTempAfter;
            return this;
        }

        /**
         * Opens the cache: sweeps what is stale in the directory and reconciles the index in Redis
         * with it (or, when Redis is unreachable, starts with a local index and warns).
         *
         * @throws IllegalStateException when a required option is missing, or this coordination has
         *     an open cache already
         */
        public DiskImageCache build() {
            checkOpen();
            if (directory == null) {
                throw new IllegalStateException("directory is required");
            }
            if (maxBytes < 0) {
                throw new IllegalStateException("maxBytes is required");
            }
            RedisCacheIndex idx = new RedisCacheIndex(RedisCoordination.this, maxBytes, maxEntries);
            register(idx);
            try {
                // Unfenced: two downloads of one image after a stall are harmless (both are verified).
                FillLock fillLock = key -> locks.tryLock(keys.fill(key), false).map(h -> h::close);
                return DiskImageCache.builder()
                        .directory(directory)
                        .index(idx)
                        .fillLock(fillLock)
                        .sharedDirectory(staleTempAfter)
                        .clock(clock)
                        .reserveBytes(reserveBytes)
                        .verifyOnOpen(verifyOnOpen)
                        .build();
            } catch (RuntimeException e) {
                unregister(idx);
                throw e;
            }
        }
    }
}
