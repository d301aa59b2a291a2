package org.volprov.internal.qcow2;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.function.LongConsumer;
import org.volprov.Cancellation;

/**
 * A push decoder: fed an image's bytes in file order (as they arrive from the network), it decodes
 * while they pass, and finishes from the complete file (the cache entry) what it could not.
 *
 * <ul>
 *   <li>The header is judged from the first bytes (see {@link Qcow2Header#parse}); a refusal is
 *       thrown from {@link #feed}, before anything is written.</li>
 *   <li>The active L1 table and each L2 table are kept while they pass; once the L2 entry that maps
 *       a cluster is known, the cluster's bytes are delivered as they arrive (compressed ones are
 *       inflated on the executor, a bounded window at a time).</li>
 *   <li>A cluster whose bytes passed before the table that maps it (an image edited after it was
 *       made) is remembered as a guest range and decoded in {@link #finish} from the finished
 *       file; so is a whole region whose table passed before the L1 table.</li>
 *   <li>A {@code GUEST} sink is fed live only while the file's order is the guest order (what
 *       {@code qemu-img convert} and image builds write: header, tables, then data); from the first
 *       cluster that breaks it, the rest of the disk is decoded in guest order in {@link #finish}.</li>
 * </ul>
 *
 * <p>Memory is bounded whatever the image's size, by {@link Limits}: the L1 table and the tables
 * kept for a {@code GUEST} sink, the clusters whose table is known and whose bytes are still to
 * come, the deferred ranges and the compressed data being gathered. Past a limit, work moves to
 * {@link #finish}; the result is the same. Nothing is ever delivered past the virtual size.
 *
 * <p>Not thread-safe: one thread feeds it, and that thread calls the sink.
 */
public final class Qcow2Stream implements AutoCloseable {

    /**
     * Caps on the decoder's memory.
     *
     * @param maxTableBytes the L1 table, plus (for a {@code GUEST} sink) the L2 tables kept until the
     *     disk is delivered past them
     * @param maxPendingClusters clusters mapped by a table that passed, whose bytes are yet to come
     * @param maxDeferredRanges guest ranges left for {@link #finish}; past it, whole regions are
     * @param maxGatheredBytes compressed data gathered at once
     */
    public record Limits(long maxTableBytes, int maxPendingClusters, int maxDeferredRanges, long maxGatheredBytes) {
        public Limits {
            if (maxTableBytes < 0 || maxPendingClusters < 0 || maxDeferredRanges < 0 || maxGatheredBytes < 0) {
                throw new IllegalArgumentException("limits must not be negative");
            }
        }

        /** About 64 MiB at most, whatever the image; a few MiB for the usual one. */
        public static Limits defaults() {
            return new Limits(32L << 20, 1 << 19, 1 << 16, 16L << 20);
        }
    }

    /**
     * What a decode did.
     *
     * @param liveBytes guest bytes delivered while the image passed
     * @param finishBytes guest bytes delivered by {@link #finish} from the file
     * @param deferredRanges guest ranges left for the file
     * @param deferredRegions regions (L1 entries) left for the file whole
     */
    public record Stats(long liveBytes, long finishBytes, int deferredRanges, int deferredRegions) {
    }

    /** Bits for a region (L1 index) in a packed sort key: qemu allows at most 2^22 L1 entries. */
    private static final int REGION_BITS = 22;
    private static final int DATA = 0;
    private static final int COMPRESSED = 1;

    private final long fileSize;
    private final GuestSink sink;
    private final boolean guestOrder;
    private final Executor executor;
    private final int parallelism;
    private final LongConsumer progress;
    private final Cancellation cancellation;
    private final Limits limits;

    private long pos;
    private ByteBuffer head = ByteBuffer.allocate(4096);
    private Qcow2Header header;
    private Mapping mapping;
    private Decompression decompression;
    private Output out;
    /** Nothing more is decoded live: everything left goes to {@link #finish}. */
    private boolean liveOff;
    private ByteBuffer l1;
    private long[] l2Offsets;
    private long[] tableOffsets;
    private int[] tableRegions;
    private int nextTable;
    private ByteBuffer table;
    private final Pending pending;
    private final List<Active> active = new ArrayList<>();
    /** Bytes gathered or held, against {@link Limits#maxGatheredBytes()}. */
    private long heldBytes;
    private final TreeMap<Long, Held> held = new TreeMap<>();
    private long[] deferFrom = new long[16];
    private long[] deferTo = new long[16];
    private int deferCount;
    private final BitSet deferredRegions = new BitSet();
    // GUEST sinks only:
    private long cursor;
    private long firstDeferred = Long.MAX_VALUE;
    private final Map<Integer, ByteBuffer> kept = new HashMap<>();
    private long keptBytes;
    /** Kept tables of regions below this one are dropped: the cursor has passed them. */
    private int keptFrom;
    private long liveBytes = -1;
    private boolean finished;

