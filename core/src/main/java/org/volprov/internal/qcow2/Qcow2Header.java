package org.volprov.internal.qcow2;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A qcow2 header and its header extensions, validated against the image's size (qemu's
 * {@code docs/interop/qcow2.txt}). Everything this class reads lies in the image's first cluster, so
 * a download can be judged from its first bytes: {@link #parse} says when it has seen enough.
 *
 * <p>Refused, with {@code UNSUPPORTED_IMAGE} and a message that says what to do: a backing file, an
 * external data file, encryption, the corrupt bit, unknown incompatible features, and every field out
 * of its range (cluster bits, header length, L1 size against the virtual size, table offsets
 * unaligned or outside the file, header extensions that overrun the first cluster). Accepted:
 * versions 2 and 3, clusters of 512 B to 2 MiB, the dirty bit and lazy refcounts (the mapping does
 * not depend on refcounts), internal snapshots (the active L1 table is the disk), deflate and zstd
 * compression, extended L2 entries (subclusters), bitmaps (ignored: they do not change the data).
 *
 * <p>Immutable and thread-safe.
 */
public final class Qcow2Header {
    static final int MAGIC = 0x514649fb;
    static final int MIN_CLUSTER_BITS = 9;
    static final int MAX_CLUSTER_BITS = 21;
    /** qemu's limit on the active L1 table (QCOW_MAX_L1_SIZE): 32 MiB of entries. */
    static final long MAX_L1_BYTES = 32L << 20;
    /** qemu's limit on the refcount table (QCOW_MAX_REFTABLE_SIZE). */
    static final long MAX_REFCOUNT_TABLE_BYTES = 8L << 20;
    static final int MAX_SNAPSHOTS = 65536;
    private static final int V2_HEADER_LENGTH = 72;
    private static final int V3_HEADER_LENGTH = 104;

    static final long INCOMPAT_DIRTY = 1L;
    static final long INCOMPAT_CORRUPT = 1L << 1;
    static final long INCOMPAT_DATA_FILE = 1L << 2;
    static final long INCOMPAT_COMPRESSION = 1L << 3;
    static final long INCOMPAT_EXTENDED_L2 = 1L << 4;
    private static final long INCOMPAT_KNOWN = INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_DATA_FILE
            | INCOMPAT_COMPRESSION | INCOMPAT_EXTENDED_L2;
    static final long COMPAT_LAZY_REFCOUNTS = 1L;
    static final long AUTOCLEAR_BITMAPS = 1L;
    static final long AUTOCLEAR_DATA_FILE_RAW = 1L << 1;

    private static final int EXT_END = 0;
    private static final int EXT_BACKING_FORMAT = 0xe2792aca;
    private static final int EXT_FEATURE_TABLE = 0x6803f857;
    private static final int EXT_BITMAPS = 0x23852875;
    private static final int EXT_CRYPTO = 0x0537be77;
    private static final int EXT_DATA_FILE = 0x44415441;

    /** How compressed clusters are compressed. */
    public enum Compression { DEFLATE, ZSTD }

    private final int version;
    private final int clusterBits;
    private final long virtualSize;
    private final long fileSize;
    private final long l1Offset;
    private final int l1Entries;
    private final boolean extendedL2;
    private final Compression compression;
    private final long incompatibleFeatures;
    private final long compatibleFeatures;
    private final int snapshots;
    private final long snapshotsOffset;

    private Qcow2Header(int version, int clusterBits, long virtualSize, long fileSize, long l1Offset,
            int l1Entries, boolean extendedL2, Compression compression, long incompatibleFeatures,
            long compatibleFeatures, int snapshots, long snapshotsOffset) {
        this.version = version;
        this.clusterBits = clusterBits;
        this.virtualSize = virtualSize;
        this.fileSize = fileSize;
        this.l1Offset = l1Offset;
        this.l1Entries = l1Entries;
        this.extendedL2 = extendedL2;
        this.compression = compression;
        this.incompatibleFeatures = incompatibleFeatures;
        this.compatibleFeatures = compatibleFeatures;
        this.snapshots = snapshots;
        this.snapshotsOffset = snapshotsOffset;
    }

    /** Whether {@code head} starts with the qcow2 magic. */
    public static boolean hasMagic(ByteBuffer head) {
        return head.remaining() >= 4 && head.order(ByteOrder.BIG_ENDIAN).getInt(head.position()) == MAGIC;
    }

    /**
     * Parses and validates the header at the start of {@code head} (the image's first bytes, read
     * from its position; not consumed) for an image of {@code fileSize} bytes.
     *
     * @return the header, or empty when {@code head} ends before the header and its extensions do
     *     and the image is longer than {@code head}: call again with more bytes. At most one cluster
     *     (2 MiB) is ever needed, and usually a few hundred bytes are.
     * @throws org.volprov.ProvisioningException {@code UNSUPPORTED_IMAGE} for every refusal above,
     *     and for an image that ends before its header does
     */
    public static Optional<Qcow2Header> parse(ByteBuffer head, long fileSize) {
        ByteBuffer b = head.slice().order(ByteOrder.BIG_ENDIAN);
        boolean whole = b.remaining() >= fileSize;
        if (b.remaining() < 8) {
            return needMore(whole, "the image ends before its header (" + fileSize + " bytes)");
        }
        if (b.getInt(0) != MAGIC) {
            throw Refusal.corrupt("it does not start with the qcow2 magic");
        }
        int version = b.getInt(4);
        if (version != 2 && version != 3) {
            throw Refusal.unsupported("is qcow2 version " + Integer.toUnsignedString(version)
                    + ", which this decoder does not read (versions 2 and 3 only)",
                    "convert it with qemu-img convert -O qcow2 -o compat=1.1");
        }
        int fixed = version == 2 ? V2_HEADER_LENGTH : V3_HEADER_LENGTH;
        if (b.remaining() < fixed) {
            return needMore(whole, "the image ends inside its header (" + fileSize + " bytes)");
        }
        int clusterBits = b.getInt(20);
        if (clusterBits < MIN_CLUSTER_BITS || clusterBits > MAX_CLUSTER_BITS) {
            throw Refusal.corrupt("cluster_bits is " + Integer.toUnsignedString(clusterBits) + " (clusters of 512 B"
                    + " to 2 MiB, bits 9 to 21, are valid)");
        }
        long clusterSize = 1L << clusterBits;
        long incompatible = version == 2 ? 0 : b.getLong(72);
        long compatible = version == 2 ? 0 : b.getLong(80);
        long autoclear = version == 2 ? 0 : b.getLong(88);
        long headerLength = version == 2 ? V2_HEADER_LENGTH : Integer.toUnsignedLong(b.getInt(100));
        if (version == 3) {
            if (headerLength < V3_HEADER_LENGTH || headerLength > clusterSize || headerLength % 8 != 0) {
                throw Refusal.corrupt("header_length is " + headerLength + " (at least 104, a multiple of 8, and"
                        + " within the first cluster of " + clusterSize + " bytes)");
            }
            int refcountOrder = b.getInt(96);
            if (refcountOrder < 0 || refcountOrder > 6) {
                throw Refusal.corrupt("refcount_order is " + Integer.toUnsignedString(refcountOrder) + " (at most 6)");
            }
        }
        long backingOffset = b.getLong(8);
        if (backingOffset != 0) {
            throw Refusal.unsupported("has a backing file" + backingName(b, backingOffset, b.getInt(16), clusterSize),
                    "flatten it into a standalone image with qemu-img convert -O qcow2 and publish that");
        }
        int crypt = b.getInt(32);
        if (crypt != 0) {
            throw Refusal.unsupported("is encrypted (" + (crypt == 1 ? "AES" : crypt == 2 ? "LUKS"
                    : "method " + Integer.toUnsignedString(crypt)) + ")",
                    "publish a decrypted image (qemu-img convert --object secret,... -O qcow2)");
        }
        if (b.remaining() < headerLength) {
            return needMore(whole, "the image ends inside its header (" + fileSize + " bytes)");
        }
        // The extensions: from the end of the header to the end of the first cluster, or to an END one.
        Extensions ext = readExtensions(b, (int) headerLength, (int) Math.min(clusterSize, Integer.MAX_VALUE), whole);
        if (ext == null) {
            return Optional.empty();
        }
        if (ext.dataFile != null || (incompatible & INCOMPAT_DATA_FILE) != 0) {
            throw Refusal.unsupported("keeps its data in an external data file"
                    + (ext.dataFile == null ? "" : " ('" + ext.dataFile + "')"),
                    "convert it into a self-contained image with qemu-img convert -O qcow2 and publish that");
        }
        if (ext.crypto) {
            throw Refusal.corrupt("it has an encryption header extension but no encryption method");
        }
        long unknown = incompatible & ~INCOMPAT_KNOWN;
        if (unknown != 0) {
            throw Refusal.unsupported("uses incompatible features this decoder does not know ("
                    + featureNames(unknown, ext.incompatibleNames) + ")",
                    "convert it with qemu-img convert -O qcow2 -o compat=1.1 and publish that");
        }
        if ((incompatible & INCOMPAT_CORRUPT) != 0) {
            throw Refusal.unsupported("is marked corrupt by qemu",
                    "repair it with qemu-img check -r all, or make the image again");
        }
        if ((autoclear & AUTOCLEAR_DATA_FILE_RAW) != 0) {
            throw Refusal.corrupt("the raw-external-data bit is set but there is no external data file");
        }
        boolean extendedL2 = (incompatible & INCOMPAT_EXTENDED_L2) != 0;
        if (extendedL2 && clusterBits < 14) {
            throw Refusal.corrupt("extended L2 entries need clusters of at least 16 KiB, not " + clusterSize + " bytes");
        }
        Compression compression = compression(b, version, headerLength, incompatible);

        long virtualSize = b.getLong(24);
        if (virtualSize < 0 || virtualSize % 512 != 0) {
            throw Refusal.corrupt("the virtual size " + Long.toUnsignedString(virtualSize)
                    + " is not a non-negative multiple of 512 bytes");
        }
        int l2Bits = clusterBits - (extendedL2 ? 4 : 3);
        long l2Coverage = 1L << (clusterBits + l2Bits);
        long needed = (virtualSize + l2Coverage - 1) >>> (clusterBits + l2Bits);
        long l1Size = Integer.toUnsignedLong(b.getInt(36));
        if (l1Size < needed) {
            throw Refusal.corrupt("the L1 table has " + l1Size + " entries; the virtual size of " + virtualSize
                    + " bytes needs " + needed);
        }
        if (l1Size * 8 > MAX_L1_BYTES) {
            throw Refusal.corrupt("the L1 table has " + l1Size + " entries (qemu allows at most "
                    + MAX_L1_BYTES / 8 + ")");
        }
        long l1Offset = b.getLong(40);
        checkTable("the L1 table", l1Offset, needed * 8, clusterSize, fileSize, needed > 0);
        long refcountOffset = b.getLong(48);
        long refcountBytes = Integer.toUnsignedLong(b.getInt(56)) << clusterBits;
        if (refcountBytes == 0) {
            throw Refusal.corrupt("it has no refcount table");
        }
        if (refcountBytes > MAX_REFCOUNT_TABLE_BYTES) {
            throw Refusal.corrupt("the refcount table has " + (refcountBytes >>> clusterBits) + " clusters (qemu"
                    + " allows at most " + MAX_REFCOUNT_TABLE_BYTES + " bytes)");
        }
        checkTable("the refcount table", refcountOffset, refcountBytes, clusterSize, fileSize, false);
        long snapshots = Integer.toUnsignedLong(b.getInt(60));
        if (snapshots > MAX_SNAPSHOTS) {
            throw Refusal.corrupt("it claims " + snapshots + " snapshots (qemu allows at most " + MAX_SNAPSHOTS + ")");
        }
        long snapshotsOffset = b.getLong(64);
        checkTable("the snapshot table", snapshotsOffset, snapshots > 0 ? 40 * snapshots : 0, clusterSize, fileSize,
                false);
        return Optional.of(new Qcow2Header(version, clusterBits, virtualSize, fileSize, l1Offset, (int) needed,
                extendedL2, compression, incompatible, compatible, (int) snapshots, snapshotsOffset));
    }

    private static Optional<Qcow2Header> needMore(boolean whole, String truncated) {
        if (whole) {
            throw Refusal.corrupt(truncated);
        }
        return Optional.empty();
    }

    /**
     * A table must be cluster aligned; when it has bytes (or {@code placed}), it must lie inside the
     * file and not on the header's cluster.
     */
    private static void checkTable(String name, long offset, long bytes, long clusterSize, long fileSize,
            boolean placed) {
        if ((offset & (clusterSize - 1)) != 0 || offset < 0) {
            throw Refusal.corrupt(name + " offset " + Refusal.hex(offset) + " is not aligned to the cluster size of "
                    + clusterSize + " bytes");
        }
        if (bytes > 0 || placed) {
            if (offset < clusterSize || offset > fileSize || bytes > fileSize - offset) {
                throw Refusal.corrupt(name + " (" + bytes + " bytes at " + Refusal.hex(offset) + ") lies outside the"
                        + " image's " + fileSize + " bytes");
            }
        }
    }

    private static Compression compression(ByteBuffer b, int version, long headerLength, long incompatible) {
        int type = version == 3 && headerLength > V3_HEADER_LENGTH ? b.get(V3_HEADER_LENGTH) & 0xff : 0;
        boolean flagged = (incompatible & INCOMPAT_COMPRESSION) != 0;
        if (flagged != (type != 0)) {
            throw Refusal.corrupt("the compression type (" + type + ") and its incompatible feature bit disagree");
        }
        return switch (type) {
            case 0 -> Compression.DEFLATE;
            case 1 -> Compression.ZSTD;
            default -> throw Refusal.unsupported("uses compression type " + type + ", which this decoder does not know",
                    "convert it with qemu-img convert -O qcow2 (zlib or zstd compression) and publish that");
        };
    }

    private static String backingName(ByteBuffer b, long offset, int length, long clusterSize) {
        if (offset < 0 || length <= 0 || length > 1023 || offset + length > Math.min(b.remaining(), clusterSize)) {
            return "";
        }
        byte[] name = new byte[length];
        b.get((int) offset, name);
        return " ('" + printable(name) + "')";
    }

    private static String printable(byte[] bytes) {
        // Only printable ASCII reaches a message: the bytes come from the image.
        StringBuilder s = new StringBuilder();
        for (byte x : bytes) {
            s.append(x >= 0x20 && x < 0x7f ? (char) x : '?');
        }
        return s.length() > 200 ? s.substring(0, 200) + "..." : s.toString();
    }

    private static final class Extensions {
        String dataFile;
        boolean crypto;
        final Map<Integer, String> incompatibleNames = new HashMap<>();
    }

    /** Walks the extension area; null when {@code b} ends before it does and the file goes on. */
    private static Extensions readExtensions(ByteBuffer b, int from, int end, boolean whole) {
        Extensions ext = new Extensions();
        int off = from;
        while (off < end) {
            if (b.remaining() < (long) off + 8) {
                return whole ? failTruncated() : null;
            }
            int type = b.getInt(off);
            long len = Integer.toUnsignedLong(b.getInt(off + 4));
            off += 8;
            if (off > end || len > end - off) {
                throw Refusal.corrupt("a header extension (type " + Refusal.hex(Integer.toUnsignedLong(type))
                        + ", " + len + " bytes) runs past the first cluster");
            }
            if (type == EXT_END) {
                return ext;
            }
            if (b.remaining() < off + len) {
                return whole ? failTruncated() : null;
            }
            int n = (int) len;
            switch (type) {
                case EXT_BACKING_FORMAT -> {
                    if (n >= 16) {
                        throw Refusal.corrupt("the backing format extension is " + n + " bytes long");
                    }
                }
                case EXT_FEATURE_TABLE -> {
                    for (int e = off; e + 48 <= off + n; e += 48) {
                        if (b.get(e) == 0) {
                            byte[] name = new byte[46];
                            b.get(e + 2, name);
                            int z = 0;
                            while (z < name.length && name[z] != 0) {
                                z++;
                            }
                            ext.incompatibleNames.put(b.get(e + 1) & 0xff, printable(java.util.Arrays.copyOf(name, z)));
                        }
                    }
                }
                case EXT_BITMAPS -> {
                    if (n != 24) {
                        throw Refusal.corrupt("the bitmaps extension is " + n + " bytes long (24 expected)");
                    }
                }
                case EXT_CRYPTO -> ext.crypto = true;
                case EXT_DATA_FILE -> {
                    byte[] name = new byte[Math.min(n, 1024)];
                    b.get(off, name);
                    ext.dataFile = printable(name);
                }
                default -> {
                    // Unknown extensions may be ignored (the format says so).
                }
            }
            off += (n + 7) & ~7;
        }
        return ext;
    }

    private static Extensions failTruncated() {
        throw Refusal.corrupt("the image ends inside its header extensions");
    }

    private static String featureNames(long bits, Map<Integer, String> names) {
        List<String> parts = new ArrayList<>();
        for (int bit = 0; bit < 64; bit++) {
            if ((bits & (1L << bit)) != 0) {
                String name = names.get(bit);
                parts.add("bit " + bit + (name == null || name.isEmpty() ? "" : " '" + name + "'"));
            }
        }
        return String.join(", ", parts);
    }

    // ---- the validated fields ----

    /** 2 or 3. */
    public int version() {
        return version;
    }

    public int clusterBits() {
        return clusterBits;
    }

    public int clusterSize() {
        return 1 << clusterBits;
    }

    /** The size of the disk the image describes: a multiple of 512. */
    public long virtualSize() {
        return virtualSize;
    }

    /** The size of the image file this header was validated against. */
    public long fileSize() {
        return fileSize;
    }

    /** Where the active L1 table starts: cluster aligned, and inside the file when {@link #l1Entries()} > 0. */
    public long l1Offset() {
        return l1Offset;
    }

    /** The L1 entries that map the virtual size (the table may have more; they map nothing). */
    public int l1Entries() {
        return l1Entries;
    }

    /** Whether L2 entries are 128 bits with a subcluster bitmap. */
    public boolean extendedL2() {
        return extendedL2;
    }

    public Compression compression() {
        return compression;
    }

    /** Whether qemu left the dirty bit set: refcounts may be stale, the mapping is not. */
    public boolean dirty() {
        return (incompatibleFeatures & INCOMPAT_DIRTY) != 0;
    }

    public boolean lazyRefcounts() {
        return (compatibleFeatures & COMPAT_LAZY_REFCOUNTS) != 0;
    }

    /** Internal snapshots the image holds besides the active disk. */
    public int snapshots() {
        return snapshots;
    }

    /** Where the snapshot table starts (cluster aligned, inside the file when there are snapshots). */
    long snapshotsOffset() {
        return snapshotsOffset;
    }

    /** log2 of the entries in an L2 table. */
    int l2Bits() {
        return clusterBits - (extendedL2 ? 4 : 3);
    }

    /** Guest bytes one L2 table maps. */
    long l2Coverage() {
        return 1L << (clusterBits + l2Bits());
    }

    @Override
    public String toString() {
        return "qcow2 v" + version + ", " + clusterSize() + "-byte clusters, virtual size " + virtualSize + ", "
                + compression.name().toLowerCase(java.util.Locale.ROOT) + (extendedL2 ? ", extended L2" : "")
                + (dirty() ? ", dirty" : "") + (snapshots > 0 ? ", " + snapshots + " snapshots" : "");
    }
}
