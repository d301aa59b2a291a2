package org.volprov.benchmarks;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.LongBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.volprov.testing.TestImages;

/**
 * The local image files every benchmark reads, made once per size in a directory and reused by
 * later runs (the content is fixed by seeds). {@code images.properties} is written last, so its
 * presence means the set is complete.
 *
 * <ul>
 *   <li>{@code object.bin}: random bytes; the object downloaded from S3, and the raw image;</li>
 *   <li>{@code random.qcow2}: qcow2 of {@code object.bin}, every cluster allocated; the image
 *       provisioned end to end;</li>
 *   <li>{@code halfzero.qcow2}: 1 MiB random, 1 MiB zero, alternating; zero clusters unallocated;</li>
 *   <li>{@code compressed.qcow2}: compressed qcow2 of bytes with 4 bits of entropy each, which
 *       deflate halves, about what a real OS image gives.</li>
 * </ul>
 */
public final class Images {
    static final String OBJECT = "object.bin";
    static final String RANDOM_QCOW2 = "random.qcow2";
    static final String HALF_ZERO_QCOW2 = "halfzero.qcow2";
    static final String COMPRESSED_QCOW2 = "compressed.qcow2";
    private static final String MARKER = "images.properties";
    private static final int MIB = 1 << 20;

    private final Path dir;
    private final long size;
    private final String objectSha256;
    private final String imageSha256;

    private Images(Path dir, long size, String objectSha256, String imageSha256) {
        this.dir = dir;
        this.size = size;
        this.objectSha256 = objectSha256;
        this.imageSha256 = imageSha256;
    }

    /** The images of {@code sizeMiB} in {@code dir}: those made earlier, or new ones. */
    public static Images prepare(Path dir, int sizeMiB) {
        if (sizeMiB < 1) {
            throw new IllegalArgumentException("sizeMiB must be at least 1");
        }
        long size = (long) sizeMiB * MIB;
        Path marker = dir.resolve(MARKER);
        if (Files.exists(marker)) {
            Map<String, String> m = KeyValues.read(marker);
            if (Long.toString(size).equals(m.get("size"))) {
                return new Images(dir, size, KeyValues.require(m, "objectSha256", marker),
                        KeyValues.require(m, "imageSha256", marker));
            }
        }
        try {
            deleteTree(dir);
            Files.createDirectories(dir);
            Path object = dir.resolve(OBJECT);
            write(object, size, Content.RANDOM, 1);
            TestImages.qcow2(object, dir.resolve(RANDOM_QCOW2), false);

            Path halfZero = dir.resolve("halfzero.raw");
            write(halfZero, size, Content.HALF_ZERO, 2);
            TestImages.qcow2(halfZero, dir.resolve(HALF_ZERO_QCOW2), false);
            Files.delete(halfZero);

            Path compressible = dir.resolve("compressible.raw");
            write(compressible, size, Content.COMPRESSIBLE, 3);
            TestImages.qcow2(compressible, dir.resolve(COMPRESSED_QCOW2), true);
            Files.delete(compressible);

            Images images = new Images(dir, size, TestImages.sha256(object), TestImages.sha256(dir.resolve(RANDOM_QCOW2)));
            Map<String, String> m = new LinkedHashMap<>();
            m.put("size", Long.toString(size));
            m.put("objectSha256", images.objectSha256);
            m.put("imageSha256", images.imageSha256);
            KeyValues.write(marker, m);
            return images;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot make the benchmark images in " + dir, e);
        }
    }

    public Path dir() {
        return dir;
    }

    /** Bytes of the object, and virtual size of every image. */
    public long size() {
        return size;
    }

    public Path object() {
        return dir.resolve(OBJECT);
    }

    /** The qcow2 image provisioned end to end. */
    public Path image() {
        return dir.resolve(RANDOM_QCOW2);
    }

    /** An image by the name the convert benchmark uses: random, halfzero, compressed or raw. */
    public Path byKind(String kind) {
        return switch (kind) {
            case "random" -> dir.resolve(RANDOM_QCOW2);
            case "halfzero" -> dir.resolve(HALF_ZERO_QCOW2);
            case "compressed" -> dir.resolve(COMPRESSED_QCOW2);
            case "raw" -> object();
            default -> throw new IllegalArgumentException("no image kind " + kind
                    + "; use random, halfzero, compressed or raw");
        };
    }

    public String objectSha256() {
        return objectSha256;
    }

    public String imageSha256() {
        return imageSha256;
    }

    enum Content { RANDOM, HALF_ZERO, COMPRESSIBLE }

    /** Writes {@code size} bytes of {@code content}; zero regions are left as holes. */
    static void write(Path file, long size, Content content, long seed) throws IOException {
        SplittableRandom random = new SplittableRandom(seed);
        byte[] block = new byte[MIB];
        LongBuffer longs = ByteBuffer.wrap(block).order(ByteOrder.LITTLE_ENDIAN).asLongBuffer();
        long mask = content == Content.COMPRESSIBLE ? 0x0f0f0f0f0f0f0f0fL : -1L;
        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
            f.setLength(0);
            f.setLength(size);
            for (long off = 0, i = 0; off < size; off += MIB, i++) {
                if (content == Content.HALF_ZERO && i % 2 == 1) {
                    continue;
                }
                longs.clear();
                while (longs.hasRemaining()) {
                    longs.put(random.nextLong() & mask);
                }
                f.seek(off);
                f.write(block, 0, (int) Math.min(MIB, size - off));
            }
        }
    }

    static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }
}
