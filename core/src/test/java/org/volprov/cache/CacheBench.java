package org.volprov.cache;

import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.util.Optional;
import java.util.Random;
import org.volprov.Cancellation;
import org.volprov.ImageRef;

/**
 * Prints the cost of a cache hit and the admission throughput (hashed, written, fsynced, renamed)
 * next to a plain write + fsync of the same bytes in the same run. Not a test: run it by hand,
 * {@code java -cp ... org.volprov.cache.CacheBench <dir> [MiB]}, on the disk you care about.
 */
public final class CacheBench {
    private CacheBench() {
    }

    public static void main(String[] args) throws Exception {
        Path base = Path.of(args.length > 0 ? args[0] : "/var/tmp/volprov-bench");
        int mib = args.length > 1 ? Integer.parseInt(args[1]) : 512;
        long size = (long) mib << 20;
        byte[] chunk = new byte[1 << 20];
        new Random(42).nextBytes(chunk);
        Files.createDirectories(base);

        for (int round = 1; round <= 2; round++) {
            Path plain = base.resolve("plain.bin");
            Files.deleteIfExists(plain);
            long t0 = System.nanoTime();
            try (FileChannel ch = FileChannel.open(plain, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                for (long done = 0; done < size; done += chunk.length) {
                    ByteBuffer b = ByteBuffer.wrap(chunk);
                    while (b.hasRemaining()) {
                        ch.write(b);
                    }
                }
                ch.force(true);
            }
            long plainNs = System.nanoTime() - t0;
            Files.delete(plain);

            t0 = System.nanoTime();
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            for (long done = 0; done < size; done += chunk.length) {
                md.update(chunk);
            }
            md.digest();
            long hashNs = System.nanoTime() - t0;

            Path cacheDir = base.resolve("cache-" + round);
            try (DiskImageCache cache = DiskImageCache.builder().directory(cacheDir).maxBytes(size * 2).build()) {
                CacheKey key = new CacheKey(new ImageRef("images", "bench.qcow2"), "e" + round, size, Optional.empty());
                t0 = System.nanoTime();
                try (CacheLease lease = cache.admit(key, sink -> {
                    while (sink.position() < sink.size()) {
                        sink.write(ByteBuffer.wrap(chunk));
                    }
                }, Cancellation.none())) {
                    // written
                }
                long admitNs = System.nanoTime() - t0;

                int warm = 200_000;
                int n = 1_000_000;
                for (int i = 0; i < warm; i++) {
                    cache.lookup(key).orElseThrow().close();
                }
                t0 = System.nanoTime();
                for (int i = 0; i < n; i++) {
                    cache.lookup(key).orElseThrow().close();
                }
                long hitNs = System.nanoTime() - t0;

                System.out.printf("round %d, %d MiB in %s%n", round, mib, base);
                System.out.printf("  plain write + fsync      %8.1f MB/s%n", mbps(size, plainNs));
                System.out.printf("  SHA-256 alone (memory)   %8.1f MB/s%n", mbps(size, hashNs));
                System.out.printf("  cache admission          %8.1f MB/s  (%.2fx the plain write time)%n",
                        mbps(size, admitNs), (double) admitNs / plainNs);
                System.out.printf("  cache hit (lookup+close) %8.3f us%n", hitNs / 1000.0 / n);
            }
            deleteTree(cacheDir);
        }
    }

    private static double mbps(long bytes, long nanos) {
        return bytes / 1e6 / (nanos / 1e9);
    }

    private static void deleteTree(Path dir) throws Exception {
        try (var s = Files.list(dir)) {
            for (Path p : (Iterable<Path>) s::iterator) {
                Files.delete(p);
            }
        }
        Files.delete(dir);
    }
}
