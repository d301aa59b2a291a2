package org.volprov.internal.qcow2;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.Executor;
import java.util.function.LongConsumer;
import org.volprov.Cancellation;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;
import org.volprov.image.ImageFormat;
import org.volprov.image.ImageInfo;
import org.volprov.internal.IoFailure;
import org.volprov.internal.Writeback;
import org.volprov.volume.VolumeWriter;

/**
 * Fills a volume from an image while the image downloads: fed the object's bytes in file order (as
 * they go into the cache), it judges the image from its first bytes, opens the volume through an
 * {@link Opener} once the image's virtual size is known, writes what it can live, and in
 * {@link #finish} (once the whole object hashed right) writes the rest from the completed cache
 * file, zeroes the volume past the image, and flushes it.
 *
 * <ul>
 *   <li>qcow2 goes through {@link Qcow2Stream}; raw images pass straight through, their all-zero
 *       blocks skipped when the volume reads as zero already.</li>
 *   <li>A writer with a {@link VolumeWriter#localPath() local path} is written positionally: each
 *       data cluster lands at its guest offset as soon as its table is known; given a flushing
 *       executor, the path is flushed in the background as it is written ({@link Writeback}), so
 *       that the writer's flush at the end finds little left. Any other writer (an
 *       upload stream) gets the disk in guest order: live while the file's order is the guest
 *       order, the rest in {@link #finish}.</li>
 *   <li>A refused image ({@code UNSUPPORTED_IMAGE}) is refused from the {@link #feed} that brings its
 *       deciding bytes, before the volume is opened: nothing is written.</li>
 *   <li>Memory is bounded by {@link Qcow2Stream.Limits} and one raw block (1 MiB); nothing is
 *       ever written past the target's capacity.</li>
 * </ul>
 *
 * <p>Every byte of the object, from the first, is fed exactly once and in order: a download that
 * resumes within one attempt goes on feeding where it stopped; one that starts past byte 0 (a
 * partial cache file left by an earlier attempt) cannot use a fill and decodes from the cache file
 * afterwards. A fill that failed leaves the volume to be rolled back; a second attempt needs a new
 * fill on a fresh writer.
 *
 * <p>Not thread-safe: one thread feeds it and finishes or aborts it. To stop a {@code feed} or
 * {@code finish} in progress from another thread, cancel the {@link Cancellation}, then call
 * {@link #abort} from the feeding thread. The target's writer stays the caller's: this class calls
 * its {@code write}, {@code writeZeros}, {@code skip} and {@code finish}, never its {@code close}.
 */
public final class StreamingFill implements AutoCloseable {
    private static final int RAW_BLOCK = 1 << 20;

    /**
     * The volume to fill.
     *
     * @param writer the volume's writer, at position 0
     * @param capacity the volume's size: the image's virtual size or more
     * @param readsAsZero whether every byte of the volume reads as zero already
     */
    public record Target(VolumeWriter writer, long capacity, boolean readsAsZero) {
        public Target {
            Objects.requireNonNull(writer, "writer");
            if (capacity < 0) {
                throw new IllegalArgumentException("capacity must not be negative");
            }
        }
    }

    /** Opens (or makes) the volume for an image, once its header told what it is. */
    @FunctionalInterface
    public interface Opener {
        /**
         * @param image the image's format and virtual size, and the object's size
         * @return the volume; its capacity must hold the virtual size
         */
        Target open(ImageInfo image) throws IOException;
    }

    private final long objectSize;
    private final Opener opener;
    private final TrackedExecutor executor;
    private final Executor flushing;
    private final int parallelism;
    private final LongConsumer progress;
    private final Cancellation cancellation;
    private final Qcow2Stream.Limits limits;

    private long fed;
    private ImageHead head;
    private ImageInfo image;
    private Target target;
    private FileChannel channel;
    private Writeback writeback;
    private GuestSink sink;
    private Qcow2Stream stream;
    private ByteBuffer raw;
    private ByteBuffer zeros;
    private long rawAt;
    private boolean finished;
    private boolean aborted;
    private Qcow2Stream.Stats stats;

    /**
     * @param objectSize the object's size: exactly this many bytes will be fed
     * @param requested the format the request names ({@code AUTO} takes qcow2 or raw)
     * @param opener opens the volume once the image is known; called at most once, from {@code feed} or {@code finish}
     * @param executor where compressed clusters are inflated (a pool sized to the cores); null for the feeding thread
     * @param parallelism threads of {@code executor} that may inflate at once
     * @param flushing where a volume with a local path is flushed in the background while it is
     *     written ({@link Writeback}); null for only the writer's flush at the end
     * @param progress receives the guest bytes written so far, up to the target's capacity
     */
    public StreamingFill(long objectSize, ImageFormat requested, Opener opener, Executor executor, int parallelism,
            Executor flushing, LongConsumer progress, Cancellation cancellation, Qcow2Stream.Limits limits) {
        if (objectSize < 0) {
            throw new IllegalArgumentException("objectSize must not be negative");
        }
        this.objectSize = objectSize;
        this.head = new ImageHead(objectSize, Objects.requireNonNull(requested, "requested"));
        this.opener = Objects.requireNonNull(opener, "opener");
        this.executor = executor == null ? null : new TrackedExecutor(executor);
        this.parallelism = Math.max(1, parallelism);
        this.flushing = flushing;
        this.progress = Objects.requireNonNull(progress, "progress");
        this.cancellation = Objects.requireNonNull(cancellation, "cancellation");
        this.limits = Objects.requireNonNull(limits, "limits");
    }

