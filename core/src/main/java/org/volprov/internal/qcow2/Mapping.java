package org.volprov.internal.qcow2;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The guest-to-host mapping rules: L1 and L2 entries checked against the header and the file's
 * size, and turned into runs of guest bytes. Every entry is validated before it is used; a hostile
 * entry is refused ({@code UNSUPPORTED_IMAGE}), never followed. Stricter than qemu where qemu is
 * lenient (reserved bits set, tables or clusters past the end of the file), as lenient nowhere.
 * Immutable and thread-safe.
 */
final class Mapping {
    private static final long OFFSET_MASK = 0x00ff_ffff_ffff_fe00L;
    /** L1 bits 0-8 and 56-62 are reserved; bit 63 (refcount is one) carries no meaning for reading. */
    private static final long L1_RESERVED = 0x7f00_0000_0000_01ffL;
    private static final long COPIED = 1L << 63;
    private static final long COMPRESSED = 1L << 62;
    private static final long ZERO = 1L;
    /** Standard descriptor bits 1-8 and 56-61 are reserved. */
    private static final long L2_RESERVED = 0x3f00_0000_0000_01feL;
    static final int SUBCLUSTERS = 32;

    /** Receives the runs of one L2 table, in guest order. A run never crosses a cluster. */
    interface Runs {
        /** {@code length} guest bytes from {@code guest} read as zero (unallocated, or a zero cluster). */
        void zero(long guest, long length);

        /**
         * {@code length} guest bytes are the host bytes from {@code host}; {@code host} lies inside
         * the file, and bytes past its end read as zero (as qemu reads them).
         */
        void data(long guest, long length, long host);

        /**
         * {@code length} guest bytes are bytes {@code [skip, skip + length)} of the cluster that the
         * compressed data at {@code [host, host + hostLength)} inflates to; {@code host} lies inside
         * the file, and bytes past its end read as zero.
         */
        void compressed(long guest, int length, int skip, long host, int hostLength);
    }

    private final Qcow2Header h;
    private final int clusterBits;
    private final long clusterSize;
    private final long fileSize;
    private final int entryBytes;
    private final int compressedOffsetBits;
    private final long compressedSectorsMask;

    Mapping(Qcow2Header h) {
        this.h = h;
        this.clusterBits = h.clusterBits();
        this.clusterSize = h.clusterSize();
        this.fileSize = h.fileSize();
        this.entryBytes = h.extendedL2() ? 16 : 8;
        this.compressedOffsetBits = 62 - (clusterBits - 8);
        this.compressedSectorsMask = (1L << (clusterBits - 8)) - 1;
    }

    Qcow2Header header() {
        return h;
    }

    /**
     * The offset of the L2 table that L1 entry {@code index} names, or 0 when its region is
     * unallocated (reads as zero). The table is cluster aligned and lies wholly inside the file.
     */
    long l2Offset(int index, long entry) {
        if ((entry & L1_RESERVED) != 0) {
            throw Refusal.corrupt("L1 entry " + index + " (" + Refusal.hex(entry) + ") has reserved bits set");
        }
        long offset = entry & OFFSET_MASK;
        if (offset == 0) {
            return 0;
        }
        if ((offset & (clusterSize - 1)) != 0) {
            throw Refusal.corrupt("L1 entry " + index + " points at " + Refusal.hex(offset)
                    + ", which is not aligned to a cluster");
        }
        if (offset > fileSize - clusterSize) {
            throw Refusal.corrupt("L1 entry " + index + " points at an L2 table at " + Refusal.hex(offset)
                    + ", past the end of the image (" + fileSize + " bytes)");
        }
        return offset;
    }

    /** The first guest byte that region (L1 entry) {@code index} maps. */
    long regionStart(int index) {
        return (long) index << (clusterBits + h.l2Bits());
    }

    /** Guest bytes region {@code index} maps inside the virtual size. */
    long regionLength(int index) {
        return Math.min(h.l2Coverage(), h.virtualSize() - regionStart(index));
    }

