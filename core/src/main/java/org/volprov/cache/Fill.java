package org.volprov.cache;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.Optional;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.function.LongConsumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.volprov.Cancellation;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;
import org.volprov.internal.Writeback;
import org.volprov.support.IoErrors;

/**
 * One download in progress: a temp file in the cache directory and the SHA-256 of what was
 * written so far. Writes append; {@link #position()} counts every byte taken, so a filler that
 * lost its source resumes there without anything being hashed twice. With a hashing executor the
 * bytes are copied and both hashed and written to the file there (the caller's thread, the
 * download's, does neither), and the file is flushed in the background as it grows
 * ({@link Writeback}), so that {@link #finish}'s fsync finds little left. Used by one thread at a
 * time.
 */
final class Fill implements CacheSink, AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(Fill.class);
    static final int HASH_SLICE = 1 << 20;
    static final int HASH_SLICES = 4;
    /** Writes smaller than this are hashed in place: a hand-over would cost more than it saves. */
    private static final int HASH_INLINE_BELOW = 64 * 1024;

    final Path tmp;
    private final FileChannel channel;
    final long size;
    private final Cancellation cancellation;
    private final LongConsumer onBytes;
    private final MessageDigest digest = CacheFiles.sha256();
    private final Executor hashing;
    /** Flushes the file in the background while it is written, on the hashing executor; null without one. */
    private final Writeback writeback;
    private final ArrayBlockingQueue<ByteBuffer> spareSlices = new ArrayBlockingQueue<>(HASH_SLICES);
    private int slicesMade;
    /** The last hash task; each runs after the one before, so the digest sees the bytes in order. */
    private CompletableFuture<Void> hashed = CompletableFuture.completedFuture(null);
    private long position;
    private String verified;
    private boolean closed;
    private boolean installed;
    /** The first failed write; set by the hashing executor's task or the writing thread. */
    private volatile IOException writeFailure;
    private boolean failureReported;

    Fill(Path tmp, FileChannel channel, long size, Cancellation cancellation, LongConsumer onBytes,
            Executor hashing) {
        this.tmp = tmp;
        this.channel = channel;
        this.size = size;
        this.cancellation = cancellation;
        this.onBytes = onBytes;
        this.hashing = hashing;
        this.writeback = hashing == null ? null : new Writeback(channel, hashing);
    }

    @Override
    public long position() {
        return position;
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public void write(ByteBuffer src) throws IOException {
        if (closed || verified != null) {
            throw new IllegalStateException("the fill is finished");
        }
        checkWritten();
        cancellation.checkpoint();
        int n = src.remaining();
        if (position + n > size) {
            throw new ProvisioningException(ErrorCode.INSUFFICIENT_SPACE, "the source sent more than the "
                    + size + " bytes it announced");
        }
        if (hashing == null || n < HASH_INLINE_BELOW) {
            awaitHashed();
            checkWritten();
            digest.update(src.duplicate());
            try {
                writeFully(src, position);
            } catch (IOException e) {
                throw writeFailed(e);
            }
        } else {
            handOver(src, position);
        }
        position += n;
        onBytes.accept(n);
    }

    /**
     * Copies {@code data} into slices, each hashed and written at its offset by a task on the
     * hashing executor, so that the calling thread (the download's) does neither; the tasks run one
     * after the other, so the digest and the file see the bytes in order. A failed write is kept
     * and thrown by the next {@link #write} or by {@link #finish}; the tasks after it do nothing.
     */
    private void handOver(ByteBuffer data, long at) {
        while (data.hasRemaining()) {
            ByteBuffer slice = spareSlice();
            int len = Math.min(slice.capacity(), data.remaining());
            ByteBuffer part = data.duplicate();
            part.limit(part.position() + len);
            slice.clear();
            slice.put(part).flip();
            data.position(data.position() + len);
            long offset = at;
            at += len;
            hashed = hashed.thenRunAsync(() -> {
                try {
                    if (writeFailure == null) {
                        digest.update(slice.duplicate());
                        writeFully(slice, offset);
                    }
                } catch (IOException e) {
                    writeFailure = e;
                } finally {
                    spareSlices.add(slice);
                }
            }, hashing);
        }
    }

    private void writeFully(ByteBuffer src, long at) throws IOException {
        int n = src.remaining();
        while (src.hasRemaining()) {
            at += channel.write(src, at);
        }
        if (writeback != null) {
            writeback.wrote(n);
        }
    }

    /**
     * Throws the failure of an earlier write: translated the first time it is thrown, after that
     * as a write that failed before. Once every handed-over write ended, it has seen them all.
     */
    private void checkWritten() {
        IOException failed = writeFailure;
        if (failed != null) {
            throw failureReported ? new ProvisioningException(ErrorCode.BACKEND_FAILURE, "an earlier write to " + tmp
                    + " failed", failed) : writeFailed(failed);
        }
    }

    /**
     * The fill cannot continue: its hash may hold bytes the file does not. A disk fault is reported
     * unchecked so that a filler retrying source IOExceptions cannot take it for a broken connection
     * and write on.
     */
    private ProvisioningException writeFailed(IOException e) {
        writeFailure = e;
        failureReported = true;
        IoErrors.translate(e, "cannot write cache file " + tmp.getFileName());
        return new ProvisioningException(ErrorCode.BACKEND_FAILURE, "cannot write cache file " + tmp + ": " + e, e);
    }

    /** A free slice: a new one while fewer than {@link #HASH_SLICES} exist, else the next one hashed. */
    private ByteBuffer spareSlice() {
        ByteBuffer b = spareSlices.poll();
        if (b != null) {
            return b;
        }
        if (slicesMade < HASH_SLICES) {
            slicesMade++;
            return ByteBuffer.allocateDirect(HASH_SLICE);
        }
        while (true) {
            try {
                b = spareSlices.poll(100, TimeUnit.MILLISECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new ProvisioningException(ErrorCode.INTERRUPTED, "interrupted while hashing " + tmp, e);
            }
            if (b != null) {
                return b;
            }
            if (hashed.isCompletedExceptionally()) {
                awaitHashed(); // throws the failure
            }
        }
    }

    /** Waits for every queued hash task; afterwards the digest holds all bytes written. */
    private void awaitHashed() {
        try {
            hashed.join();
        } catch (CompletionException | CancellationException e) {
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "hashing " + tmp + " failed: "
                    + e.getCause(), e.getCause() == null ? e : e.getCause());
        }
    }

    /**
     * Finishes the fill: checks the size, fsyncs the file and compares its digest with
     * {@code expected} when there is one. On any failure the temp file is deleted.
     *
     * @return the digest, lower-case hex
     * @throws ProvisioningException {@code CHECKSUM_MISMATCH}, {@code SOURCE_UNAVAILABLE} when
     *     fewer than {@link #size()} bytes were written, or {@code INSUFFICIENT_SPACE}
     */
    public String finish(Optional<String> expected) {
        if (failureReported) {
            throw new IllegalStateException("a write of this fill failed", writeFailure);
        }
        try {
            if (position != size) {
                throw new ProvisioningException(ErrorCode.SOURCE_UNAVAILABLE, "the download ended after "
                        + position + " of " + size + " bytes");
            }
            awaitHashed();
            checkWritten();
            try {
                if (writeback != null) {
                    writeback.await();
                }
                channel.force(true);
                channel.close();
            } catch (IOException e) {
                IoErrors.translate(e, "cannot flush cache file");
                throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "cannot flush cache file: " + e, e);
            }
            String actual = CacheFiles.HEX.formatHex(digest.digest());
            if (expected.isPresent() && !expected.get().equals(actual)) {
                throw new ProvisioningException(ErrorCode.CHECKSUM_MISMATCH, "the downloaded bytes hash to "
                        + actual + ", the published SHA-256 is " + expected.get());
            }
            verified = actual;
            return actual;
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    /** Whether {@link CacheFiles#install} moved this fill into place (rather than keeping an existing file). */
    boolean installed() {
        return installed;
    }

    void markInstalled() {
        installed = true;
    }

    String verifiedDigest() {
        if (verified == null) {
            throw new IllegalStateException("finish() the fill before installing it");
        }
        return verified;
    }

    /** Deletes the temp file unless it was installed; idempotent. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        // No handed-over write may reach the file after this returns.
        hashed.handle((ok, failure) -> null).join();
        if (writeback != null) {
            writeback.awaitQuietly();
        }
        try {
            channel.close();
        } catch (IOException e) {
            LOG.debug("closing {}", tmp, e);
        }
        if (!installed) {
            CacheFiles.deleteQuietly(tmp);
        }
    }
}