    /**
     * @param fileSize the image's size: exactly this many bytes will be fed
     * @param sink where the disk goes
     * @param executor where compressed clusters are inflated; null for the feeding thread
     * @param parallelism threads of {@code executor} that may inflate at once
     * @param progress receives the guest bytes delivered so far
     */
    public Qcow2Stream(long fileSize, GuestSink sink, Executor executor, int parallelism, LongConsumer progress,
            Cancellation cancellation, Limits limits) {
        if (fileSize < 0) {
            throw new IllegalArgumentException("fileSize must not be negative");
        }
        this.fileSize = fileSize;
        this.sink = Objects.requireNonNull(sink, "sink");
        this.guestOrder = sink.order() == GuestSink.Order.GUEST;
        this.executor = executor;
        this.parallelism = Math.max(1, parallelism);
        this.progress = Objects.requireNonNull(progress, "progress");
        this.cancellation = Objects.requireNonNull(cancellation, "cancellation");
        this.limits = Objects.requireNonNull(limits, "limits");
        this.pending = new Pending(limits.maxPendingClusters());
    }

    /** The header, once the bytes fed so far decide it. */
    public Optional<Qcow2Header> header() {
        return Optional.ofNullable(header);
    }

    /**
     * Takes the next bytes of the image (all remaining bytes of {@code bytes}, consumed).
     *
     * @throws org.volprov.ProvisioningException {@code UNSUPPORTED_IMAGE} as soon as the bytes so far
     *     show the image is refused (its header, its L1 table or an L2 table), or the cancellation's code
     * @throws IOException when the sink fails
     */
    public void feed(ByteBuffer bytes) throws IOException {
        if (finished) {
            throw new IllegalStateException("the stream is finished");
        }
        cancellation.checkpoint();
        long start = pos;
        long end = start + bytes.remaining();
        if (end > fileSize) {
            throw new IllegalArgumentException("more bytes than the image's " + fileSize);
        }
        ByteBuffer chunk = bytes.slice();
        bytes.position(bytes.limit());
        if (header == null) {
            collectHeader(chunk);
        }
        if (header != null && !liveOff) {
            collectL1(chunk, start, end);
            collectTables(chunk, start, end);
            deliver(chunk, start, end);
        }
        pos = end;
    }

    /**
     * Decodes what could not be decoded live, from the complete image in {@code file} (which holds
     * the bytes that were fed), and delivers everything still held.
     *
     * @throws org.volprov.ProvisioningException {@code UNSUPPORTED_IMAGE} when the image is refused
     * @throws IllegalStateException when fewer bytes than the image's size were fed
     */
    public void finish(FileChannel file) throws IOException {
        if (pos != fileSize) {
            throw new IllegalStateException("fed " + pos + " of the image's " + fileSize + " bytes");
        }
        finished = true;
        if (header == null) {
            head.flip();
            Qcow2Header.parse(head, fileSize).orElseThrow(() -> Refusal.corrupt("the header cannot be read"));
            throw new IllegalStateException("the header was complete but not parsed");
        }
        out.flush();
        liveBytes = out.delivered();
        Qcow2Image image = Qcow2Image.open(file);
        if (image.header().virtualSize() != header.virtualSize()) {
            throw new IllegalStateException("the file is not the image that was fed");
        }
        long virtualSize = header.virtualSize();
        if (guestOrder) {
            image.decode(cursor, virtualSize, out, cancellation);
        } else if (liveOff) {
            image.decode(0, virtualSize, out, cancellation);
        } else {
            for (long[] r : deferred()) {
                image.decode(r[0], r[1], out, cancellation);
            }
        }
        out.flush();
    }

    /** What the decode did; complete after {@link #finish}. */
    public Stats stats() {
        long total = out == null ? 0 : out.delivered();
        long live = liveBytes < 0 ? total : liveBytes;
        return new Stats(live, total - live, deferCount, deferredRegions.cardinality());
    }

    @Override
    public void close() {
        if (out != null) {
            out.abort();
        }
        if (decompression != null) {
            decompression.close();
        }
    }

    // ---- the header ----

