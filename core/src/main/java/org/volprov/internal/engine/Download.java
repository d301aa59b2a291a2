package org.volprov.internal.engine;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.time.Clock;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.Objects;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.LongConsumer;
import org.volprov.Cancellation;
import org.volprov.ErrorCode;
import org.volprov.ImageRef;
import org.volprov.ProvisioningException;
import org.volprov.cache.CacheSink;
import org.volprov.cache.ImageFiller;
import org.volprov.internal.IoFailure;
import org.volprov.source.ImageSource;
import org.volprov.support.Retrier;

/**
 * Copies one version of an object from a source into a cache sink. A broken connection is resumed
 * with a ranged read from the last byte written, under the retry policy; the count of failures
 * starts again whenever bytes arrive. With {@code parallelism > 1}, parts are fetched concurrently
 * and written to the sink in order, so the hash is still computed in one pass.
 *
 * <p>Every read is conditional on the ETag that {@code stat} returned. A failure that is not
 * retryable ({@code IMAGE_CHANGED} above all: the object was replaced) ends the fill at once; with
 * parallel parts, the parts still in flight are stopped too (their streams closed, their retry
 * waits ended), so nothing of the abandoned version is fetched on.
 *
 * <p>The parts run on a pool the caller gives and keeps (the engine shares one among its jobs); a
 * fill takes at most {@code parallelism} of its threads at a time.
 */
public final class Download implements ImageFiller {
    private final ImageSource source;
    private final ImageRef ref;
    private final String etag;
    private final Retrier retrier;
    private final Clock clock;
    private final Cancellation cancellation;
    private final LongConsumer progress;
    private final int bufferSize;
    private final int parallelism;
    private final long partSize;
    private final ExecutorService partPool;

    /**
     * @param etag the ETag {@code stat} returned for the version to download
     * @param partPool runs the parts when {@code parallelism > 1}; not shut down here
     */
    public Download(ImageSource source, ImageRef ref, String etag, Retrier retrier, Clock clock,
            Cancellation cancellation, LongConsumer progress, int bufferSize, int parallelism, long partSize,
            ExecutorService partPool) {
        this.source = source;
        this.ref = ref;
        this.etag = Objects.requireNonNull(etag, "etag");
        this.retrier = retrier;
        this.clock = clock;
        this.cancellation = cancellation;
        this.progress = progress;
        this.bufferSize = bufferSize;
        this.parallelism = parallelism;
        this.partSize = partSize;
        this.partPool = Objects.requireNonNull(partPool, "partPool");
    }

    @Override
    public void fill(CacheSink sink) throws IOException {
        long remaining = sink.size() - sink.position();
        if (parallelism > 1 && remaining > partSize) {
            fillParallel(sink);
        } else {
            fillSerial(sink);
        }
        progress.accept(sink.position());
    }

    private void fillSerial(CacheSink sink) {
        Instant start = clock.instant();
        int failures = 0;
        byte[] buf = new byte[bufferSize];
        while (sink.position() < sink.size()) {
            cancellation.checkpoint();
            long from = sink.position();
            try {
                copyRange(from, sink.size() - from, buf, cancellation, chunk -> {
                    try {
                        sink.write(chunk);
                    } catch (IOException e) {
                        throw new SinkFailure(e);
                    }
                    progress.accept(sink.position());
                });
            } catch (SinkFailure e) {
                throw IoFailure.of("writing the cache", e.getCause());
            } catch (IOException | ProvisioningException e) {
                if (sink.position() > from) {
                    failures = 0;
                    start = clock.instant();
                }
                retryOrThrow(e, ++failures, start, cancellation);
            }
        }
    }

