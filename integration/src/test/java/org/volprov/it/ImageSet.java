package org.volprov.it;

import java.io.IOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.volprov.image.ImageFormat;
import org.volprov.testing.TestImages;

/**
 * The suite's images: real qcow2 files made with {@code qemu-img} from content with random and zero
 * regions (see {@link TestImages#raw}), at the reference suite's sizes, plus a raw and a compressed
 * image. Each is made once per content seed and kept in {@code TEST_IMAGE_DIR} (default
 * {@code ~/.cache/volprov/it-images}), so reruns reuse them; the expected raw digest is stored beside
 * each file. Thread-safe.
 */
final class ImageSet {
    static final long MIB = 1L << 20;
    /** Bumped when the generator changes, so stale files are never reused. */
    private static final String GENERATION = "g1";

    /** 100 MiB qcow2, the workhorse of most categories. */
    static final Spec SMALL = new Spec("small-100m", 100 * MIB, 101, Kind.QCOW2);
    /** 500 MiB qcow2. */
    static final Spec MEDIUM = new Spec("medium-500m", 500 * MIB, 102, Kind.QCOW2);
    /** 1 GiB qcow2, for the performance category. */
    static final Spec LARGE = new Spec("large-1g", 1024 * MIB, 103, Kind.QCOW2);
    /** 100 MiB raw. */
    static final Spec RAW = new Spec("raw-100m", 100 * MIB, 104, Kind.RAW);
    /** 100 MiB compressed qcow2. */
    static final Spec COMPRESSED = new Spec("compressed-100m", 100 * MIB, 105, Kind.COMPRESSED_QCOW2);

    enum Kind { QCOW2, COMPRESSED_QCOW2, RAW }

    /** What to make: {@code virtualSize} bytes of content from {@code seed}, stored as {@code kind}. */
    record Spec(String name, long virtualSize, long seed, Kind kind) {
        String fileName() {
            return GENERATION + "-" + name + "-s" + seed + (kind == Kind.RAW ? ".raw" : ".qcow2");
        }

        @Override
        public String toString() {
            return name;
        }
    }

    private static final Map<Spec, TestImage> MADE = new ConcurrentHashMap<>();

    private ImageSet() {
    }

    static Path directory() {
        String env = System.getenv("TEST_IMAGE_DIR");
        return env != null && !env.isBlank() ? Path.of(env)
                : Path.of(System.getProperty("user.home"), ".cache", "volprov", "it-images");
    }

    /** The image for {@code spec}, made on first use. */
    static TestImage get(Spec spec) {
        return MADE.computeIfAbsent(spec, s -> {
            try {
                return make(s, directory());
            } catch (IOException e) {
                throw new IllegalStateException("cannot make test image " + s, e);
            }
        });
    }

    /** Finds the image for {@code spec} in {@code dir}, or makes it there. */
    private static TestImage make(Spec spec, Path dir) throws IOException {
        Files.createDirectories(dir);
        Path file = dir.resolve(spec.fileName());
        Path sums = dir.resolve(spec.fileName() + ".sums");
        if (Files.exists(file) && Files.exists(sums)) {
            String[] s = Files.readString(sums).strip().split(" ");
            if (s.length == 2) {
                return new TestImage(spec.name(), file, format(spec), s[0], spec.virtualSize(), s[1]);
            }
        }
        long started = System.nanoTime();
        Path raw = Files.createTempFile(dir, spec.name() + "-", ".raw.tmp");
        Path converted = null;
        Path tmp = null;
        try {
            TestImages.raw(raw, spec.virtualSize(), spec.seed());
            if (spec.kind() == Kind.RAW) {
                tmp = raw;
            } else {
                tmp = Files.createTempFile(dir, spec.name() + "-", ".qcow2.tmp");
                Files.delete(tmp);
                TestImages.qcow2(raw, tmp, spec.kind() == Kind.COMPRESSED_QCOW2);
            }
            // The reference bytes: what qemu-img itself makes of the image, not what we wrote.
            converted = Files.createTempFile(dir, spec.name() + "-", ".converted.tmp");
            Files.delete(converted);
            TestImages.toRaw(tmp, converted);
            String rawSha = TestImages.sha256(converted, spec.virtualSize());
            String fileSha = TestImages.sha256(tmp);
            move(tmp, file);
            Files.writeString(sums, fileSha + " " + rawSha + "\n");
            System.out.printf("[images] made %s (%d MiB virtual, %d MiB file) in %.1f s%n", file,
                    spec.virtualSize() / MIB, Files.size(file) / MIB, (System.nanoTime() - started) / 1e9);
            return new TestImage(spec.name(), file, format(spec), fileSha, spec.virtualSize(), rawSha);
        } finally {
            Files.deleteIfExists(raw);
            if (converted != null) {
                Files.deleteIfExists(converted);
            }
            if (tmp != null) {
                Files.deleteIfExists(tmp);
            }
        }
    }

    private static ImageFormat format(Spec spec) {
        return spec.kind() == Kind.RAW ? ImageFormat.RAW : ImageFormat.QCOW2;
    }

    private static void move(Path from, Path to) throws IOException {
        try {
            Files.move(from, to, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(from, to, StandardCopyOption.REPLACE_EXISTING);
        }
    }
}