    private void collectHeader(ByteBuffer chunk) {
        ByteBuffer b = chunk.duplicate();
        while (b.hasRemaining() && header == null) {
            if (!head.hasRemaining()) {
                if (head.capacity() >= 1 << Qcow2Header.MAX_CLUSTER_BITS) {
                    throw Refusal.corrupt("the header cannot be read");
                }
                head = ByteBuffer.allocate(head.capacity() * 4).put(head.flip());
            }
            int n = Math.min(b.remaining(), head.remaining());
            head.put(b.slice(b.position(), n));
            b.position(b.position() + n);
            header = Qcow2Header.parse(head.duplicate().flip(), fileSize).orElse(null);
        }
        if (header != null) {
            started();
        }
    }

    private void started() {
        head = null;
        mapping = new Mapping(header);
        decompression = new Decompression(header, executor);
        out = Qcow2Image.output(header, sink, decompression, parallelism, progress, cancellation);
        long l1Bytes = header.l1Entries() * 8L;
        if (l1Bytes > limits.maxTableBytes() / 2 || fileSize >>> header.clusterBits() >= 1L << (63 - REGION_BITS)) {
            liveOff = true; // the whole disk is decoded from the file
        } else if (l1Bytes == 0) {
            l2Offsets = new long[0];
            tables(new long[0]);
        } else {
            l1 = ByteBuffer.allocate((int) l1Bytes);
        }
    }

    // ---- the L1 table ----

    private void collectL1(ByteBuffer chunk, long start, long end) throws IOException {
        if (l1 == null) {
            return;
        }
        long from = header.l1Offset();
        if (!copy(chunk, start, end, from, l1)) {
            return;
        }
        long[] offsets = Qcow2Image.l2Offsets(mapping, l1.flip());
        l1 = null;
        l2Offsets = offsets;
        tables(offsets);
        for (int i = 0; i < offsets.length; i++) {
            if (offsets[i] == 0 && !guestOrder) {
                out.zero(mapping.regionStart(i), mapping.regionLength(i));
            }
        }
        if (guestOrder) {
            advance();
        }
    }

    /** Sorts the regions' tables by offset; a table already passed leaves its region to {@link #finish}. */
    private void tables(long[] offsets) {
        long passed = header.l1Offset() + offsets.length * 8L;
        int bits = header.clusterBits();
        // Sorted as packed keys (table cluster, region): no boxing, whatever the L1 table's size.
        long[] keys = new long[offsets.length];
        int n = 0;
        for (int i = 0; i < offsets.length; i++) {
            if (offsets[i] == 0) {
                continue;
            }
            if (offsets[i] < passed) {
                deferRegion(i);
            } else {
                keys[n++] = ((offsets[i] >>> bits) << REGION_BITS) | i;
            }
        }
        Arrays.sort(keys, 0, n);
        tableOffsets = new long[n];
        tableRegions = new int[n];
        for (int k = 0; k < n; k++) {
            tableRegions[k] = (int) (keys[k] & ((1L << REGION_BITS) - 1));
            tableOffsets[k] = (keys[k] >>> REGION_BITS) << bits;
        }
    }

    // ---- the L2 tables ----

    private void collectTables(ByteBuffer chunk, long start, long end) throws IOException {
        if (tableOffsets == null) {
            return;
        }
        while (!liveOff && nextTable < tableOffsets.length && tableOffsets[nextTable] < end) {
            long at = tableOffsets[nextTable];
            if (table == null) {
                table = ByteBuffer.allocate(header.clusterSize());
            }
            if (!copy(chunk, start, end, at, table)) {
                return;
            }
            table.flip();
            long passed = at + header.clusterSize();
            for (; nextTable < tableOffsets.length && tableOffsets[nextTable] == at; nextTable++) {
                onTable(tableRegions[nextTable], table, passed);
            }
            if (liveOff) {
                return;
            }
            table.clear();
            if (guestOrder) {
                advance();
            }
        }
    }

    private void onTable(int region, ByteBuffer t, long passed) throws IOException {
        if (liveOff) {
            return;
        }
        if (guestOrder) {
            if (keptBytes + t.capacity() > limits.maxTableBytes() / 2) {
                stopLive();
                return;
            }
            ByteBuffer copy = ByteBuffer.allocate(t.capacity()).put(t.duplicate()).flip();
            kept.put(region, copy);
            keptBytes += copy.capacity();
        }
        try {
            tableRuns(region, t, passed);
        } catch (SinkFailure e) {
            throw (IOException) e.getCause();
        }
    }

