package org.volprov.it;

import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Consumer;
import org.volprov.Job;
import org.volprov.JobEvent;
import org.volprov.ProvisionRequest;
import org.volprov.Provisioner;
import org.volprov.Stage;
import org.volprov.cache.DiskImageCache;
import org.volprov.image.ImageFormat;
import org.volprov.jdbc.testkit.PostgresTestDatabase;
import org.volprov.job.JobStore;
import org.volprov.libvirt.LibvirtVolumeBackend;
import org.volprov.libvirt.WriteMode;
import org.volprov.libvirt.testkit.LibvirtTestPool;
import org.volprov.minio.MinioImageSource;
import org.volprov.minio.MinioSourceConfig;
import org.volprov.redis.RedisConfig;
import org.volprov.redis.RedisCoordination;
import org.volprov.s3.S3ImageSource;
import org.volprov.s3.S3SourceConfig;
import org.volprov.s3.testkit.S3TestServer;
import org.volprov.source.ImageSource;

/**
 * One engine wired as a user wires it: the S3 or MinIO adapter -> a disk cache (its index in
 * memory, or shared through Redis) -> the libvirt backend on the test class's pool -> a PostgreSQL
 * job store. Owns every part it opened and closes them in
 * reverse order. Records every job event.
 */
final class Stack implements AutoCloseable {
    enum Adapter { S3, MINIO }

    /** The host id of every stack's job store and Redis coordination. */
    static final String HOST = "it-host";

    final ImageSource source;
    final DiskImageCache cache;
    final LibvirtVolumeBackend backend;
    final JobStore store;
    /** The Redis coordination, when the stack shares its cache index through Redis. */
    final RedisCoordination coordination;
    final Provisioner engine;
    final List<JobEvent> events = new CopyOnWriteArrayList<>();
    private final Map<String, CompletableFuture<Job>> ends = new ConcurrentHashMap<>();
    private final LibvirtTestPool pool;
    private final Deque<AutoCloseable> owned = new ArrayDeque<>();

    private Stack(Builder b) {
        this.pool = b.pool;
        try {
            S3TestServer s3 = Services.s3();
            URI endpoint = b.endpoint != null ? b.endpoint : s3.endpoint();
            String secret = b.secretKey != null ? b.secretKey : s3.secretKey();
            this.source = b.adapter == Adapter.S3
                    ? S3ImageSource.create(S3SourceConfig.builder().endpoint(endpoint).region(s3.region())
                            .credentials(s3.accessKey(), secret).readTimeout(b.readTimeout).build())
                    : MinioImageSource.create(MinioSourceConfig.builder().endpoint(endpoint).region(s3.region())
                            .credentials(s3.accessKey(), secret).readTimeout(b.readTimeout).build());
            owned.push(source);
            Path cacheDir = b.cacheDirectory != null ? b.cacheDirectory
                    : Files.createDirectories(b.work.resolve("cache"));
            if (b.redisPrefix != null) {
                RedisCoordination redis = RedisCoordination.create(b.redisConfig.keyPrefix(b.redisPrefix)
                        .hostId(HOST).build());
                owned.push(redis);
                this.coordination = redis;
                this.cache = redis.cache().directory(cacheDir).maxBytes(b.cacheBytes).build();
            } else {
                this.coordination = null;
                this.cache = DiskImageCache.builder().directory(cacheDir).maxBytes(b.cacheBytes).build();
            }
            owned.push(cache);
            if (b.backend != null) {
                this.backend = b.backend;
            } else {
                this.backend = b.pool.backend(b.writeMode);
                owned.push(backend);
            }
            if (b.store != null) {
                this.store = b.store;
            } else {
                // A PostgreSQL schema of this stack's own, dropped after the store closes.
                String schema = PostgresTestDatabase.newSchemaName();
                owned.push(() -> JobStores.postgres().dropSchema(schema));
                this.store = JobStores.postgres(schema, HOST);
                owned.push(store);
            }
            Provisioner.Builder pb = Provisioner.builder()
                    .source(source)
                    .cache(cache)
                    .backend(backend)
                    .jobStore(store)
                    .workDirectory(Files.createDirectories(b.workDirectory != null ? b.workDirectory
                            : b.work.resolve("convert")))
                    .jobTimeout(Services.jobWait())
                    .listener(this::record);
            if (coordination != null) {
                pb.volumeGuard(coordination.volumeGuard());
            }
            b.customize.accept(pb);
            this.engine = pb.build();
            owned.push(engine);
        } catch (Exception e) {
            close();
            throw new IllegalStateException("cannot wire the engine: " + e, e);
        }
    }

    static Builder builder(LibvirtTestPool pool, Path work) {
        return new Builder(pool, work);
    }

    /** A volume name the stack's test pool accepts and cleans up (in a disk pool: the next partition's). */
    String volume(String suffix) {
        return pool.volumeName(suffix);
    }

