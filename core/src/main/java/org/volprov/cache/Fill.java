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
import org.volprov.support.IoErrors;

/**
 * One download in progress: a temp file in the cache directory and the SHA-256 of what was
 * written so far. Writes append; {@link #position()} is exact, so a filler that lost its source
 * resumes there without anything being hashed twice. Used by one thread at a time.
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
    private final ArrayBlockingQueue<ByteBuffer> spareSlices = new ArrayBlockingQueue<>(HASH_SLICES);
    private int slicesMade;
    /** The last hash task; each runs after the one before, so the digest sees the bytes in order. */
    private CompletableFuture<Void> hashed = CompletableFuture.completedFuture(null);
    private long position;
    private String verified;
    private boolean closed;
    private boolean installed;
    private IOException writeFailure;

    Fill(Path tmp, FileChannel channel, long size, Cancellation cancellation, LongConsumer onBytes,
            Executor hashing) {
        this.tmp = tmp;
        this.channel = channel;
        this.size = size;
        this.cancellation = cancellation;
        this.onBytes = onBytes;
        this.hashing = hashing;
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
        if (writeFailure != null) {
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "an earlier write to " + tmp + " failed",
                    writeFailure);
        }
        cancellation.checkpoint();
        int n = src.remaining();
        if (position + n > size) {
            throw new ProvisioningException(ErrorCode.INSUFFICIENT_SPACE, "the source sent more than the "
                    + size + " bytes it announced");
        }
        // Hashed from a duplicate (or a copy of it) so the hash and the file see the same bytes.
        hash(src.duplicate());
        try {
            while (src.hasRemaining()) {
                channel.write(src);
            }
        } catch (IOException e) {
            // The fill cannot continue: its hash may hold bytes the file does not. A disk fault is
            // reported unchecked so that a filler retrying source IOExceptions cannot take it for
            // a broken connection and write on.
            writeFailure = e;
            IoErrors.translate(e, "cannot write cache file " + tmp.getFileName());
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "cannot write cache file " + tmp + ": " + e, e);
        }
        position += n;
        onBytes.accept(n);
    }

    private void hash(ByteBuffer data) {
        if (hashing == null || data.remaining() < HASH_INLINE_BELOW) {
            awaitHashed();
            digest.update(data);
            return;
        }
        while (data.hasRemaining()) {
            ByteBuffer slice = spareSlice();
            int len = Math.min(slice.capacity(), data.remaining());
            ByteBuffer part = data.duplicate();
            part.limit(part.position() + len);
            slice.clear();
            slice.put(part).flip();
            data.position(data.position() + len);
            hashed = hashed.thenRunAsync(() -> {
                digest.update(slice);
                spareSlices.add(slice);
            }, hashing);
        }
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
        if (writeFailure != null) {
            throw new IllegalStateException("a write of this fill failed", writeFailure);
        }
        try {
            if (position != size) {
                throw new ProvisioningException(ErrorCode.SOURCE_UNAVAILABLE, "the download ended after "
                        + position + " of " + size + " bytes");
            }
            try {
                channel.force(true);
                channel.close();
            } catch (IOException e) {
                IoErrors.translate(e, "cannot flush cache file");
                throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "cannot flush cache file: " + e, e);
            }
            awaitHashed();
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