    private void tableRuns(int region, ByteBuffer t, long passed) {
        mapping.runs(region, t, 0, Long.MAX_VALUE, new Mapping.Runs() {
            @Override
            public void zero(long guest, long length) {
                if (!guestOrder) {
                    try {
                        out.zero(guest, length);
                    } catch (IOException e) {
                        throw new SinkFailure(e);
                    }
                }
            }

            @Override
            public void data(long guest, long length, long host) {
                if (host < passed || host + length > fileSize || !pending.add(DATA, host, host + length, guest,
                        (int) length, 0, (int) length)) {
                    defer(guest, length);
                }
            }

            @Override
            public void compressed(long guest, int length, int skip, long host, int hostLength) {
                long hostEnd = Math.min(host + hostLength, fileSize);
                if (host < passed || !pending.add(COMPRESSED, host, hostEnd, guest, length, skip, hostLength)) {
                    defer(guest, length);
                }
            }
        });
    }

    // ---- the clusters ----

    private static final class Active {
        final int kind;
        final long host;
        final long hostEnd;
        final long guest;
        final int length;
        final int skip;
        /** The bytes gathered: compressed data, or (for a GUEST sink) data that came before its turn. */
        byte[] gathered;
        /** For a GUEST sink: data delivered as it arrives, because it came at its turn. */
        boolean streaming;

        Active(int kind, long host, long hostEnd, long guest, int length, int skip, byte[] gathered) {
            this.kind = kind;
            this.host = host;
            this.hostEnd = hostEnd;
            this.guest = guest;
            this.length = length;
            this.skip = skip;
            this.gathered = gathered;
        }
    }

    /** For a GUEST sink: a cluster that arrived before its turn, held until the cursor reaches it. */
    private record Held(int length, ByteBuffer data, int skip, CompletableFuture<ByteBuffer> cluster, long bytes) {
    }

    private void deliver(ByteBuffer chunk, long start, long end) throws IOException {
        while (!liveOff && !pending.isEmpty() && pending.minHost() < end) {
            int k = pending.kind[0];
            long host = pending.host[0];
            long hostEnd = pending.hostEnd[0];
            long guest = pending.guest[0];
            int length = pending.length[0];
            int skip = pending.skip[0];
            int hostLength = pending.hostLength[0];
            pending.pop();
            byte[] gathered = null;
            if (k == COMPRESSED) {
                gathered = gather(hostLength);
                if (gathered == null) {
                    defer(guest, length);
                    continue;
                }
            }
            active.add(new Active(k, host, hostEnd, guest, length, skip, gathered));
        }
        for (int i = 0; i < active.size() && !liveOff; ) {
            Active a = active.get(i);
            long from = Math.max(start, a.host);
            long to = Math.min(end, a.hostEnd);
            if (from < to) {
                ByteBuffer slice = chunk.slice((int) (from - start), (int) (to - from));
                if (a.kind == DATA && guestOrder && !a.streaming && a.gathered == null) {
                    // Its first bytes: at its turn they stream through, else they wait for it.
                    a.streaming = a.guest + (from - a.host) == cursor;
                    if (!a.streaming && (a.gathered = gather(a.length)) == null) {
                        stopLive();
                        return;
                    }
                }
                if (a.kind == DATA && a.gathered == null) {
                    if (guestOrder) {
                        cursor += slice.remaining();
                    }
                    out.data(a.guest + (from - a.host), slice, false);
                } else {
                    slice.get(a.gathered, (int) (from - a.host), (int) (to - from));
                }
            }
            if (to < a.hostEnd) {
                i++;
                continue;
            }
            active.remove(i);
            completed(a);
        }
    }

    /** A buffer for gathering, within the limit; null past it. */
    private byte[] gather(int bytes) {
        if (heldBytes + bytes > limits.maxGatheredBytes()) {
            return null;
        }
        heldBytes += bytes;
        return new byte[bytes];
    }

    private void completed(Active a) throws IOException {
        if (!guestOrder) {
            if (a.kind == COMPRESSED) {
                heldBytes -= a.gathered.length;
                out.compressed(a.guest, a.length, a.skip, ByteBuffer.wrap(a.gathered), a.host);
            }
            return;
        }
        if (a.kind == COMPRESSED) {
            if (a.guest == cursor && held.isEmpty()) {
                heldBytes -= a.gathered.length;
                cursor += a.length;
                out.compressed(a.guest, a.length, a.skip, ByteBuffer.wrap(a.gathered), a.host);
            } else {
                // Inflated now, delivered at its turn; its bytes and its cluster stay counted until then.
                heldBytes += header.clusterSize();
                held.put(a.guest, new Held(a.length, null, a.skip,
                        decompression.submit(ByteBuffer.wrap(a.gathered), a.host),
                        a.gathered.length + (long) header.clusterSize()));
            }
        } else if (a.gathered != null) {
            held.put(a.guest, new Held(a.length, ByteBuffer.wrap(a.gathered), 0, null, a.gathered.length));
        }
        advance();
    }

