package org.volprov.internal.qcow2;

import java.nio.ByteBuffer;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Executor;

/**
 * Inflates compressed clusters on an executor. The caller bounds how many are in flight (see
 * {@link Output}); each task borrows a codec and an output cluster (direct buffers, so that neither
 * the read nor the write needs a copy) from small pools, so memory is one cluster and one input per
 * task in flight plus one codec per thread that ran one. Without an executor the
 * clusters are inflated on the calling thread. Thread-safe; {@link #close()} frees the codecs.
 */
final class Decompression implements AutoCloseable {
    private final Qcow2Header.Compression compression;
    private final int clusterBits;
    private final Executor executor;
    private final ConcurrentLinkedQueue<Codec> codecs = new ConcurrentLinkedQueue<>();
    private final ConcurrentLinkedQueue<ByteBuffer> clusters = new ConcurrentLinkedQueue<>();
    private final ConcurrentLinkedQueue<ByteBuffer> inputs = new ConcurrentLinkedQueue<>();
    private volatile boolean closed;

    /** @param executor where clusters are inflated; null for the calling thread */
    Decompression(Qcow2Header header, Executor executor) {
        this.compression = header.compression();
        this.clusterBits = header.clusterBits();
        this.executor = executor;
    }

    /**
     * A direct buffer for compressed data (room for the longest a descriptor can give, two
     * clusters), cleared; it goes back to the pool when the cluster read into it is inflated.
     */
    ByteBuffer input() {
        ByteBuffer b = inputs.poll();
        return (b != null ? b : ByteBuffer.allocateDirect(2 << clusterBits)).clear();
    }

    /**
     * Inflates the remaining bytes of {@code in}, the compressed data at {@code host}, into a
     * cluster (a direct buffer, position 0, limit the cluster size). The future fails with the
     * codec's {@code UNSUPPORTED_IMAGE}; give its cluster back with {@link #recycle}.
     */
    CompletableFuture<ByteBuffer> submit(ByteBuffer in, long host) {
        if (executor == null) {
            try {
                return CompletableFuture.completedFuture(inflate(in, host));
            } catch (RuntimeException e) {
                return CompletableFuture.failedFuture(e);
            }
        }
        return CompletableFuture.supplyAsync(() -> inflate(in, host), executor);
    }

    private ByteBuffer inflate(ByteBuffer in, long host) {
        Codec codec = codecs.poll();
        if (codec == null) {
            codec = Codec.of(compression, clusterBits);
        }
        ByteBuffer out = clusters.poll();
        if (out == null) {
            out = ByteBuffer.allocateDirect(1 << clusterBits);
        }
        out.clear();
        try {
            codec.inflate(in, out, host);
            return out.flip();
        } catch (RuntimeException e) {
            clusters.offer(out);
            throw e;
        } finally {
            if (in.isDirect()) {
                inputs.offer(in);
            }
            if (closed) {
                codec.close();
            } else {
                codecs.offer(codec);
            }
        }
    }

    void recycle(ByteBuffer cluster) {
        clusters.offer(cluster);
    }

    @Override
    public void close() {
        closed = true;
        for (Codec c; (c = codecs.poll()) != null; ) {
            c.close();
        }
        clusters.clear();
        inputs.clear();
    }
}
