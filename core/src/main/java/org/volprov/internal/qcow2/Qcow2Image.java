package org.volprov.internal.qcow2;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.util.concurrent.Executor;
import java.util.function.LongConsumer;
import org.volprov.Cancellation;

/**
 * A qcow2 image in a finished file, read at random: the warm path, and the second pass of a
 * {@link Qcow2Stream}. Opening parses the header and reads the active L1 table (both validated);
 * {@link #validateTables} reads every L2 table; {@link #decode} delivers guest bytes in guest order,
 * reading runs of adjacent data clusters in one read, skipping nothing it was not told is zero, and
 * inflating compressed clusters in parallel. Memory: the L1 table (bounded by the header's validated
 * size), one L2 table, one read buffer and the decompression window.
 *
 * <p>Not thread-safe: one decode at a time. The channel stays the caller's.
 */
public final class Qcow2Image {
    /** Reads of adjacent data clusters are merged up to this size. */
    static final int MAX_READ = 1 << 20;
    /** Compressed clusters in flight per decompression thread. */
    static final int WINDOW_PER_THREAD = 8;
    static final long MAX_QUEUED_BYTES = 16L << 20;
    static final long MAX_WINDOW_BYTES = 32L << 20;
    private static final int FIRST_READ = 64 << 10;
    private static final int SNAPSHOT_HEADER = 40;
    private static final long MAX_SNAPSHOT_EXTRA = 1024;
    /** qemu's limit on the snapshot table (QCOW_MAX_SNAPSHOTS_SIZE). */
    private static final long MAX_SNAPSHOT_TABLE = 64L << 20;

    private final FileChannel file;
    private final Mapping mapping;
    private final long[] l2Offsets;

    private Qcow2Image(FileChannel file, Mapping mapping, long[] l2Offsets) {
        this.file = file;
        this.mapping = mapping;
        this.l2Offsets = l2Offsets;
    }

    /**
     * Reads and validates the header and the active L1 table of the image in {@code file}.
     *
     * @throws org.volprov.ProvisioningException {@code UNSUPPORTED_IMAGE} when the image is refused
     * @throws IOException when the file cannot be read
     */
    public static Qcow2Image open(FileChannel file) throws IOException {
        long size = file.size();
        ByteBuffer head = read(file, 0, (int) Math.min(size, FIRST_READ));
        Qcow2Header header = Qcow2Header.parse(head, size).orElse(null);
        if (header == null) {
            head = read(file, 0, (int) Math.min(size, 1L << Qcow2Header.MAX_CLUSTER_BITS));
            header = Qcow2Header.parse(head, size).orElseThrow(() -> Refusal.corrupt("the header cannot be read"));
        }
        Mapping mapping = new Mapping(header);
        checkSnapshots(file, header);
        ByteBuffer l1 = read(file, header.l1Offset(), header.l1Entries() * 8);
        return new Qcow2Image(file, mapping, l2Offsets(mapping, l1));
    }

    /**
     * The snapshot table is not needed to read the active disk, but a table qemu would refuse makes
     * the image one it cannot open either: checked as qemu checks it, entry by entry, bounded.
     */
    private static void checkSnapshots(FileChannel file, Qcow2Header h) throws IOException {
        long at = h.snapshotsOffset();
        ByteBuffer entry = ByteBuffer.allocate(SNAPSHOT_HEADER).order(ByteOrder.BIG_ENDIAN);
        for (int i = 0; i < h.snapshots(); i++) {
            if (at > h.fileSize() - SNAPSHOT_HEADER) {
                throw Refusal.corrupt("snapshot " + i + " lies past the end of the image");
            }
            readFully(file, entry.clear(), at);
            long l1Offset = entry.getLong(0);
            long l1Size = Integer.toUnsignedLong(entry.getInt(8));
            long idLength = entry.getShort(12) & 0xffff;
            long nameLength = entry.getShort(14) & 0xffff;
            long extra = Integer.toUnsignedLong(entry.getInt(36));
            if (extra > MAX_SNAPSHOT_EXTRA) {
                throw Refusal.corrupt("snapshot " + i + " has " + extra + " bytes of extra data");
            }
            if ((l1Offset & (h.clusterSize() - 1)) != 0 || l1Offset < 0 || l1Size * 8 > Qcow2Header.MAX_L1_BYTES) {
                throw Refusal.corrupt("snapshot " + i + " has an invalid L1 table (" + l1Size + " entries at "
                        + Refusal.hex(l1Offset) + ")");
            }
            at += (SNAPSHOT_HEADER + extra + idLength + nameLength + 7) & ~7L;
            if (at - h.snapshotsOffset() > MAX_SNAPSHOT_TABLE) {
                throw Refusal.corrupt("the snapshot table is larger than " + MAX_SNAPSHOT_TABLE + " bytes");
            }
        }
        if (at > h.fileSize()) {
            throw Refusal.corrupt("the snapshot table runs past the end of the image");
        }
    }