    /**
     * For a {@code GUEST} sink: delivers the zero runs from the cursor on, up to the next cluster
     * whose bytes are still to come; stops live delivery at a cluster left for {@link #finish}.
     */
    private void advance() throws IOException {
        long virtualSize = header.virtualSize();
        int bits = header.clusterBits() + header.l2Bits();
        while (!liveOff && cursor < virtualSize && l2Offsets != null) {
            Map.Entry<Long, Held> next = held.firstEntry();
            if (next != null && next.getKey() == cursor) {
                Held h = held.pollFirstEntry().getValue();
                heldBytes -= h.bytes();
                cursor += h.length();
                if (h.data() != null) {
                    out.data(next.getKey(), h.data(), true);
                } else {
                    out.compressed(next.getKey(), h.length(), h.skip(), h.cluster());
                }
                continue;
            }
            if (cursor >= firstDeferred) {
                stopLive();
                return;
            }
            int region = (int) (cursor >>> bits);
            for (; keptFrom < region; keptFrom++) {
                ByteBuffer passed = kept.remove(keptFrom);
                keptBytes -= passed == null ? 0 : passed.capacity();
            }
            long regionEnd = mapping.regionStart(region) + mapping.regionLength(region);
            if (l2Offsets[region] == 0) {
                out.zero(cursor, Math.min(regionEnd, firstDeferred) - cursor);
                cursor = Math.min(regionEnd, firstDeferred);
                continue;
            }
            ByteBuffer t = kept.get(region);
            if (t == null) {
                return; // its table is still to come
            }
            long clusterEnd = Math.min(((cursor >>> header.clusterBits()) + 1) << header.clusterBits(), regionEnd);
            long[] zeroTo = {cursor};
            boolean[] blocked = {false};
            mapping.runs(region, t, cursor, clusterEnd, new Mapping.Runs() {
                @Override
                public void zero(long guest, long length) {
                    if (!blocked[0] && guest == zeroTo[0]) {
                        zeroTo[0] = guest + length;
                    }
                }

                @Override
                public void data(long guest, long length, long host) {
                    blocked[0] = true;
                }

                @Override
                public void compressed(long guest, int length, int skip, long host, int hostLength) {
                    blocked[0] = true;
                }
            });
            long to = Math.min(zeroTo[0], firstDeferred);
            if (to > cursor) {
                out.zero(cursor, to - cursor);
                cursor = to;
            }
            if (cursor < clusterEnd) {
                return; // a cluster whose bytes are still to come
            }
        }
    }

    /** For a {@code GUEST} sink: the rest of the disk is decoded from the file, in guest order. */
    private void stopLive() {
        liveOff = true;
        pending.clear();
        active.clear();
        kept.clear();
        keptBytes = 0;
        for (Held h : held.values()) {
            if (h.cluster() != null) {
                h.cluster().cancel(false);
            }
        }
        held.clear();
        heldBytes = 0;
        table = null;
    }

    // ---- what is left for finish ----

    private void defer(long guest, long length) {
        if (guestOrder) {
            firstDeferred = Math.min(firstDeferred, guest);
            return;
        }
        if (deferCount > 0 && deferTo[deferCount - 1] == guest) {
            deferTo[deferCount - 1] += length;
            return;
        }
        if (deferCount == deferFrom.length) {
            if (deferCount >= limits.maxDeferredRanges()) {
                deferRegion((int) (guest >>> (header.clusterBits() + header.l2Bits())));
                return;
            }
            deferFrom = Arrays.copyOf(deferFrom, Math.min(deferCount * 2, Math.max(limits.maxDeferredRanges(), 1)));
            deferTo = Arrays.copyOf(deferTo, deferFrom.length);
        }
        deferFrom[deferCount] = guest;
        deferTo[deferCount] = guest + length;
        deferCount++;
    }

    private void deferRegion(int region) {
        deferredRegions.set(region);
        if (guestOrder) {
            firstDeferred = Math.min(firstDeferred, mapping.regionStart(region));
        }
    }

