package org.volprov.internal.qcow2;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.LongConsumer;
import org.volprov.Cancellation;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;

/**
 * Between a decoder and its {@link GuestSink}: coalesces zero runs, hands compressed clusters to
 * the {@link Decompression} pool and delivers everything in the order it was given (which a
 * {@code GUEST} sink needs; an {@code ANY} sink gets plain data at once). Bounded: at most
 * {@code window} clusters in flight and {@code maxQueuedBytes} of plain data held behind them;
 * past either, the caller waits for the oldest. Used by one thread.
 */
final class Output {
    /** The longest zero run handed to a sink at once; a sink writing zeros needs no huge buffer. */
    private static final long MAX_ZERO_RUN = 1L << 30;

    private final GuestSink sink;
    private final boolean ordered;
    private final Decompression decompression;
    private final int window;
    private final long maxQueuedBytes;
    private final LongConsumer progress;
    private final Cancellation cancellation;
    private final ArrayDeque<Item> queue = new ArrayDeque<>();
    private long queuedBytes;
    private int inFlight;
    private long zeroFrom = -1;
    private long zeroTo;
    private long delivered;

    private static final class Item {
        final long guest;
        final long length;
        final ByteBuffer data;
        final CompletableFuture<ByteBuffer> cluster;
        final int skip;

        Item(long guest, long length, ByteBuffer data, CompletableFuture<ByteBuffer> cluster, int skip) {
            this.guest = guest;
            this.length = length;
            this.data = data;
            this.cluster = cluster;
            this.skip = skip;
        }
    }

    Output(GuestSink sink, Decompression decompression, int window, long maxQueuedBytes, LongConsumer progress,
            Cancellation cancellation) {
        this.sink = sink;
        this.ordered = sink.order() == GuestSink.Order.GUEST;
        this.decompression = decompression;
        this.window = Math.max(1, window);
        this.maxQueuedBytes = maxQueuedBytes;
        this.progress = progress;
        this.cancellation = cancellation;
    }

    /** A buffer to read compressed data into, for {@link #compressed(long, int, int, ByteBuffer, long)}. */
    ByteBuffer input() {
        return decompression.input();
    }

    /** Guest bytes handed to the sink so far. */
    long delivered() {
        return delivered;
    }

    void zero(long guest, long length) throws IOException {
        if (length <= 0) {
            return;
        }
        if (zeroFrom >= 0 && zeroTo == guest && zeroTo - zeroFrom < MAX_ZERO_RUN) {
            zeroTo += length;
            return;
        }
        closeZeros();
        zeroFrom = guest;
        zeroTo = guest + length;
    }

    /** Plain bytes; {@code owned} when the buffer may be kept until it is written (else it is copied if it must wait). */
    void data(long guest, ByteBuffer bytes, boolean owned) throws IOException {
        if (!bytes.hasRemaining()) {
            return;
        }
        closeZeros();
        if (!ordered || queue.isEmpty()) {
            write(guest, bytes);
            return;
        }
        ByteBuffer keep = owned ? bytes : ByteBuffer.allocate(bytes.remaining()).put(bytes.duplicate()).flip();
        queue.add(new Item(guest, keep.remaining(), keep, null, 0));
        queuedBytes += keep.remaining();
        bound();
    }

    /**
     * Guest bytes {@code [guest, guest + length)} are bytes from {@code skip} of the cluster that the
     * remaining bytes of {@code in} inflate to.
     */
    void compressed(long guest, int length, int skip, ByteBuffer in, long host) throws IOException {
        compressed(guest, length, skip, decompression.submit(in, host));
    }

    /** As above, for a cluster already handed to the {@link Decompression} pool. */
    void compressed(long guest, int length, int skip, CompletableFuture<ByteBuffer> cluster) throws IOException {
        closeZeros();
        queue.add(new Item(guest, length, null, cluster, skip));
        inFlight++;
        drainReady();
        bound();
    }

    /** Delivers everything given so far. */
    void flush() throws IOException {
        closeZeros();
        while (!queue.isEmpty()) {
            deliverHead(true);
        }
    }

    /** Drops what was not delivered (the decode failed); idempotent. */
    void abort() {
        for (Item it; (it = queue.poll()) != null; ) {
            if (it.cluster != null) {
                it.cluster.cancel(false);
            }
        }
        queuedBytes = 0;
        inFlight = 0;
        zeroFrom = -1;
    }

    private void closeZeros() throws IOException {
        if (zeroFrom < 0) {
            return;
        }
        long from = zeroFrom;
        long to = zeroTo;
        zeroFrom = -1;
        if (ordered && !queue.isEmpty()) {
            queue.add(new Item(from, to - from, null, null, 0));
            return;
        }
        writeZeros(from, to - from);
    }

    private void bound() throws IOException {
        while (inFlight >= window || queuedBytes > maxQueuedBytes) {
            deliverHead(true);
        }
    }

    private void drainReady() throws IOException {
        while (!queue.isEmpty() && (queue.peek().cluster == null || queue.peek().cluster.isDone())) {
            deliverHead(false);
        }
    }

    private void deliverHead(boolean wait) throws IOException {
        Item it = queue.peek();
        if (it.cluster != null) {
            ByteBuffer cluster = await(it.cluster);
            queue.poll();
            inFlight--;
            try {
                write(it.guest, cluster.limit(it.skip + (int) it.length).position(it.skip));
            } finally {
                decompression.recycle(cluster);
            }
        } else {
            queue.poll();
            if (it.data != null) {
                queuedBytes -= it.length;
                write(it.guest, it.data);
            } else {
                writeZeros(it.guest, it.length);
            }
        }
        if (!wait) {
            return;
        }
        drainReady();
    }

    private void writeZeros(long guest, long length) throws IOException {
        cancellation.checkpoint();
        sink.zero(guest, length);
        delivered(length);
    }

    private void write(long guest, ByteBuffer bytes) throws IOException {
        cancellation.checkpoint();
        int n = bytes.remaining();
        sink.data(guest, bytes);
        delivered(n);
    }

    private void delivered(long n) {
        delivered += n;
        progress.accept(delivered);
    }

    private ByteBuffer await(CompletableFuture<ByteBuffer> f) {
        while (true) {
            cancellation.checkpoint();
            try {
                return f.get(200, TimeUnit.MILLISECONDS);
            } catch (TimeoutException e) {
                // look at the cancellation again
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new ProvisioningException(ErrorCode.INTERRUPTED, "interrupted while decoding the image", e);
            } catch (CancellationException e) {
                throw new ProvisioningException(ErrorCode.CANCELLED, "the decode was cancelled", e);
            } catch (ExecutionException e) {
                if (e.getCause() instanceof ProvisioningException pe) {
                    throw new ProvisioningException(pe.code(), pe.getMessage(), pe);
                }
                throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "inflating a cluster failed: " + e.getCause(),
                        e.getCause());
            }
        }
    }
}
