package org.volprov.benchmarks;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.time.Clock;
import java.util.HexFormat;
import java.util.Optional;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;
import org.volprov.Cancellation;
import org.volprov.ImageRef;
import org.volprov.RetryPolicy;
import org.volprov.Sleeper;
import org.volprov.cache.CacheKey;
import org.volprov.cache.CacheLease;
import org.volprov.cache.DiskImageCache;
import org.volprov.internal.engine.Download;
import org.volprov.support.Retrier;

/**
 * The cache's admission against the disk: the same bytes, from memory through the engine's
 * download loop, either admitted into a {@link DiskImageCache} (SHA-256 as they are written, temp
 * file, fsync, compare with the published digest, rename, fsync of the directory) or written to a
 * plain file and fsynced. {@code sha256} hashes them without a disk. Compare with
 * {@code dd conv=fdatasync} and {@code openssl dgst -sha256} in the same run.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Fork(1)
@Warmup(iterations = 2, time = 1, timeUnit = TimeUnit.SECONDS)
@Measurement(iterations = 5, time = 1, timeUnit = TimeUnit.SECONDS)
public class HashAndWriteBench {
    private static final int BUFFER = 1 << 20; // the engine's default copy buffer

    @Benchmark
    public String cacheAdmission(Admission s, Bytes bytes) {
        String sha;
        try (CacheLease lease = s.cache.admit(s.key, s.download(), Cancellation.none())) {
            if (lease.hit()) {
                throw new IllegalStateException("the entry was cached already; the setup did not clear the cache");
            }
            sha = lease.sha256();
        }
        bytes.bytes += s.source.size();
        return sha;
    }

    @Benchmark
    public long plainWrite(PlainWrite s, Bytes bytes) throws IOException {
        long written = 0;
        byte[] buf = new byte[BUFFER];
        try (InputStream in = s.source.open(null, MemoryImageSource.ETAG, 0, s.source.size());
                FileChannel out = FileChannel.open(s.target, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            for (int n; (n = in.read(buf)) > 0; ) {
                ByteBuffer b = ByteBuffer.wrap(buf, 0, n);
                while (b.hasRemaining()) {
                    written += out.write(b);
                }
            }
            out.force(true);
        }
        bytes.bytes += written;
        return written;
    }

    @Benchmark
    public String sha256(Memory s, Bytes bytes) throws IOException {
        MessageDigest md = MemoryImageSource.newDigest();
        byte[] buf = new byte[BUFFER];
        try (InputStream in = s.source.open(null, MemoryImageSource.ETAG, 0, s.source.size())) {
            for (int n; (n = in.read(buf)) > 0; ) {
                md.update(buf, 0, n);
            }
        }
        String hex = HexFormat.of().formatHex(md.digest());
        if (!hex.equals(s.source.sha256())) {
            throw new IllegalStateException("SHA-256 of the content changed");
        }
        bytes.bytes += s.source.size();
        return hex;
    }

    @State(Scope.Benchmark)
    public static class Memory {
        @Param({"256"})
        public int sizeMiB;

        MemoryImageSource source;

        @Setup(Level.Trial)
        public void setUp() {
            source = new MemoryImageSource((long) sizeMiB << 20);
            prepare();
        }

        /** What a subclass needs besides the content; one setup method, so the order is fixed. */
        void prepare() {
        }
    }

    @State(Scope.Benchmark)
    public static class Admission extends Memory {
        private final ImageRef ref = new ImageRef("volprov-bench", "memory.bin");
        private final Retrier retrier = new Retrier(RetryPolicy.NONE, Clock.systemUTC(), Sleeper.SYSTEM);
        Path dir;
        CacheKey key;
        DiskImageCache cache;

        @Override
        void prepare() {
            dir = Fixture.scratch("admission");
            key = new CacheKey(ref, MemoryImageSource.ETAG, source.size(), Optional.of(source.sha256()));
        }

        /** A new, empty cache for every admission: the last one's entry would make this one a hit. */
        @Setup(Level.Invocation)
        public void emptyCache() throws IOException {
            closeCache();
            Images.deleteTree(dir);
            cache = DiskImageCache.builder().directory(dir).maxBytes(2 * source.size()).build();
        }

        Download download() {
            return new Download(source, ref, MemoryImageSource.ETAG, retrier, Clock.systemUTC(), Cancellation.none(),
                    done -> { }, BUFFER, 1, 32L << 20, ForkJoinPool.commonPool());
        }

        private void closeCache() {
            if (cache != null) {
                cache.close();
                cache = null;
            }
        }

        @TearDown(Level.Trial)
        public void remove() {
            closeCache();
            Fixture.discard(dir);
        }
    }

    @State(Scope.Benchmark)
    public static class PlainWrite extends Memory {
        Path dir;
        Path target;

        @Override
        void prepare() {
            dir = Fixture.scratch("plain-write");
            target = dir.resolve("plain.bin");
        }

        @Setup(Level.Invocation)
        public void removeLast() throws IOException {
            Files.deleteIfExists(target);
        }

        @TearDown(Level.Trial)
        public void remove() {
            Fixture.discard(dir);
        }
    }
}
