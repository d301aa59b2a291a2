package org.volprov.internal.qcow2;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Stream;
import org.volprov.testing.TestImages;

/**
 * The differential corpus: real qcow2 images made with {@code qemu-img} and {@code qemu-io}, each
 * with the SHA-256 of what {@code qemu-img convert -O raw} makes of it. Deterministic (content from
 * seeds and qemu-io patterns), made once into {@code TEST_IMAGE_DIR/qcow2-corpus-<generation>}
 * (default {@code ~/.cache/volprov}) and reused; making the whole set takes a few seconds. Virtual
 * sizes are small except where size matters (an empty 2 GiB image).
 */
final class Qcow2Corpus {
    /** Bumped when a recipe changes, so stale files are never reused. */
    private static final String GENERATION = "c1";
    private static final long MIB = 1L << 20;

    /** An image: its file and the digest and virtual size qemu-img reports for it. */
    record Image(String name, Path file, long virtualSize, String rawSha256) {
        @Override
        public String toString() {
            return name;
        }
    }

    /** How to make one image in a work directory; {@code make} returns the qcow2 file. */
    @FunctionalInterface
    interface Recipe {
        Path make(Path work) throws IOException;
    }

    record Spec(String name, Recipe recipe) {
    }

    private static final Map<String, Image> MADE = new ConcurrentHashMap<>();

    private Qcow2Corpus() {
    }

    static Path directory() {
        String env = System.getenv("TEST_IMAGE_DIR");
        Path base = env != null && !env.isBlank() ? Path.of(env)
                : Path.of(System.getProperty("user.home"), ".cache", "volprov");
        return base.resolve("qcow2-corpus-" + GENERATION);
    }

    /** Every image of the corpus, made on first use. */
    static List<Image> all() {
        List<Image> images = new ArrayList<>();
        for (Spec s : specs()) {
            images.add(get(s));
        }
        return images;
    }

    static Image get(String name) {
        return get(specs().stream().filter(s -> s.name().equals(name)).findFirst()
                .orElseThrow(() -> new IllegalArgumentException("no corpus image " + name)));
    }

    private static Image get(Spec spec) {
        return MADE.computeIfAbsent(spec.name(), n -> {
            try {
                return make(spec, directory());
            } catch (IOException e) {
                throw new UncheckedIOException("cannot make corpus image " + n, e);
            }
        });
    }