    /** The image, once its first bytes decided it. */
    public Optional<ImageInfo> image() {
        return Optional.ofNullable(image);
    }

    /** What the decode did (guest bytes written live and from the file); once {@link #finish} returned. */
    public Optional<Qcow2Stream.Stats> stats() {
        return Optional.ofNullable(stats);
    }

    /** Bytes of the object fed so far. */
    public long position() {
        return fed;
    }

    /**
     * Takes the object's next bytes: the remaining bytes of {@code bytes}, read without moving its
     * position, so the same buffer can go on to the cache. Call it before the cache gets them, so
     * that a refusal keeps them out.
     *
     * @throws ProvisioningException {@code UNSUPPORTED_IMAGE} as soon as the bytes so far refuse the
     *     image (nothing is written then), {@code VOLUME_TOO_SMALL} when the target cannot hold it,
     *     the cancellation's code, or what the opener throws
     * @throws IOException when the volume cannot be written
     */
    public void feed(ByteBuffer bytes) throws IOException {
        checkOpen();
        ByteBuffer b = bytes.duplicate();
        if (b.remaining() > objectSize - fed) {
            throw new IllegalArgumentException("more bytes than the object's " + objectSize);
        }
        fed += b.remaining();
        if (head != null) {
            if (!head.take(b)) {
                return;
            }
            start(head);
            ByteBuffer gathered = head.bytes();
            head = null;
            pass(gathered);
        }
        pass(b);
    }

    /**
     * Writes what was not written live, from {@code completedCacheFile} (the whole object, whose
     * digest was verified), makes the volume read as zero from the image's end to its capacity,
     * and flushes it ({@link VolumeWriter#finish()}).
     *
     * @throws ProvisioningException as {@link #feed} does
     * @throws IllegalStateException when fewer bytes than the object's size were fed
     * @throws IOException when the volume cannot be written or the file read
     */
    public void finish(FileChannel completedCacheFile) throws IOException {
        checkOpen();
        if (fed != objectSize) {
            throw new IllegalStateException("fed " + fed + " of the object's " + objectSize + " bytes");
        }
        if (completedCacheFile.size() != objectSize) {
            throw new IllegalStateException("the cache file holds " + completedCacheFile.size() + " bytes, not the "
                    + objectSize + " that were fed");
        }
        finished = true;
        if (head != null) {
            head.decideWhole();
            start(head);
            ByteBuffer gathered = head.bytes();
            head = null;
            pass(gathered);
        }
        if (stream != null) {
            stream.finish(completedCacheFile);
            stats = stream.stats();
        } else {
            flushRaw();
            stats = new Qcow2Stream.Stats(rawAt, 0, 0, 0);
        }
        VolumeWriter w = target.writer();
        long virtual = image.virtualSize();
        if (channel != null) {
            if (writeback != null) {
                try {
                    writeback.await();
                } catch (IOException e) {
                    throw IoFailure.of("flushing volume path " + target.writer().localPath().orElseThrow(), e);
                }
            }
            channel.close();
            channel = null;
            w.skip(virtual); // written in place through the local path
        }
        if (w.position() != virtual) {
            throw new IllegalStateException("the writer is at " + w.position() + " after an image of " + virtual
                    + " bytes");
        }
        long tail = target.capacity() - virtual;
        if (tail > 0) {
            cancellation.checkpoint();
            // A reused volume or a thick one may hold an earlier tenant's bytes past the image.
            if (target.readsAsZero()) {
                w.skip(tail);
            } else {
                w.writeZeros(tail);
            }
        }
        progress.accept(target.capacity());
        cancellation.checkpoint();
        w.finish();
        releaseDecoder();
    }

    /**
     * Stops the fill: drops what is in flight and returns once no task of it runs on the executor.
     * The volume keeps whatever was written; rolling it back is the caller's. Idempotent.
     */
    public void abort() {
        if (aborted) {
            return;
        }
        aborted = true;
        if (executor != null) {
            executor.stop();
        }
        releaseDecoder();
        raw = null;
    }

    /** {@link #abort()} unless {@link #finish} completed. */
    @Override
    public void close() {
        if (!finished || stream != null || channel != null) {
            abort();
        }
    }

