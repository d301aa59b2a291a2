package org.volprov.internal.qcow2;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.volprov.Cancellation;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;
import org.volprov.image.ImageFormat;
import org.volprov.testing.TestImages;

/**
 * Hostile images: header fields, header extensions, L1 and L2 entries of valid corpus images
 * mutated, many seeds. Every mutant, through the random-access decoder, the push decoder into
 * both kinds of sink and the streaming fill into a sequential writer, must end with exactly the
 * bytes {@code qemu-img convert} makes of it, or with
 * {@code UNSUPPORTED_IMAGE} (a virtual size larger than the original counts as refused, as the
 * engine refuses it before writing): never another exception, never a write past the volume's
 * capacity (the original virtual size), never past a deadline, never allocating more than a bound.
 * qemu-img's verdict on each mutant is kept beside the corpus, so reruns cost only the decoding.
 */
class Qcow2MutationTest {
    private static final int MUTANTS = 3000;
    private static final long ALLOCATION_BOUND = 128L << 20;
    private static final Duration DEADLINE = Duration.ofSeconds(20);
    private static final String[] BASES = {"v3-512", "v2-512", "deflate-512", "zstd-512", "out-of-order-512",
        "odd-size", "extended-l2-edited", "zero-and-discard", "dirty", "snapshots", "v2-4k", "deflate-4k", "zstd-4k",
        "out-of-order-4k", "v3-64k", "deflate-64k", "bitmap"};
    /** Header fields: offset and width. */
    private static final int[][] HEADER_FIELDS = {{0, 4}, {4, 4}, {8, 8}, {16, 4}, {20, 4}, {24, 8}, {32, 4}, {36, 4},
        {40, 8}, {48, 8}, {56, 4}, {60, 4}, {64, 8}, {72, 8}, {80, 8}, {88, 8}, {96, 4}, {100, 4}, {104, 1}};

    @TempDir
    Path work;

    private final com.sun.management.ThreadMXBean threads =
            (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();

    /** What one way of decoding made of a mutant: the disk, or none when it was refused. */
    private record Outcome(PagedSink disk, long virtualSize) {
        boolean decoded() {
            return disk != null;
        }
    }

    @Test
    @Timeout(value = 10, unit = TimeUnit.MINUTES)
    void mutants_endWithQemuImgsBytesOrUnsupported_withinBounds() throws Exception {
        Path verdictFile = Qcow2Corpus.directory().resolve("mutation-verdicts.txt");
        Map<String, String> verdicts = readVerdicts(verdictFile);
        int added = 0;
        Map<String, Integer> counts = new LinkedHashMap<>();
        List<String> violations = new ArrayList<>();
        long maxAllocated = 0;
        long started = System.nanoTime();
        Random random = new Random(20261201);
        List<Qcow2Corpus.Image> bases = new ArrayList<>();
        List<byte[]> originals = new ArrayList<>();
        for (String name : BASES) {
            bases.add(Qcow2Corpus.get(name));
            originals.add(Files.readAllBytes(bases.get(bases.size() - 1).file()));
        }
        Path mutant = work.resolve("mutant.qcow2");
        for (int m = 0; m < MUTANTS; m++) {
            Qcow2Corpus.Image base = bases.get(m % bases.size());
            byte[] bytes = originals.get(m % bases.size()).clone();
            String where = mutate(bytes, random);
            Files.write(mutant, bytes);
            List<Outcome> outcomes = new ArrayList<>();
            for (int path = 0; path < 4; path++) {
                long before = threads.getCurrentThreadAllocatedBytes();
                try {
                    outcomes.add(decode(mutant, base.virtualSize(), path));
                } catch (RuntimeException | IOException | Error e) {
                    violations.add(base + " " + where + " path " + path + ": " + e);
                    outcomes.add(null);
                }
                long allocated = threads.getCurrentThreadAllocatedBytes() - before;
                maxAllocated = Math.max(maxAllocated, allocated);
                if (allocated > ALLOCATION_BOUND) {
                    violations.add(base + " " + where + " path " + path + ": allocated " + allocated + " bytes");
                }
            }
            Outcome first = outcomes.stream().filter(o -> o != null && o.decoded()).findFirst().orElse(null);
            boolean decoded = first != null;
            counts.merge(decoded ? "decoded" : "refused", 1, Integer::sum);
            if (!decoded) {
                continue;
            }
            // The mutant is its image (named by the digest of its raw content) and the one change.
            String key = base.name() + "/" + base.rawSha256().substring(0, 16) + "/" + bytes.length + "/"
                    + where.replace(' ', '_');
            String verdict = verdicts.get(key);
            if (verdict == null) {
                verdict = qemuImg(mutant);
                verdicts.put(key, verdict);
                added++;
            }
            // One digest; the other decodes are compared with the first byte for byte.
            String firstSha = first.virtualSize() + ":" + first.disk().sha256(first.virtualSize());
            for (int path = 0; path < outcomes.size(); path++) {
                Outcome o = outcomes.get(path);
                if (o == null || !o.decoded()) {
                    continue;
                }
                boolean same = o == first || (o.virtualSize() == first.virtualSize()
                        && o.disk().sameContent(first.disk(), o.virtualSize()));
                String ours = same ? firstSha : o.virtualSize() + ":" + o.disk().sha256(o.virtualSize());
                if (!ours.equals(verdict)) {
                    violations.add(base + " " + where + " path " + path + ": decoded to " + ours + ", qemu-img: "
                            + verdict);
                }
            }
            counts.merge(verdict.equals("refused") ? "decoded, qemu-img refused" : "decoded, qemu-img agrees", 1,
                    Integer::sum);
        }
        if (added > 0) {
            writeVerdicts(verdictFile, verdicts);
        }
        System.out.printf("[mutation] %d mutants of %d images in %.1f s: %s; most allocated by one decode: %d KiB;"
                + " qemu-img asked %d times%n", MUTANTS, BASES.length, (System.nanoTime() - started) / 1e9, counts,
                maxAllocated >> 10, added);
        assertThat(violations).isEmpty();
    }

    /**
     * Path 0: random access into a guest-order sink; 1: push into a positional sink; 2: push into a
     * guest-order sink; 3: the streaming fill into a sequential writer of the original's capacity.
     */
    private Outcome decode(Path file, long capacity, int path) throws IOException {
        Cancellation deadline = new Cancellation(Clock.systemUTC(), Clock.systemUTC().instant().plus(DEADLINE));
        if (path == 3) {
            return fill(file, capacity, deadline);
        }
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            PagedSink sink = new PagedSink(path == 1 ? GuestSink.Order.ANY : GuestSink.Order.GUEST, capacity);
            long virtualSize;
            if (path == 0) {
                Qcow2Image image = Qcow2Image.open(ch);
                virtualSize = image.header().virtualSize();
                if (virtualSize > capacity) {
                    return new Outcome(null, 0); // the engine refuses it: VOLUME_TOO_SMALL
                }
                image.validateTables(deadline);
                image.decode(sink, null, 1, d -> { }, deadline);
            } else {
                try (Qcow2Stream stream = new Qcow2Stream(ch.size(), sink, null, 1, d -> { }, deadline,
                        Qcow2Stream.Limits.defaults())) {
                    boolean fits = feedAll(ch, buf -> {
                        stream.feed(buf);
                        return stream.header().isEmpty() || stream.header().get().virtualSize() <= capacity;
                    });
                    if (!fits) {
                        return new Outcome(null, 0);
                    }
                    stream.finish(ch);
                    virtualSize = stream.header().orElseThrow().virtualSize();
                }
            }
            if (path != 1) {
                assertThat(sink.next()).as("guest-order writes cover the disk").isEqualTo(virtualSize);
            }
            return new Outcome(sink, virtualSize);
        } catch (ProvisioningException e) {
            if (e.code() == ErrorCode.UNSUPPORTED_IMAGE) {
                return new Outcome(null, 0);
            }
            throw e;
        }
    }