    static List<Spec> specs() {
        List<Spec> s = new ArrayList<>();
        // Made by qemu-img convert from content with random and zero regions: the usual layout.
        for (String cluster : new String[] {"512", "4k", "64k", "2M"}) {
            long size = cluster.equals("512") ? 3 * MIB : cluster.equals("2M") ? 24 * MIB : 8 * MIB;
            s.add(new Spec("v3-" + cluster, w -> converted(w, size, 11, "-o", "cluster_size=" + cluster)));
            s.add(new Spec("v2-" + cluster, w -> converted(w, size, 12, "-o", "compat=0.10,cluster_size=" + cluster)));
            s.add(new Spec("deflate-" + cluster, w -> converted(w, size, 13, "-c", "-o", "cluster_size=" + cluster)));
            s.add(new Spec("zstd-" + cluster, w -> converted(w, size, 14, "-c", "-o",
                    "cluster_size=" + cluster + ",compression_type=zstd")));
        }
        s.add(new Spec("v2-deflate", w -> converted(w, 8 * MIB, 15, "-c", "-o", "compat=0.10")));
        s.add(new Spec("extended-l2", w -> converted(w, 8 * MIB, 16, "-o", "extended_l2=on")));
        s.add(new Spec("refcount-bits-1", w -> converted(w, 4 * MIB, 17, "-o", "refcount_bits=1")));
        s.add(new Spec("refcount-bits-64", w -> converted(w, 4 * MIB, 18, "-o", "refcount_bits=64")));
        // Zero clusters (allocated and not), discarded ranges, partial clusters.
        s.add(new Spec("zero-and-discard", w -> edited(w, "zd.qcow2", "4M", "",
                "write -P 0xa1 0 3M", "write -z 256k 256k", "write -z -u 1M 128k", "discard 2M 512k",
                "write -P 0xa2 2304k 4k", "write -z 3584k 64k")));
        s.add(new Spec("zero-and-discard-v2", w -> edited(w, "zd2.qcow2", "4M", "compat=0.10",
                "write -P 0xb1 0 3M", "write -z 256k 256k", "discard 2M 512k", "write -P 0xb2 2304k 4k")));
        // Tables and data out of guest order: writes in a scrambled order, with small clusters so that
        // there are many L2 tables, then a resize that moves the L1 table to the end of the file.
        s.add(new Spec("out-of-order-4k", w -> edited(w, "ooo4k.qcow2", "6M", "cluster_size=4k",
                "write -P 0x11 5M 300k", "write -P 0x12 0 64k", "write -P 0x13 3M 1M", "write -P 0x14 1M 8k",
                "write -P 0x15 5200k 4k", "write -P 0x16 2M 200k", "write -z 3200k 64k", "write -P 0x17 64k 4k")));
        s.add(new Spec("out-of-order-512", w -> edited(w, "ooo512.qcow2", "1M", "cluster_size=512",
                "write -P 0x21 768k 64k", "write -P 0x22 0 4k", "write -P 0x23 300k 100k", "write -P 0x24 4k 1k",
                "discard 310k 20k", "write -P 0x25 315k 2k", "write -P 0x26 1000k 24k")));
        s.add(new Spec("resized-l1-at-end", w -> {
            Path f = edited(w, "grown.qcow2", "3M", "cluster_size=4k", "write -P 0x31 0 1M", "write -P 0x32 2M 512k");
            TestImages.run(List.of("qemu-img", "resize", "-q", f.toString(), "40M"));
            return qemuIo(f, "write -P 0x33 20M 1M", "write -P 0x34 1536k 4k");
        }));
        s.add(new Spec("snapshots", w -> {
            Path f = converted(w, 8 * MIB, 21);
            TestImages.run(List.of("qemu-img", "snapshot", "-c", "s1", f.toString()));
            qemuIo(f, "write -P 0x41 1M 256k", "write -z 2M 64k", "discard 4M 1M");
            TestImages.run(List.of("qemu-img", "snapshot", "-c", "s2", f.toString()));
            return qemuIo(f, "write -P 0x42 1088k 64k", "write -P 0x43 7M 4k");
        }));
        s.add(new Spec("compressed-then-edited", w -> {
            Path f = converted(w, 8 * MIB, 22, "-c");
            return qemuIo(f, "write -P 0x51 1M 100k", "write -z 3M 256k", "write -P 0x52 6M 4k");
        }));
        s.add(new Spec("extended-l2-edited", w -> edited(w, "xl2.qcow2", "4M", "extended_l2=on,cluster_size=64k",
                "write -P 0x61 4k 4k", "write -z 64k 8k", "write -P 0x62 70k 2k", "write -P 0x63 1M 100k",
                "write -z 1028k 8k", "discard 2M 64k", "write -P 0x64 3M 32k")));
        // Odd virtual sizes (qemu-img rounds a size up to 512 bytes), data in the last partial cluster.
        s.add(new Spec("odd-size", w -> edited(w, "odd.qcow2", "1000001", "",
                "write -P 0x71 0 64k", "write -P 0x72 983040 17408")));
        s.add(new Spec("odd-size-compressed", w -> {
            Path raw = TestImages.raw(w.resolve("odd.raw"), 3 * MIB + 512 * 3, 23);
            Path f = w.resolve("oddc.qcow2");
            TestImages.run(List.of("qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", "-c", "-o",
                    "cluster_size=4k", raw.toString(), f.toString()));
            return f;
        }));
        s.add(new Spec("empty-2g", w -> edited(w, "empty.qcow2", "2G", "")));
        s.add(new Spec("lazy-refcounts", w -> edited(w, "lazy.qcow2", "4M", "lazy_refcounts=on",
                "write -P 0x81 0 1M", "write -z 512k 64k")));
        s.add(new Spec("dirty", w -> {
            Path f = edited(w, "dirty.qcow2", "4M", "lazy_refcounts=on", "write -P 0x91 0 1M");
            // abort leaves the dirty bit set, as a crash would; qemu-io then exits non-zero.
            run(List.of("qemu-io", "-c", "write -P 0x92 2M 256k", "-c", "abort", f.toString()), true);
            return f;
        }));
        s.add(new Spec("preallocated-metadata", w -> edited(w, "prealloc.qcow2", "4M", "preallocation=metadata",
                "write -P 0xa1 1M 64k")));
        s.add(new Spec("bitmap", w -> {
            Path f = converted(w, 4 * MIB, 24);
            TestImages.run(List.of("qemu-img", "bitmap", "--add", f.toString(), "bm0"));
            return qemuIo(f, "write -P 0xb1 1M 64k");
        }));
        return s;
    }

