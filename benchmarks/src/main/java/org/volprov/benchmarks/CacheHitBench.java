package org.volprov.benchmarks;

import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;
import org.volprov.Cancellation;
import org.volprov.ImageRef;
import org.volprov.cache.CacheKey;
import org.volprov.cache.CacheLease;
import org.volprov.cache.DiskImageCache;

/**
 * What a cache hit costs the engine: {@code lookup} of a cached image and closing its lease, by
 * the published digest, or by the object's identity (bucket, key, ETag, size) when no checksum is
 * published. The entry's size does not matter here, so it is 1 MiB.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Fork(1)
@Warmup(iterations = 2, time = 1, timeUnit = TimeUnit.SECONDS)
@Measurement(iterations = 5, time = 1, timeUnit = TimeUnit.SECONDS)
@State(Scope.Benchmark)
public class CacheHitBench {
    private Path dir;
    private DiskImageCache cache;
    private CacheKey byDigest;
    private CacheKey byIdentity;

    @Setup(Level.Trial)
    public void admitOne() {
        dir = Fixture.scratch("cache-hit");
        cache = DiskImageCache.builder().directory(dir).maxBytes(16L << 20).build();
        ImageRef ref = new ImageRef("volprov-bench", "hit.qcow2");
        byIdentity = new CacheKey(ref, "etag-1", 1 << 20, Optional.empty());
        String sha;
        try (CacheLease lease = cache.admit(byIdentity, sink -> {
            while (sink.position() < sink.size()) {
                sink.write(ByteBuffer.allocate((int) Math.min(64 << 10, sink.size() - sink.position())));
            }
        }, Cancellation.none())) {
            sha = lease.sha256();
        }
        byDigest = new CacheKey(ref, "etag-1", 1 << 20, Optional.of(sha));
    }

    @Benchmark
    public Path hitByDigest() {
        try (CacheLease lease = cache.lookup(byDigest).orElseThrow()) {
            return lease.path();
        }
    }

    @Benchmark
    public Path hitByIdentity() {
        try (CacheLease lease = cache.lookup(byIdentity).orElseThrow()) {
            return lease.path();
        }
    }

    @TearDown(Level.Trial)
    public void remove() {
        cache.close();
        Fixture.discard(dir);
    }
}
