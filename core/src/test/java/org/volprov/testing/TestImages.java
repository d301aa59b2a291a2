package org.volprov.testing;

import java.io.IOException;
import java.io.InputStream;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;

/**
 * Real disk images for tests, made with {@code qemu-img} from content with random and zero
 * regions. Deterministic by seed, so an image made once can be reused by name.
 */
public final class TestImages {
    private static final int MIB = 1 << 20;

    private TestImages() {
    }

    /**
     * Writes a raw image of {@code sizeBytes}: alternating 1 MiB regions of random data and zeros
     * (one in three regions is zero), deterministic by {@code seed}. Zero regions are holes.
     */
    public static Path raw(Path file, long sizeBytes, long seed) throws IOException {
        Files.createDirectories(file.toAbsolutePath().getParent());
        Random random = new Random(seed);
        byte[] block = new byte[MIB];
        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
            f.setLength(0);
            f.setLength(sizeBytes);
            for (long off = 0, i = 0; off < sizeBytes; off += MIB, i++) {
                int n = (int) Math.min(MIB, sizeBytes - off);
                random.nextBytes(block);
                if (i % 3 != 1) {
                    f.seek(off);
                    f.write(block, 0, n);
                }
            }
        }
        return file;
    }

    /** Converts a raw image to qcow2, compressed when asked. */
    public static Path qcow2(Path raw, Path qcow2, boolean compressed) throws IOException {
        List<String> cmd = new ArrayList<>(List.of("qemu-img", "convert", "-f", "raw", "-O", "qcow2"));
        if (compressed) {
            cmd.add("-c");
        }
        cmd.add(raw.toString());
        cmd.add(qcow2.toString());
        run(cmd);
        return qcow2;
    }

    /**
     * A copy of {@code qcow2} whose header reads fine and whose L1 table's first entry points past
     * the end of the file: corrupt where only a full inspection looks.
     */
    public static Path qcow2CorruptPastHeader(Path qcow2, Path corrupt) throws IOException {
        Files.copy(qcow2, corrupt);
        try (java.io.RandomAccessFile f = new java.io.RandomAccessFile(corrupt.toFile(), "rw")) {
            f.seek(40);
            long l1 = f.readLong();
            f.seek(l1);
            f.writeLong(0x00f0_0000_0000_0000L);
        }
        return corrupt;
    }

    /** Publishes {@code image}'s SHA-256 next to it, as a {@code sha256sum} line in {@code <name>.sha256}. */
    public static void publishChecksum(Path image) throws IOException {
        Files.writeString(image.resolveSibling(image.getFileName() + ".sha256"),
                sha256(image) + "  " + image.getFileName() + "\n", java.nio.charset.StandardCharsets.US_ASCII);
    }

    /** A qcow2 image with a backing file: unsupported by design. */
    public static Path qcow2WithBacking(Path backing, Path overlay) throws IOException {
        run(List.of("qemu-img", "create", "-f", "qcow2", "-F", "qcow2", "-b", backing.toString(), overlay.toString()));
        return overlay;
    }

    /**
     * An empty encrypted qcow2 image ({@code format} {@code luks} or {@code aes}): unsupported by
     * design. LUKS key derivation times itself on the CPU and qemu-img gives up on a loaded machine
     * now and then, so creation is tried a few times.
     */
    public static Path qcow2Encrypted(Path out, String format) throws IOException {
        List<String> cmd = List.of("qemu-img", "create", "-q", "-f", "qcow2", "--object", "secret,id=sec0,data=volprov",
                "-o", "encrypt.format=" + format + ",encrypt.key-secret=sec0"
                        + (format.equals("luks") ? ",encrypt.iter-time=50" : ""), out.toString(), "2M");
        for (int attempt = 1; ; attempt++) {
            try {
                run(cmd);
                return out;
            } catch (IOException e) {
                if (attempt >= 5 || !String.valueOf(e.getMessage()).contains("CPU usage")) {
                    throw e;
                }
                Files.deleteIfExists(out);
            }
        }
    }

    /** {@code qemu-img convert -O raw} of {@code image} to {@code out}. */
    public static Path toRaw(Path image, Path out) throws IOException {
        run(List.of("qemu-img", "convert", "-O", "raw", image.toString(), out.toString()));
        return out;
    }

    /** Runs a command and fails with its output when it exits non-zero. */
    public static String run(List<String> cmd) throws IOException {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out;
        try (InputStream in = p.getInputStream()) {
            out = new String(in.readAllBytes());
        }
        try {
            if (!p.waitFor(10, TimeUnit.MINUTES) || p.exitValue() != 0) {
                throw new IOException(String.join(" ", cmd) + " failed: " + out);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        } finally {
            p.destroyForcibly();
        }
        return out;
    }

    /** SHA-256 of the first {@code length} bytes of {@code file}, lower-case hex. */
    public static String sha256(Path file, long length) throws IOException {
        MessageDigest md = digest();
        ByteBuffer buf = ByteBuffer.allocateDirect(4 * MIB);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long done = 0;
            while (done < length) {
                buf.clear().limit((int) Math.min(buf.capacity(), length - done));
                int n = ch.read(buf, done);
                if (n < 0) {
                    throw new IOException(file + " is shorter than " + length);
                }
                buf.flip();
                md.update(buf);
                done += n;
            }
        }
        return HexFormat.of().formatHex(md.digest());
    }

    public static String sha256(Path file) throws IOException {
        return sha256(file, Files.size(file));
    }

    /** Whether bytes {@code [from, to)} of {@code file} are all zero. */
    public static boolean zerosBetween(Path file, long from, long to) throws IOException {
        ByteBuffer buf = ByteBuffer.allocateDirect(4 * MIB);
        ByteBuffer zeros = ByteBuffer.allocateDirect(4 * MIB);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            for (long off = from; off < to; ) {
                buf.clear().limit((int) Math.min(buf.capacity(), to - off));
                int n = ch.read(buf, off);
                if (n <= 0) {
                    return false;
                }
                buf.flip();
                if (buf.mismatch(zeros.duplicate().limit(n)) != -1) {
                    return false;
                }
                off += n;
            }
        }
        return true;
    }

    private static MessageDigest digest() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