    /** The refusals: images that must end in UNSUPPORTED_IMAGE, made in {@code work}. */
    static Path backingFile(Path work) throws IOException {
        Path base = converted(work, 2 * MIB, 31);
        Path overlay = work.resolve("overlay.qcow2");
        TestImages.qcow2WithBacking(base, overlay);
        return overlay;
    }

    static Path externalDataFile(Path work) throws IOException {
        Path f = work.resolve("datafile.qcow2");
        TestImages.run(List.of("qemu-img", "create", "-q", "-f", "qcow2", "-o",
                "data_file=" + work.resolve("datafile.raw"), f.toString(), "2M"));
        return f;
    }

    static Path encrypted(Path work, String format) throws IOException {
        return TestImages.qcow2Encrypted(work.resolve("encrypted-" + format + ".qcow2"), format);
    }

    private static Path converted(Path work, long size, long seed, String... options) throws IOException {
        Path raw = TestImages.raw(work.resolve("content-" + seed + ".raw"), size, seed);
        Path f = work.resolve("converted-" + seed + ".qcow2");
        List<String> cmd = new ArrayList<>(List.of("qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2"));
        cmd.addAll(List.of(options));
        cmd.add(raw.toString());
        cmd.add(f.toString());
        TestImages.run(cmd);
        Files.delete(raw);
        return f;
    }

    private static Path edited(Path work, String name, String size, String options, String... writes)
            throws IOException {
        Path f = work.resolve(name);
        List<String> cmd = new ArrayList<>(List.of("qemu-img", "create", "-q", "-f", "qcow2"));
        if (!options.isEmpty()) {
            cmd.addAll(List.of("-o", options));
        }
        cmd.add(f.toString());
        cmd.add(size);
        TestImages.run(cmd);
        return writes.length == 0 ? f : qemuIo(f, writes);
    }

    private static Path qemuIo(Path f, String... commands) throws IOException {
        List<String> cmd = new ArrayList<>(List.of("qemu-io", "-f", "qcow2"));
        for (String c : commands) {
            cmd.add("-c");
            cmd.add(c);
        }
        cmd.add(f.toString());
        run(cmd, false);
        return f;
    }

    private static void run(List<String> cmd, boolean mayFail) throws IOException {
        if (!mayFail) {
            TestImages.run(cmd);
            return;
        }
        try {
            TestImages.run(cmd);
        } catch (IOException expected) {
            // the command aborted on purpose
        }
    }

    private static Image make(Spec spec, Path dir) throws IOException {
        Files.createDirectories(dir);
        Path file = dir.resolve(spec.name() + ".qcow2");
        Path sums = dir.resolve(spec.name() + ".sums");
        if (Files.exists(file) && Files.exists(sums)) {
            String[] s = Files.readString(sums).strip().split(" ");
            if (s.length == 2) {
                return new Image(spec.name(), file, Long.parseLong(s[0]), s[1]);
            }
        }
        Path work = Files.createTempDirectory(dir, spec.name() + "-");
        try {
            Path made = spec.recipe().make(work);
            Path raw = work.resolve("reference.raw");
            TestImages.toRaw(made, raw);
            long virtualSize = Files.size(raw);
            String sha = TestImages.sha256(raw);
            Files.delete(raw);
            move(made, file);
            Files.writeString(sums, virtualSize + " " + sha + "\n");
            return new Image(spec.name(), file, virtualSize, sha);
        } finally {
            deleteTree(work);
        }
    }

    static void move(Path from, Path to) throws IOException {
        try {
            Files.move(from, to, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(from, to, StandardCopyOption.REPLACE_EXISTING);
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