    private void start(ImageHead decided) throws IOException {
        ImageFormat format = decided.format();
        long virtual = format == ImageFormat.QCOW2 ? decided.header().virtualSize() : objectSize;
        image = new ImageInfo(format, virtual, objectSize);
        target = Objects.requireNonNull(opener.open(image), "the opener's target");
        if (target.capacity() < virtual) {
            throw new ProvisioningException(ErrorCode.VOLUME_TOO_SMALL, "the volume holds " + target.capacity()
                    + " bytes, the image's virtual size is " + virtual);
        }
        if (target.writer().position() != 0) {
            throw new IllegalStateException("the writer is at " + target.writer().position() + ", not 0");
        }
        Optional<Path> local = target.writer().localPath();
        if (local.isPresent()) {
            try {
                // WRITE without CREATE: the writer's path exists; nothing may be made in its place.
                channel = FileChannel.open(local.get(), StandardOpenOption.WRITE);
            } catch (IOException e) {
                throw IoFailure.of("opening volume path " + local.get(), e);
            }
            writeback = flushing == null ? null : new Writeback(channel, flushing);
            sink = new ChannelSink(channel, virtual, target.readsAsZero(), writeback);
        } else {
            sink = new WriterSink(target.writer(), virtual, target.readsAsZero());
        }
        if (format == ImageFormat.QCOW2) {
            stream = new Qcow2Stream(objectSize, sink, executor, parallelism, progress, cancellation, limits);
        } else {
            raw = ByteBuffer.allocateDirect((int) Math.min(RAW_BLOCK, Math.max(1, objectSize)));
        }
    }

    private void pass(ByteBuffer b) throws IOException {
        if (stream != null) {
            stream.feed(b);
            return;
        }
        while (b.hasRemaining()) {
            int n = Math.min(b.remaining(), raw.remaining());
            raw.put(b.slice(b.position(), n));
            b.position(b.position() + n);
            if (!raw.hasRemaining()) {
                flushRaw();
            }
        }
    }

    private void flushRaw() throws IOException {
        raw.flip();
        int n = raw.remaining();
        if (n > 0) {
            cancellation.checkpoint();
            if (zeros == null) {
                zeros = ByteBuffer.allocateDirect(raw.capacity());
            }
            if (raw.mismatch(zeros.duplicate().limit(n)) == -1) {
                sink.zero(rawAt, n);
            } else {
                sink.data(rawAt, raw);
            }
            rawAt += n;
            progress.accept(rawAt);
        }
        raw.clear();
    }

    private void releaseDecoder() {
        if (stream != null) {
            stream.close();
            stream = null;
        }
        if (channel != null) {
            if (writeback != null) {
                writeback.awaitQuietly();
            }
            try {
                channel.close();
            } catch (IOException e) {
                // nothing was flushed through it; the writer's finish is what makes writes durable
            }
            channel = null;
        }
    }

    private void checkOpen() {
        if (aborted || finished) {
            throw new IllegalStateException("the fill is " + (aborted ? "aborted" : "finished"));
        }
    }

    /** A {@code GUEST} sink on a sequential writer: zero runs skipped when the volume reads as zero. */
    private static final class WriterSink implements GuestSink {
        private final VolumeWriter writer;
        private final long capacity;
        private final boolean readsAsZero;

        WriterSink(VolumeWriter writer, long capacity, boolean readsAsZero) {
            this.writer = writer;
            this.capacity = capacity;
            this.readsAsZero = readsAsZero;
        }

        @Override
        public Order order() {
            return Order.GUEST;
        }

        @Override
        public void data(long guestOffset, ByteBuffer bytes) throws IOException {
            check(guestOffset, bytes.remaining());
            writer.write(bytes);
        }

        @Override
        public void zero(long guestOffset, long length) throws IOException {
            check(guestOffset, length);
            if (readsAsZero) {
                writer.skip(length);
            } else {
                writer.writeZeros(length);
            }
        }

        private void check(long offset, long length) {
            if (offset != writer.position()) {
                throw new IllegalStateException("a write at " + offset + " where the writer is at " + writer.position());
            }
            if (length < 0 || offset > capacity - length) {
                throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "a write of " + length + " bytes at "
                        + offset + " would pass the image's " + capacity + " bytes");
            }
        }
    }

    /**
     * Runs tasks on the caller's executor, counting those submitted and not yet ended, so that
     * {@link #stop()} can return once none runs; a task that starts after it does nothing.
     */
    private static final class TrackedExecutor implements Executor {
        private final Executor delegate;
        private int open;
        private boolean stopped;

        TrackedExecutor(Executor delegate) {
            this.delegate = delegate;
        }

        @Override
        public void execute(Runnable task) {
            synchronized (this) {
                if (stopped) {
                    throw new java.util.concurrent.RejectedExecutionException("the fill was aborted");
                }
                open++;
            }
            try {
                delegate.execute(() -> {
                    try {
                        if (!isStopped()) {
                            task.run();
                        }
                    } finally {
                        ended();
                    }
                });
            } catch (RuntimeException e) {
                ended();
                throw e;
            }
        }

        private synchronized boolean isStopped() {
            return stopped;
        }

        private synchronized void ended() {
            open--;
            notifyAll();
        }

        /** Waits until no task submitted here runs or waits to run. */
        synchronized void stop() {
            stopped = true;
            boolean interrupted = false;
            while (open > 0) {
                try {
                    wait();
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
