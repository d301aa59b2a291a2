package org.volprov.internal;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;

/**
 * Starts writing a file's dirty pages to its device while the file is still being written, so
 * that the writer's own flush at the end finds little left to write: once {@link #EVERY} bytes
 * were written since the last one began, the file's data is flushed ({@code fdatasync}) on a
 * background thread, one flush at a time per file. Without it the kernel holds a whole image in
 * the page cache until the final fsync (its background write-back starts only at a tenth of the
 * memory), and the job waits for all of it there.
 *
 * <p>Durability still comes only from the writer's own flush, after {@link #await}. A background
 * flush that failed is kept and thrown by {@code await}: the kernel reports a write-back error
 * once per open file, so the writer's own flush on the same channel might not see it again.
 *
 * <p>{@link #wrote} is called by the one writing thread; {@link #await} by that thread too, before
 * the channel's final flush or its close.
 */
public final class Writeback {
    /** Bytes written between background flushes. */
    public static final long EVERY = 64L << 20;

    private final FileChannel channel;
    private final Executor executor;
    private final long every;
    private long unflushed;
    private CompletableFuture<Void> flushing = CompletableFuture.completedFuture(null);
    private volatile IOException failure;

    public Writeback(FileChannel channel, Executor executor) {
        this(channel, executor, EVERY);
    }

    Writeback(FileChannel channel, Executor executor, long every) {
        this.channel = Objects.requireNonNull(channel, "channel");
        this.executor = Objects.requireNonNull(executor, "executor");
        this.every = every;
    }

    /** Counts {@code n} bytes just written; starts a background flush when enough are pending and none runs. */
    public void wrote(long n) {
        unflushed += n;
        if (unflushed < every || !flushing.isDone()) {
            return;
        }
        unflushed = 0;
        try {
            flushing = CompletableFuture.runAsync(this::flush, executor);
        } catch (RejectedExecutionException e) {
            // the pool is shutting down: the writer's own flush does it all
        }
    }

    private void flush() {
        try {
            if (failure == null) {
                channel.force(false);
            }
        } catch (IOException e) {
            failure = e;
        }
    }

    /**
     * Waits for the background flush in progress.
     *
     * @throws IOException the failure of a background flush
     */
    public void await() throws IOException {
        flushing.join();
        IOException f = failure;
        if (f != null) {
            throw f;
        }
    }

    /** {@link #await} for a channel about to be dropped: a failure no longer matters. */
    public void awaitQuietly() {
        flushing.join();
    }
}