    static ProvisionRequest request(String imageUri, String volume, long size) {
        return ProvisionRequest.builder().imageUri(imageUri).volumeName(volume).volumeSizeBytes(size)
                .format(ImageFormat.AUTO).build();
    }

    /** Submits and waits for the job's end. */
    Job run(ProvisionRequest request) {
        return await(engine.submit(request));
    }

    Job await(String id) {
        return engine.await(id, Services.jobWait());
    }

    private void record(JobEvent e) {
        events.add(e);
        if (e.kind() == JobEvent.Kind.STATE && e.job().state().terminal()) {
            ends.computeIfAbsent(e.job().id(), id -> new CompletableFuture<>()).complete(e.job());
        }
    }

    /**
     * Waits for job {@code id} to end on this stack's engine, or to be found ended in the store: also
     * for a job the engine has not taken yet (another engine's, recovered once its lease runs out, by
     * this engine or by another one of the host).
     */
    Job awaitEnd(String id) throws Exception {
        CompletableFuture<Job> end = ends.computeIfAbsent(id, k -> new CompletableFuture<>());
        long deadline = System.nanoTime() + Services.jobWait().toNanos();
        while (true) {
            // Another engine of the host may be the one that ends it: the store says so, not an event.
            store.find(id).filter(j -> j.state().terminal()).ifPresent(end::complete);
            try {
                return end.get(Math.min(250, Math.max(1, (deadline - System.nanoTime()) / 1_000_000)),
                        TimeUnit.MILLISECONDS);
            } catch (TimeoutException e) {
                if (System.nanoTime() - deadline >= 0) {
                    throw e;
                }
            }
        }
    }

    /** The stages job {@code id} went through, in order, from its STAGE events. */
    List<Stage> stages(String id) {
        return events.stream()
                .filter(e -> e.kind() == JobEvent.Kind.STAGE && e.job().id().equals(id))
                .map(e -> e.job().stage())
                .toList();
    }

    @Override
    public void close() {
        RuntimeException failure = null;
        while (!owned.isEmpty()) {
            try {
                owned.pop().close();
            } catch (Exception e) {
                if (failure == null) {
                    failure = new IllegalStateException("closing the stack failed", e);
                } else {
                    failure.addSuppressed(e);
                }
            }
        }
        if (failure != null) {
            throw failure;
        }
    }

    static final class Builder {
        private final LibvirtTestPool pool;
        private final Path work;
        private Adapter adapter = Adapter.S3;
        private URI endpoint;
        private String secretKey;
        private Duration readTimeout = Duration.ofSeconds(30);
        private Path cacheDirectory;
        private Path workDirectory;
        private long cacheBytes = 8L << 30;
        private LibvirtVolumeBackend backend;
        private WriteMode writeMode = WriteMode.AUTO;
        private JobStore store;
        private String redisPrefix;
        private RedisConfig.Builder redisConfig;
        private Consumer<Provisioner.Builder> customize = b -> { };

        private Builder(LibvirtTestPool pool, Path work) {
            this.pool = pool;
            this.work = work;
        }

        Builder adapter(Adapter a) {
            this.adapter = a;
            return this;
        }

        /** Talks to {@code endpoint} (a fault proxy) instead of the S3 server itself. */
        Builder endpoint(URI e) {
            this.endpoint = e;
            return this;
        }

        Builder secretKey(String s) {
            this.secretKey = s;
            return this;
        }

        Builder readTimeout(Duration d) {
            this.readTimeout = d;
            return this;
        }

        Builder cacheDirectory(Path dir) {
            this.cacheDirectory = dir;
            return this;
        }

        /** The engine's work directory (default: {@code convert} in the stack's directory). */
        Builder workDirectory(Path dir) {
            this.workDirectory = dir;
            return this;
        }

        Builder cacheBytes(long bytes) {
            this.cacheBytes = bytes;
            return this;
        }


        /** A backend the caller opened (and closes), instead of one on the test class's pool. */
        Builder backend(LibvirtVolumeBackend b) {
            this.backend = b;
            return this;
        }

        /** How the backend on the test pool writes (default {@code AUTO}: {@code LOCAL} on this host). */
        Builder writeMode(WriteMode mode) {
            this.writeMode = mode;
            return this;
        }

        /** A job store the caller opened (and closes); default: PostgreSQL, in a schema of the stack's own. */
        Builder jobStore(JobStore s) {
            this.store = s;
            return this;
        }


        /** Shares the cache index and guards volumes through Redis, under {@code keyPrefix}. */
        Builder redis(RedisConfig.Builder config, String keyPrefix) {
            this.redisConfig = config;
            this.redisPrefix = keyPrefix;
            return this;
        }

        Builder engine(Consumer<Provisioner.Builder> c) {
            this.customize = c;
            return this;
        }

        Stack build() {
            return new Stack(this);
        }
    }
}