    /**
     * Visits the runs of region {@code index} from the L2 table {@code table} (one cluster, read
     * from its position; not consumed), restricted to guest bytes {@code [from, to)}.
     */
    void runs(int index, ByteBuffer table, long from, long to, Runs out) {
        ByteBuffer t = table.slice().order(ByteOrder.BIG_ENDIAN);
        long start = regionStart(index);
        long end = Math.min(start + regionLength(index), to);
        int first = (int) ((Math.max(from, start) - start) >>> clusterBits);
        for (long j = first, guest = start + (j << clusterBits); guest < end; j++, guest += clusterSize) {
            int at = (int) (j * entryBytes);
            long entry = t.getLong(at);
            long bitmap = entryBytes == 16 ? t.getLong(at + 8) : 0;
            long lo = Math.max(guest, from);
            long hi = Math.min(guest + clusterSize, end);
            if (entryBytes == 16 && (entry & COMPRESSED) == 0) {
                subclusters(index, (int) j, entry, bitmap, guest, lo, hi, out);
            } else {
                cluster(index, (int) j, entry, bitmap, guest, lo, hi, out);
            }
        }
    }

    private void cluster(int index, int j, long entry, long bitmap, long guest, long lo, long hi, Runs out) {
        if ((entry & COMPRESSED) != 0) {
            if ((entry & COPIED) != 0 || bitmap != 0) {
                throw corruptEntry(index, j, entry, "a compressed cluster with the copied flag or a subcluster bitmap");
            }
            long descriptor = entry & ~(COPIED | COMPRESSED);
            long host = descriptor & ((1L << compressedOffsetBits) - 1);
            long sectors = ((descriptor >>> compressedOffsetBits) & compressedSectorsMask) + 1;
            if (host >= 1L << 56 || host >= fileSize || host < clusterSize) {
                throw corruptEntry(index, j, entry, "compressed data at " + Refusal.hex(host)
                        + ", outside the image's " + fileSize + " bytes");
            }
            int hostLength = (int) (sectors * 512 - (host & 511));
            out.compressed(lo, (int) (hi - lo), (int) (lo - guest), host, hostLength);
            return;
        }
        if ((entry & L2_RESERVED) != 0) {
            throw corruptEntry(index, j, entry, "reserved bits set");
        }
        long offset = entry & OFFSET_MASK;
        boolean zero = (entry & ZERO) != 0;
        if (zero && h.version() < 3) {
            throw corruptEntry(index, j, entry, "a zero cluster in a version 2 image");
        }
        if (offset != 0 && (offset & (clusterSize - 1)) != 0) {
            throw corruptEntry(index, j, entry, "a cluster offset that is not aligned to a cluster");
        }
        if (zero || offset == 0) {
            out.zero(lo, hi - lo);
            return;
        }
        checkData(index, j, entry, offset);
        out.data(lo, hi - lo, offset + (lo - guest));
    }

    private void subclusters(int index, int j, long entry, long bitmap, long guest, long lo, long hi, Runs out) {
        if ((entry & (L2_RESERVED | ZERO)) != 0) {
            throw corruptEntry(index, j, entry, "reserved bits set");
        }
        long alloc = bitmap & 0xffff_ffffL;
        long zeros = bitmap >>> 32;
        if ((alloc & zeros) != 0) {
            throw corruptEntry(index, j, entry, "subclusters both allocated and zero (bitmap " + Refusal.hex(bitmap) + ")");
        }
        long offset = entry & OFFSET_MASK;
        if (alloc != 0) {
            if (offset == 0 || (offset & (clusterSize - 1)) != 0) {
                throw corruptEntry(index, j, entry, "allocated subclusters without an aligned cluster offset");
            }
            checkData(index, j, entry, offset);
        } else if (offset != 0 && (offset & (clusterSize - 1)) != 0) {
            throw corruptEntry(index, j, entry, "a cluster offset that is not aligned to a cluster");
        }
        long sub = clusterSize / SUBCLUSTERS;
        for (int s = 0; s < SUBCLUSTERS; s++) {
            long a = Math.max(guest + s * sub, lo);
            long b = Math.min(guest + (s + 1) * sub, hi);
            if (a >= b) {
                continue;
            }
            if ((alloc & (1L << s)) != 0) {
                out.data(a, b - a, offset + (a - guest));
            } else {
                out.zero(a, b - a);
            }
        }
    }

    private void checkData(int index, int j, long entry, long offset) {
        if (offset >= fileSize) {
            throw corruptEntry(index, j, entry, "data at " + Refusal.hex(offset) + ", past the end of the image ("
                    + fileSize + " bytes)");
        }
    }

    private static RuntimeException corruptEntry(int index, int j, long entry, String what) {
        return Refusal.corrupt("L2 entry " + j + " of L1 entry " + index + " (" + Refusal.hex(entry) + ") has " + what);
    }
}