    /** The L2 table offset of every L1 entry in {@code l1} (0: unallocated), each validated. */
    static long[] l2Offsets(Mapping mapping, ByteBuffer l1) {
        long[] offsets = new long[mapping.header().l1Entries()];
        ByteBuffer b = l1.slice().order(ByteOrder.BIG_ENDIAN);
        for (int i = 0; i < offsets.length; i++) {
            offsets[i] = mapping.l2Offset(i, b.getLong(i * 8));
        }
        return offsets;
    }

    public Qcow2Header header() {
        return mapping.header();
    }

    /**
     * Reads every L2 table and validates every entry, without reading data: the refusals that
     * need the tables, before anything is written.
     */
    public void validateTables(Cancellation cancellation) throws IOException {
        ByteBuffer table = ByteBuffer.allocate(header().clusterSize());
        Mapping.Runs ignore = new Mapping.Runs() {
            @Override
            public void zero(long guest, long length) {
            }

            @Override
            public void data(long guest, long length, long host) {
            }

            @Override
            public void compressed(long guest, int length, int skip, long host, int hostLength) {
            }
        };
        for (int i = 0; i < l2Offsets.length; i++) {
            if (l2Offsets[i] != 0) {
                cancellation.checkpoint();
                readFully(file, table.clear(), l2Offsets[i]);
                mapping.runs(i, table.flip(), 0, Long.MAX_VALUE, ignore);
            }
        }
    }

    /**
     * Delivers the whole disk to {@code sink}, in guest order.
     *
     * @param executor where compressed clusters are inflated; null for this thread
     * @param parallelism how many threads of {@code executor} may inflate at once
     * @param progress receives the guest bytes delivered so far
     * @throws org.volprov.ProvisioningException {@code UNSUPPORTED_IMAGE} for a corrupt table or
     *     cluster, or the cancellation's code
     */
    public void decode(GuestSink sink, Executor executor, int parallelism, LongConsumer progress,
            Cancellation cancellation) throws IOException {
        try (Decompression d = new Decompression(header(), executor)) {
            Output out = output(header(), sink, d, parallelism, progress, cancellation);
            try {
                decode(0, header().virtualSize(), out, cancellation);
                out.flush();
            } finally {
                out.abort();
            }
        }
    }

    /**
     * The output stage for {@code header}'s image: a window of {@link #WINDOW_PER_THREAD} clusters
     * per thread, fewer for large clusters so that their buffers (two clusters of input and one of
     * output each) stay within {@link #MAX_WINDOW_BYTES}, and never fewer than the threads.
     */
    static Output output(Qcow2Header header, GuestSink sink, Decompression d, int parallelism, LongConsumer progress,
            Cancellation cancellation) {
        int threads = Math.max(1, parallelism);
        long perCluster = 3L << header.clusterBits();
        int window = (int) Math.max(threads + 1, Math.min(WINDOW_PER_THREAD * threads, MAX_WINDOW_BYTES / perCluster));
        return new Output(sink, d, window, MAX_QUEUED_BYTES, progress, cancellation);
    }