    /** The deferred ranges and regions, sorted and merged. */
    private List<long[]> deferred() {
        List<long[]> ranges = new ArrayList<>();
        for (int i = 0; i < deferCount; i++) {
            ranges.add(new long[] {deferFrom[i], deferTo[i]});
        }
        for (int r = deferredRegions.nextSetBit(0); r >= 0; r = deferredRegions.nextSetBit(r + 1)) {
            ranges.add(new long[] {mapping.regionStart(r), mapping.regionStart(r) + mapping.regionLength(r)});
        }
        ranges.sort((x, y) -> Long.compare(x[0], y[0]));
        List<long[]> merged = new ArrayList<>();
        for (long[] r : ranges) {
            long[] last = merged.isEmpty() ? null : merged.get(merged.size() - 1);
            if (last != null && r[0] <= last[1]) {
                last[1] = Math.max(last[1], r[1]);
            } else {
                merged.add(r);
            }
        }
        return merged;
    }

    /**
     * Copies the part of the chunk {@code [start, end)} that falls in the structure at
     * {@code from} of {@code into.capacity()} bytes; true when the structure is complete.
     */
    private static boolean copy(ByteBuffer chunk, long start, long end, long from, ByteBuffer into) {
        long to = from + into.capacity();
        long a = Math.max(start, from + into.position());
        long b = Math.min(end, to);
        if (a < b) {
            into.put(chunk.slice((int) (a - start), (int) (b - a)));
        }
        return !into.hasRemaining();
    }

    /**
     * The clusters whose table passed and whose bytes are to come: a binary min-heap on the host
     * offset, in parallel arrays, grown up to its cap.
     */
    private static final class Pending {
        final int cap;
        int size;
        int[] kind = new int[16];
        long[] host = new long[16];
        long[] hostEnd = new long[16];
        long[] guest = new long[16];
        int[] length = new int[16];
        int[] skip = new int[16];
        int[] hostLength = new int[16];

        Pending(int cap) {
            this.cap = cap;
        }

        boolean isEmpty() {
            return size == 0;
        }

        long minHost() {
            return host[0];
        }

        void clear() {
            size = 0;
        }

        boolean add(int k, long h, long he, long g, int len, int sk, int hl) {
            if (size >= cap) {
                return false;
            }
            if (size == host.length) {
                int n = (int) Math.min((long) size * 2, cap);
                kind = Arrays.copyOf(kind, n);
                host = Arrays.copyOf(host, n);
                hostEnd = Arrays.copyOf(hostEnd, n);
                guest = Arrays.copyOf(guest, n);
                length = Arrays.copyOf(length, n);
                skip = Arrays.copyOf(skip, n);
                hostLength = Arrays.copyOf(hostLength, n);
            }
            int i = size++;
            set(i, k, h, he, g, len, sk, hl);
            while (i > 0) {
                int parent = (i - 1) >>> 1;
                if (host[parent] <= host[i]) {
                    break;
                }
                swap(i, parent);
                i = parent;
            }
            return true;
        }

        void pop() {
            size--;
            if (size == 0) {
                return;
            }
            set(0, kind[size], host[size], hostEnd[size], guest[size], length[size], skip[size], hostLength[size]);
            for (int i = 0; ; ) {
                int l = 2 * i + 1;
                int r = l + 1;
                int m = i;
                if (l < size && host[l] < host[m]) {
                    m = l;
                }
                if (r < size && host[r] < host[m]) {
                    m = r;
                }
                if (m == i) {
                    return;
                }
                swap(i, m);
                i = m;
            }
        }

        private void set(int i, int k, long h, long he, long g, int len, int sk, int hl) {
            kind[i] = k;
            host[i] = h;
            hostEnd[i] = he;
            guest[i] = g;
            length[i] = len;
            skip[i] = sk;
            hostLength[i] = hl;
        }

        private void swap(int a, int b) {
            int k = kind[a];
            long h = host[a];
            long he = hostEnd[a];
            long g = guest[a];
            int len = length[a];
            int sk = skip[a];
            int hl = hostLength[a];
            set(a, kind[b], host[b], hostEnd[b], guest[b], length[b], skip[b], hostLength[b]);
            set(b, k, h, he, g, len, sk, hl);
        }
    }

    /** Carries a sink's IOException out of a table visitor. */
    private static final class SinkFailure extends RuntimeException {
        private static final long serialVersionUID = 1L;

        SinkFailure(IOException cause) {
            super(cause);
        }
    }
}