    private void fillParallel(CacheSink sink) throws IOException {
        // The parts' own signal: the job's cancellation reaches them through it, and so does the end
        // of this fill, whatever ended it, so that no part goes on reading or retrying unseen.
        Cancellation parts = new Cancellation(clock, null);
        AtomicReference<RuntimeException> firstFailure = new AtomicReference<>();
        Deque<Future<ByteBuffer>> window = new ArrayDeque<>();
        long next = sink.position();
        try (Cancellation.AutoCloseableAction link = cancellation.onCancel(
                () -> parts.cancel(cancellation.code(), "the download was cancelled"))) {
            while (sink.position() < sink.size()) {
                while (window.size() < parallelism && next < sink.size()) {
                    long from = next;
                    long len = Math.min(partSize, sink.size() - from);
                    window.add(partPool.submit(() -> {
                        try {
                            return fetchPart(from, len, parts);
                        } catch (RuntimeException e) {
                            // The first part to fail stops the others; their failures are only echoes of it.
                            if (firstFailure.compareAndSet(null, e)) {
                                parts.cancel(ErrorCode.CANCELLED, "another part of the download failed");
                            }
                            throw e;
                        }
                    }));
                    next += len;
                }
                ByteBuffer part = await(window.removeFirst(), firstFailure);
                sink.write(part);
                progress.accept(sink.position());
            }
        } finally {
            parts.cancel(ErrorCode.CANCELLED, "the download ended");
            window.forEach(f -> f.cancel(true));
        }
    }

    private ByteBuffer fetchPart(long offset, long length, Cancellation parts) {
        ByteBuffer part = ByteBuffer.allocate((int) length);
        byte[] buf = new byte[Math.min(bufferSize, (int) length)];
        Instant start = clock.instant();
        int failures = 0;
        while (part.hasRemaining()) {
            parts.checkpoint();
            int before = part.position();
            try {
                copyRange(offset + before, length - before, buf, parts, part::put);
            } catch (IOException | ProvisioningException e) {
                if (part.position() > before) {
                    failures = 0;
                    start = clock.instant();
                }
                retryOrThrow(e, ++failures, start, parts);
            }
        }
        return part.flip();
    }

    private ByteBuffer await(Future<ByteBuffer> f, AtomicReference<RuntimeException> firstFailure) throws IOException {
        while (true) {
            cancellation.checkpoint();
            try {
                return f.get(200, TimeUnit.MILLISECONDS);
            } catch (TimeoutException e) {
                // check the cancellation again
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new ProvisioningException(ErrorCode.INTERRUPTED, "interrupted while downloading " + ref, e);
            } catch (ExecutionException e) {
                cancellation.checkpoint();
                Throwable cause = firstFailure.get() != null ? firstFailure.get() : e.getCause();
                if (cause instanceof ProvisioningException pe) {
                    throw pe;
                }
                throw new IOException(cause);
            }
        }
    }

    /** Reads {@code length} bytes from {@code offset} and hands them over chunk by chunk. */
    private void copyRange(long offset, long length, byte[] buf, Cancellation stop, ChunkConsumer out)
            throws IOException {
        InputStream in = source.open(ref, etag, offset, length);
        try (in; Cancellation.AutoCloseableAction unblock = stop.onCancel(() -> closeQuietly(in))) {
            long done = 0;
            while (done < length) {
                int n = in.read(buf, 0, (int) Math.min(buf.length, length - done));
                if (n < 0) {
                    throw new IOException("the connection ended after " + (offset + done) + " of " + (offset + length)
                            + " bytes");
                }
                done += n;
                out.accept(ByteBuffer.wrap(buf, 0, n));
                stop.checkpoint();
            }
        }
    }

    private void retryOrThrow(Exception e, int failures, Instant start, Cancellation stop) {
        stop.checkpoint();
        if (e instanceof ProvisioningException pe && !pe.code().retryable()) {
            throw pe;
        }
        retrier.pause("downloading " + ref, failures, start, e, stop);
    }

    private static void closeQuietly(InputStream in) {
        try {
            in.close();
        } catch (IOException | RuntimeException ignored) {
            // closing only unblocks a read; the job is being cancelled
        }
    }

    @FunctionalInterface
    private interface ChunkConsumer {
        void accept(ByteBuffer chunk);
    }

    /** Carries a sink's IOException out of a chunk callback, so it is not retried like a source failure. */
    private static final class SinkFailure extends RuntimeException {
        private static final long serialVersionUID = 1L;

        SinkFailure(IOException cause) {
            super(cause);
        }
    }
}
