package org.volprov.testing;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * A real block device for tests: a sparse file, a loop device over it ({@code losetup -f --show -P}),
 * filled end to end with {@link #tenantByte(long) an earlier tenant's pattern}, then labelled GPT
 * ({@code parted -s DEV mklabel gpt}). Partitions appear as {@code /dev/loopNpM} at once.
 *
 * <p>{@link #close()} detaches the loop device by the path {@code losetup} returned, after checking
 * that its backing file is still this object's file, and deletes the file; it never touches another
 * loop device. Devices still open when the JVM exits normally are closed by a shutdown hook (a
 * SIGKILLed test JVM leaves its loop device attached: {@code losetup -a} lists it, with its file).
 *
 * <p>Needs root and {@code losetup}, {@code parted} and {@code blockdev} (Debian packages
 * {@code mount}, {@code parted}, {@code util-linux}); {@link #unavailableReason()} says why not.
 * Not thread-safe.
 */
public final class LoopDevice implements AutoCloseable {
    /** Set to {@code off} where loop devices cannot be made (an unprivileged container): their tests are skipped. */
    public static final String SWITCH = "TEST_LOOP_DEVICES";
    private static final int MIB = 1 << 20;
    private static final Set<LoopDevice> OPEN = ConcurrentHashMap.newKeySet();

    static {
        Runtime.getRuntime().addShutdownHook(new Thread(() -> List.copyOf(OPEN).forEach(LoopDevice::close),
                "loop-device-cleanup"));
    }

    private final Path file;
    private final Path device;
    private boolean closed;

    private LoopDevice(Path file, Path device) {
        this.file = file;
        this.device = device;
    }

    /**
     * Why loop devices are not made here: {@code TEST_LOOP_DEVICES=off}. Empty otherwise, also when
     * a tool is missing or the process is not root: then {@link #create} fails and says what to fix,
     * so that a machine meant to run these tests never skips them silently.
     */
    public static Optional<String> unavailableReason() {
        return "off".equalsIgnoreCase(System.getenv(SWITCH))
                ? Optional.of(SWITCH + "=off: no loop devices here; the block-device tests run on a host with root")
                : Optional.empty();
    }

    /** Makes a loop device of {@code bytes} over a file in {@code dir}, filled with the tenant pattern and labelled GPT. */
    public static LoopDevice create(Path dir, long bytes) throws IOException {
        if (bytes <= 0 || bytes % MIB != 0) {
            throw new IllegalArgumentException("bytes must be a positive number of MiB");
        }
        for (String tool : List.of("losetup", "parted", "blockdev")) {
            if (!onPath(tool)) {
                throw new IOException(tool + " is not installed (scripts/setup.sh test installs it: Debian packages"
                        + " mount, parted and util-linux)");
            }
        }
        Files.createDirectories(dir);
        Path file = Files.createTempFile(dir, "volprov-loop-", ".img");
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
            ch.truncate(0);
            ch.write(ByteBuffer.allocate(1), bytes - 1); // sparse until filled
        }
        String out;
        try {
            out = run(List.of("losetup", "-f", "--show", "-P", file.toString())).strip();
        } catch (IOException e) {
            Files.deleteIfExists(file);
            throw new IOException("cannot attach a loop device (the block-device tests need root): " + e.getMessage(), e);
        }
        LoopDevice d = new LoopDevice(file, Path.of(out));
        OPEN.add(d);
        try {
            writeTenantPattern(d.device, 0, bytes);
            run(List.of("parted", "-s", d.device.toString(), "mklabel", "gpt"));
            return d;
        } catch (IOException | RuntimeException e) {
            d.close();
            throw e;
        }
    }

    /** The loop device, e.g. {@code /dev/loop3}. */
    public Path device() {
        return device;
    }

    /** The backing file. */
    public Path file() {
        return file;
    }

    /** The device's size in bytes. */
    public long size() throws IOException {
        return Long.parseLong(run(List.of("blockdev", "--getsize64", device.toString())).strip());
    }

    /** What the kernel and libvirt call partition {@code number} of this device: {@code loop3p1}. */
    public String partitionName(int number) {
        return device.getFileName() + "p" + number;
    }

    /** The device node of partition {@code number}: {@code /dev/loop3p1}. */
    public Path partitionNode(int number) {
        return device.resolveSibling(partitionName(number));
    }

    /** One partition (or, numbered 0, a free region) as {@code parted} reports it, in bytes. */
    public record Partition(int number, long start, long size) {
    }

    /** The partitions, read with {@code parted -m}: what is on the device, whoever made it. */
    public List<Partition> partitions() throws IOException {
        List<Partition> parts = new ArrayList<>();
        String[] lines = run(List.of("parted", "-s", "-m", device.toString(), "unit", "B", "print")).split("\n");
        for (String line : lines) {
            String[] f = line.strip().split(":");
            if (f.length >= 4 && f[0].matches("[0-9]+")) {
                parts.add(new Partition(Integer.parseInt(f[0]), bytes(f[1]), bytes(f[3])));
            }
        }
        return parts;
    }

    /** The number the next partition gets: GPT numbers a new partition with the lowest one free. */
    public int nextPartitionNumber() throws IOException {
        List<Integer> used = partitions().stream().map(Partition::number).toList();
        int n = 1;
        while (used.contains(n)) {
            n++;
        }
        return n;
    }

    /** The regions outside every partition and the label, per {@code parted print free}. */
    public List<Partition> freeRegions() throws IOException {
        List<Partition> free = new ArrayList<>();
        for (String line : run(List.of("parted", "-s", "-m", device.toString(), "unit", "B", "print", "free")).split("\n")) {
            String[] f = line.strip().split(":");
            if (f.length >= 5 && f[4].startsWith("free")) {
                free.add(new Partition(0, bytes(f[1]), bytes(f[3])));
            }
        }
        return free;
    }

    /** Whether every byte outside the partitions (and the label) still holds the tenant's pattern. */
    public boolean freeSpaceHoldsTenantPattern() throws IOException {
        for (Partition r : freeRegions()) {
            if (!holdsTenantPattern(device, 0, r.start(), r.size())) {
                return false;
            }
        }
        return true;
    }

    /**
     * Makes a partition of {@code bytes} (a multiple of 512) in the first free region that holds it,
     * 1 MiB aligned, without libvirt, and waits for its node.
     */
    public Partition addPartition(long bytes) throws IOException {
        if (bytes <= 0 || bytes % 512 != 0) {
            throw new IllegalArgumentException("bytes must be a positive multiple of 512");
        }
        int number = nextPartitionNumber();
        for (Partition free : freeRegions()) {
            long start = (free.start() + MIB - 1) / MIB * MIB;
            long end = free.start() + free.size(); // exclusive
            if (end - start >= bytes) {
                run(List.of("parted", "-s", device.toString(), "unit", "B", "mkpart", "part" + number,
                        start + "B", (start + bytes - 1) + "B"));
                awaitNode(number, true);
                return partitions().stream().filter(p -> p.number() == number).findFirst()
                        .orElseThrow(() -> new IOException("parted made no partition " + number + " on " + device));
            }
        }
        throw new IOException("no free region of " + bytes + " bytes on " + device);
    }

    /** Removes partition {@code number} with {@code parted}, and waits for its node to go. */
    public void removePartition(int number) throws IOException {
        run(List.of("parted", "-s", device.toString(), "rm", Integer.toString(number)));
        awaitNode(number, false);
    }

    /** The byte the earlier tenant left at {@code offset} of the device: never zero. */
    public static byte tenantByte(long offset) {
        return (byte) (0x80 | (offset * 31 + (offset >>> 9)) & 0x7f);
    }

    /**
     * Whether {@code length} bytes of {@code node} from {@code offset} still hold the tenant pattern,
     * {@code nodeOffset} being where {@code node} starts on this device (0 for the device itself, a
     * partition's start for its node).
     */
    public static boolean holdsTenantPattern(Path node, long nodeOffset, long offset, long length) throws IOException {
        dropCache(node);
        ByteBuffer buf = ByteBuffer.allocate(MIB);
        try (FileChannel ch = FileChannel.open(node, StandardOpenOption.READ)) {
            for (long done = 0; done < length; ) {
                buf.clear().limit((int) Math.min(buf.capacity(), length - done));
                int n = ch.read(buf, offset + done);
                if (n <= 0) {
                    return false;
                }
                for (int i = 0; i < n; i++) {
                    if (buf.get(i) != tenantByte(nodeOffset + offset + done + i)) {
                        return false;
                    }
                }
                done += n;
            }
        }
        return true;
    }

    /**
     * Makes the next read of a block device node come from the device: each node (the disk, each
     * partition) has a page cache of its own, so bytes written through one can be stale in another.
     * Does nothing for a regular file.
     */
    public static void dropCache(Path node) throws IOException {
        Path real = node.toRealPath();
        if (!Files.isRegularFile(real)) {
            run(List.of("blockdev", "--flushbufs", real.toString()));
        }
    }

    /** Detaches the loop device (only if it is still over this file) and deletes the file; idempotent. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        OPEN.remove(this);
        try {
            String backing = run(List.of("losetup", "-n", "-O", "BACK-FILE", device.toString())).strip();
            if (Path.of(backing).equals(file)) {
                run(List.of("losetup", "-d", device.toString()));
            } else {
                System.err.println("[loop] " + device + " is over " + backing + ", not " + file + ": left attached");
            }
        } catch (IOException e) {
            System.err.println("[loop] cannot detach " + device + " (losetup -d " + device + "): " + e.getMessage());
        }
        try {
            Files.deleteIfExists(file);
        } catch (IOException e) {
            System.err.println("[loop] cannot delete " + file + ": " + e);
        }
    }

    @Override
    public String toString() {
        return device + " over " + file;
    }

    /**
     * Writes the tenant pattern over {@code length} bytes of {@code node} from its start, as if an
     * earlier tenant had left them there; {@code nodeOffset} is where {@code node} starts on the
     * device (a partition's start; 0 for a file). Flushed before it returns.
     */
    public static void writeTenantPattern(Path node, long nodeOffset, long length) throws IOException {
        writePattern(node, nodeOffset, 0, length);
    }

    /** Gives {@code length} bytes of the device from {@code start} back to the tenant (outside any partition). */
    public void restoreTenantPattern(long start, long length) throws IOException {
        writePattern(device, 0, start, length);
    }

    private static void writePattern(Path node, long nodeOffset, long from, long length) throws IOException {
        ByteBuffer buf = ByteBuffer.allocateDirect(4 * MIB);
        try (FileChannel ch = FileChannel.open(node, StandardOpenOption.WRITE)) {
            for (long off = from; off < from + length; off += buf.capacity()) {
                buf.clear().limit((int) Math.min(buf.capacity(), from + length - off));
                for (int i = 0; i < buf.limit(); i++) {
                    buf.put(i, tenantByte(nodeOffset + off + i));
                }
                while (buf.hasRemaining()) {
                    ch.write(buf, off + buf.position());
                }
            }
            ch.force(true);
        }
    }

    private void awaitNode(int number, boolean present) throws IOException {
        Path node = partitionNode(number);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (Files.exists(node) != present) {
            if (System.nanoTime() > deadline) {
                throw new IOException(node + (present ? " did not appear" : " did not go away") + " within 10 s");
            }
            try {
                Thread.sleep(20); // the kernel makes the node; there is nothing to wait on
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException("interrupted", e);
            }
        }
    }

    private static long bytes(String s) {
        return Long.parseLong(s.endsWith("B") ? s.substring(0, s.length() - 1) : s);
    }

    private static boolean onPath(String tool) {
        for (String dir : List.of("/usr/sbin", "/sbin", "/usr/bin", "/bin")) {
            if (Files.isExecutable(Path.of(dir, tool))) {
                return true;
            }
        }
        return false;
    }

    private static String run(List<String> cmd) throws IOException {
        return TestImages.run(cmd);
    }
}