    private static Outcome fill(Path file, long capacity, Cancellation deadline) throws IOException {
        PagedVolumeWriter w = new PagedVolumeWriter(capacity);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ);
             // Requested as qcow2: with AUTO, a mutant without the magic would be a raw image, rightly.
             StreamingFill fill = new StreamingFill(ch.size(), ImageFormat.QCOW2,
                     image -> new StreamingFill.Target(w, capacity, true), null, 1, null, d -> { }, deadline,
                     Qcow2Stream.Limits.defaults())) {
            feedAll(ch, buf -> {
                fill.feed(buf);
                return true;
            });
            fill.finish(ch);
            assertThat(w.disk.next()).as("guest-order writes cover the volume").isEqualTo(capacity);
            return new Outcome(w.disk, fill.image().orElseThrow().virtualSize());
        } catch (ProvisioningException e) {
            if (e.code() == ErrorCode.UNSUPPORTED_IMAGE || e.code() == ErrorCode.VOLUME_TOO_SMALL) {
                return new Outcome(null, 0); // VOLUME_TOO_SMALL: a virtual size larger than the original's
            }
            throw e;
        }
    }

    /** Takes the next chunk of a file; false to stop. */
    private interface Feed {
        boolean accept(ByteBuffer chunk) throws IOException;
    }

    /** Feeds the whole file in 256 KiB chunks, as a download would; false when {@code feed} stopped it. */
    private static boolean feedAll(FileChannel ch, Feed feed) throws IOException {
        ByteBuffer buf = ByteBuffer.allocate(256 << 10);
        for (long at = 0; at < ch.size(); ) {
            buf.clear().limit((int) Math.min(buf.capacity(), ch.size() - at));
            Qcow2Image.readFully(ch, buf, at);
            at += buf.position();
            if (!feed.accept(buf.flip())) {
                return false;
            }
        }
        return true;
    }

    /** Changes one field of the image in place; returns where, for the report. */
    private static String mutate(byte[] image, Random r) {
        ByteBuffer b = ByteBuffer.wrap(image).order(ByteOrder.BIG_ENDIAN);
        int clusterBits = b.getInt(20);
        long cluster = 1L << clusterBits;
        int version = b.getInt(4);
        int headerLength = version == 2 ? 72 : b.getInt(100);
        long l1Offset = b.getLong(40);
        int l1Size = b.getInt(36);
        boolean extended = version == 3 && (b.getLong(72) & Qcow2Header.INCOMPAT_EXTENDED_L2) != 0;
        List<Long> tables = new ArrayList<>();
        for (int i = 0; i < l1Size && l1Offset + 8L * i + 8 <= image.length; i++) {
            long t = b.getLong((int) (l1Offset + 8L * i)) & 0x00ff_ffff_ffff_fe00L;
            if (t != 0 && t + cluster <= image.length) {
                tables.add(t);
            }
        }
        int kind = r.nextInt(10);
        int offset;
        int width;
        String where;
        if (kind < 4 || (kind >= 6 && tables.isEmpty())) {
            int[] f = HEADER_FIELDS[r.nextInt(version == 2 ? 13 : HEADER_FIELDS.length)];
            offset = f[0];
            width = f[1];
            where = "header@" + offset;
        } else if (kind == 4) {
            offset = headerLength + 4 * r.nextInt(16);
            width = 4;
            where = "extension@" + offset;
        } else if (kind == 5) {
            offset = (int) l1Offset + 8 * r.nextInt(Math.max(1, Math.min(l1Size, 64)));
            width = 8;
            where = "L1@" + offset;
        } else {
            long t = tables.get(r.nextInt(tables.size()));
            int entries = (int) (cluster / (extended ? 16 : 8));
            int index = r.nextInt(Math.min(entries, 4096));
            // Mostly entries that map something: those are where a wrong value can do harm.
            for (int tries = 0; tries < 8 && b.getLong((int) (t + (long) index * (extended ? 16 : 8))) == 0; tries++) {
                index = r.nextInt(Math.min(entries, 4096));
            }
            offset = (int) (t + (long) index * (extended ? 16 : 8) + (extended && r.nextInt(3) == 0 ? 8 : 0));
            width = 8;
            where = "L2@" + offset;
        }
        if (offset + width > image.length) {
            return "nothing (past the end)";
        }
        long old = get(b, offset, width);
        long value = switch (r.nextInt(9)) {
            case 0 -> old ^ (1L << r.nextInt(width * 8));
            case 1 -> 0;
            case 2 -> -1L;
            case 3 -> r.nextLong();
            case 4 -> old + (r.nextBoolean() ? 1 : -1) * (long) new int[] {1, 8, 512, 4096}[r.nextInt(4)];
            case 5 -> old + (r.nextBoolean() ? cluster : -cluster);
            case 6 -> (old & 0xff00_0000_0000_01ffL) | (((long) image.length - r.nextInt(3) * cluster) & ~0x1ffL);
            case 7 -> tables.isEmpty() ? old << 1 : tables.get(r.nextInt(tables.size())) | (old & 0xff00_0000_0000_0000L);
            default -> old ^ (1L << (width * 8 - 1 - r.nextInt(8)));
        };
        put(b, offset, width, value);
        return where + " " + Long.toHexString(old) + "->" + Long.toHexString(get(b, offset, width));
    }

    private static long get(ByteBuffer b, int offset, int width) {
        return switch (width) {
            case 1 -> b.get(offset) & 0xffL;
            case 4 -> b.getInt(offset) & 0xffff_ffffL;
            default -> b.getLong(offset);
        };
    }

    private static void put(ByteBuffer b, int offset, int width, long v) {
        switch (width) {
            case 1 -> b.put(offset, (byte) v);
            case 4 -> b.putInt(offset, (int) v);
            default -> b.putLong(offset, v);
        }
    }

    /** qemu-img's verdict: "size:sha256" of its raw output, or "refused". */
    private String qemuImg(Path mutant) throws IOException {
        Path out = work.resolve("qemu.raw");
        Files.deleteIfExists(out);
        Process p = new ProcessBuilder("qemu-img", "convert", "-f", "qcow2", "-O", "raw", mutant.toString(),
                out.toString()).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        try {
            if (!p.waitFor(60, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                return "refused";
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException(e);
        }
        if (p.exitValue() != 0 || !Files.exists(out)) {
            return "refused";
        }
        return Files.size(out) + ":" + TestImages.sha256(out);
    }

    private static Map<String, String> readVerdicts(Path file) throws IOException {
        Map<String, String> m = new LinkedHashMap<>();
        if (Files.exists(file)) {
            for (String line : Files.readAllLines(file)) {
                String[] kv = line.split(" ", 2);
                if (kv.length == 2) {
                    m.put(kv[0], kv[1]);
                }
            }
        }
        return m;
    }

    private static void writeVerdicts(Path file, Map<String, String> verdicts) throws IOException {
        StringBuilder s = new StringBuilder();
        verdicts.forEach((k, v) -> s.append(k).append(' ').append(v).append('\n'));
        Path tmp = Files.createTempFile(file.getParent(), "verdicts-", ".tmp");
        Files.writeString(tmp, s);
        Qcow2Corpus.move(tmp, file);
    }
}