    /** Delivers guest bytes {@code [from, to)} into {@code out}, in guest order. */
    void decode(long from, long to, Output out, Cancellation cancellation) throws IOException {
        if (from >= to) {
            return;
        }
        Reader reader = new Reader(out);
        ByteBuffer table = ByteBuffer.allocate(header().clusterSize());
        int bits = header().clusterBits() + header().l2Bits();
        for (int i = (int) (from >>> bits), last = (int) ((to - 1) >>> bits); i <= last; i++) {
            cancellation.checkpoint();
            long start = Math.max(from, mapping.regionStart(i));
            long end = Math.min(to, mapping.regionStart(i) + mapping.regionLength(i));
            if (l2Offsets[i] == 0) {
                reader.zero(start, end - start);
                continue;
            }
            readFully(file, table.clear(), l2Offsets[i]);
            mapping.runs(i, table.flip(), start, end, reader);
            reader.check();
        }
        reader.flushData();
        reader.check();
    }

    /** Turns runs into reads: adjacent data clusters become one read, compressed data is read and queued. */
    private final class Reader implements Mapping.Runs {
        private final Output out;
        private final ByteBuffer buffer = ByteBuffer.allocateDirect(MAX_READ);
        private long dataGuest;
        private long dataHost;
        private long dataLength;
        private IOException failure;

        Reader(Output out) {
            this.out = out;
        }

        @Override
        public void zero(long guest, long length) {
            try {
                flushData();
                out.zero(guest, length);
            } catch (IOException e) {
                fail(e);
            }
        }

        @Override
        public void data(long guest, long length, long host) {
            if (dataLength > 0 && dataGuest + dataLength == guest && dataHost + dataLength == host
                    && dataLength + length <= MAX_READ) {
                dataLength += length;
                return;
            }
            try {
                flushData();
            } catch (IOException e) {
                fail(e);
            }
            dataGuest = guest;
            dataHost = host;
            dataLength = length;
        }

        @Override
        public void compressed(long guest, int length, int skip, long host, int hostLength) {
            try {
                flushData();
                ByteBuffer in = out.input();
                int n = (int) Math.min(hostLength, header().fileSize() - host);
                readFully(file, in.limit(n), host);
                // Bytes past the end of the file read as zero, as qemu reads them.
                in.limit(hostLength);
                while (in.hasRemaining()) {
                    in.put((byte) 0);
                }
                out.compressed(guest, length, skip, in.flip(), host);
            } catch (IOException e) {
                fail(e);
            }
        }

        void flushData() throws IOException {
            long guest = dataGuest;
            long host = dataHost;
            long left = dataLength;
            dataLength = 0;
            while (left > 0) {
                int n = (int) Math.min(left, MAX_READ);
                buffer.clear().limit((int) Math.max(0, Math.min(n, header().fileSize() - host)));
                readFully(file, buffer, host);
                // Bytes past the end of the file read as zero, as qemu reads them.
                buffer.limit(n);
                while (buffer.hasRemaining()) {
                    buffer.put((byte) 0);
                }
                out.data(guest, buffer.flip(), false);
                guest += n;
                host += n;
                left -= n;
            }
        }

        private void fail(IOException e) {
            if (failure == null) {
                failure = e;
            }
        }

        void check() throws IOException {
            if (failure != null) {
                throw failure;
            }
        }
    }

    static ByteBuffer read(FileChannel file, long offset, int length) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(length);
        readFully(file, b, offset);
        return b.flip();
    }

    /** Fills {@code b} from {@code offset}; the caller made sure the range lies inside the file. */
    static void readFully(FileChannel file, ByteBuffer b, long offset) throws IOException {
        long at = offset;
        while (b.hasRemaining()) {
            int n = file.read(b, at);
            if (n < 0) {
                throw new IOException("the image file ended at " + at + ", before the " + b.limit()
                        + "-byte read at " + offset + " did");
            }
            at += n;
        }
    }
}
