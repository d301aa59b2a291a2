package org.volprov.internal.qcow2;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Executor;

/**
 * Inflates compressed clusters on an executor. The caller bounds how many are in flight (see
 * {@link Output}); each task borrows a codec and an output cluster from small pools, so memory is
 * one cluster per task in flight plus one codec per thread that ran one. Without an executor the
 * clusters are inflated on the calling thread. Thread-safe; {@link #close()} frees the codecs.
 */
final class Decompression implements AutoCloseable {
    private final Qcow2Header.Compression compression;
    private final int clusterBits;
    private final Executor executor;
    private final ConcurrentLinkedQueue<Codec> codecs = new ConcurrentLinkedQueue<>();
    private final ConcurrentLinkedQueue<byte[]> clusters = new ConcurrentLinkedQueue<>();
    private volatile boolean closed;

    /** @param executor where clusters are inflated; null for the calling thread */
    Decompression(Qcow2Header header, Executor executor) {
        this.compression = header.compression();
        this.clusterBits = header.clusterBits();
        this.executor = executor;
    }

    /**
     * Inflates {@code in[0, inLength)}, the compressed data at {@code host}, into a cluster. The
     * future fails with the codec's {@code UNSUPPORTED_IMAGE}; give its cluster back with
     * {@link #recycle}.
     */
    CompletableFuture<byte[]> submit(byte[] in, int inLength, long host) {
        if (executor == null) {
            try {
                return CompletableFuture.completedFuture(inflate(in, inLength, host));
            } catch (RuntimeException e) {
                return CompletableFuture.failedFuture(e);
            }
        }
        return CompletableFuture.supplyAsync(() -> inflate(in, inLength, host), executor);
    }

    private byte[] inflate(byte[] in, int inLength, long host) {
        Codec codec = codecs.poll();
        if (codec == null) {
            codec = Codec.of(compression, clusterBits);
        }
        byte[] out = clusters.poll();
        if (out == null) {
            out = new byte[1 << clusterBits];
        }
        try {
            codec.inflate(in, inLength, out, host);
            return out;
        } catch (RuntimeException e) {
            clusters.offer(out);
            throw e;
        } finally {
            if (closed) {
                codec.close();
            } else {
                codecs.offer(codec);
            }
        }
    }

    void recycle(byte[] cluster) {
        clusters.offer(cluster);
    }

    @Override
    public void close() {
        closed = true;
        for (Codec c; (c = codecs.poll()) != null; ) {
            c.close();
        }
        clusters.clear();
    }
}
