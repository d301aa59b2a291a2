package org.volprov.internal.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

import java.io.ByteArrayOutputStream;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.volprov.Cancellation;
import org.volprov.ErrorCode;
import org.volprov.ImageRef;
import org.volprov.ProvisioningException;
import org.volprov.RetryPolicy;
import org.volprov.cache.CacheSink;
import org.volprov.source.ImageSource;
import org.volprov.source.LocalDirectoryImageSource;
import org.volprov.support.DaemonThreads;
import org.volprov.support.Retrier;
import org.volprov.testing.ForwardingImageSource;

/** The download loop against a real local source; faults come from a decorator. */
class DownloadTest {
    private static final int MIB = 1 << 20;
    private static final Duration HANG_GUARD = Duration.ofSeconds(30);
    private static final RetryPolicy PATIENT = new RetryPolicy(6, Duration.ofMillis(500), Duration.ofSeconds(15),
            Duration.ofMinutes(2), 0.5);

    @TempDir
    Path root;
    private final ImageRef ref = new ImageRef("images", "disk.raw");
    private byte[] content;
    private LocalDirectoryImageSource local;
    private final AtomicInteger sleeps = new AtomicInteger();
    private Retrier retrier;
    private final ExecutorService parts = Executors.newCachedThreadPool(DaemonThreads.named("test-download"));

    @BeforeEach
    void setUp() throws IOException {
        content = new byte[8 * MIB];
        new Random(3).nextBytes(content);
        Files.createDirectories(root.resolve("images"));
        Files.write(root.resolve("images/disk.raw"), content);
        local = new LocalDirectoryImageSource(root);
        retrier = new Retrier(PATIENT, Clock.systemUTC(), d -> sleeps.incrementAndGet());
    }

    @AfterEach
    void tearDown() {
        parts.shutdownNow();
    }

    private Download download(ImageSource source, int parallelism) {
        return new Download(source, ref, local.stat(ref).etag(), retrier, Clock.systemUTC(), Cancellation.none(),
                done -> { }, 64 * 1024, parallelism, MIB, parts);
    }

    @Test
    void fill_readsEveryRangeConditionalOnTheEtagStatReturned() throws IOException {
        List<String> etags = new CopyOnWriteArrayList<>();
        ImageSource recording = new ForwardingImageSource(local) {
            @Override
            public InputStream open(ImageRef r, String etag, long offset, long length) {
                etags.add(etag);
                return super.open(r, etag, offset, length);
            }
        };
        MemorySink sink = new MemorySink(content.length);
        download(recording, 4).fill(sink);
        assertThat(sink.bytes()).isEqualTo(content);
        assertThat(etags).hasSize(8).containsOnly(local.stat(ref).etag());
    }

    @Test
    void serialFill_whenTheObjectChanged_failsAtOnceWithImageChanged_withoutRetrying() {
        AtomicInteger opens = new AtomicInteger();
        ImageSource changed = new ForwardingImageSource(local) {
            @Override
            public InputStream open(ImageRef r, String etag, long offset, long length) {
                opens.incrementAndGet();
                throw new ProvisioningException(ErrorCode.IMAGE_CHANGED, r + " changed");
            }
        };
        assertThatThrownBy(() -> download(changed, 1).fill(new MemorySink(content.length)))
                .isInstanceOfSatisfying(ProvisioningException.class,
                        e -> assertThat(e.code()).isEqualTo(ErrorCode.IMAGE_CHANGED));
        assertThat(opens).hasValue(1);
        assertThat(sleeps).as("retry waits").hasValue(0);
    }

    @Test
    void parallelFill_whenOnePartFindsTheObjectChanged_stopsThePartsInFlight_andFailsWithImageChanged() {
        CountDownLatch firstPartReading = new CountDownLatch(1);
        CountDownLatch firstPartClosed = new CountDownLatch(1);
        AtomicInteger opens = new AtomicInteger();
        ImageSource source = new ForwardingImageSource(local) {
            @Override
            public InputStream open(ImageRef r, String etag, long offset, long length) {
                opens.incrementAndGet();
                if (offset == 0) {
                    // The first part stalls mid-read, as a slow connection does, until its stream is closed.
                    return new StallingStream(super.open(r, etag, offset, length), firstPartReading, firstPartClosed);
                }
                try {
                    firstPartReading.await(10, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                throw new ProvisioningException(ErrorCode.IMAGE_CHANGED, r + " changed");
            }
        };
        MemorySink sink = new MemorySink(content.length);
        assertTimeoutPreemptively(HANG_GUARD, () -> assertThatThrownBy(() -> download(source, 2).fill(sink))
                .isInstanceOfSatisfying(ProvisioningException.class,
                        e -> assertThat(e.code()).as(e.toString()).isEqualTo(ErrorCode.IMAGE_CHANGED)));
        assertTimeoutPreemptively(HANG_GUARD, () -> firstPartClosed.await());
        assertThat(sink.position()).as("bytes written to the sink").isZero();
        assertThat(opens).as("no part opened after the failure").hasValue(2);
        assertThat(sleeps).as("retry waits").hasValue(0);
    }

    /** Delivers one chunk, then blocks until closed. */
    private static final class StallingStream extends FilterInputStream {
        private final CountDownLatch reading;
        private final CountDownLatch closed;

        StallingStream(InputStream in, CountDownLatch reading, CountDownLatch closed) {
            super(in);
            this.reading = reading;
            this.closed = closed;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            if (reading.getCount() == 0) {
                try {
                    closed.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                throw new IOException("stream closed");
            }
            reading.countDown();
            return super.read(b, off, Math.min(len, 4096));
        }

        @Override
        public void close() throws IOException {
            closed.countDown();
            super.close();
        }
    }

    /** A sink in memory. */
    private static final class MemorySink implements CacheSink {
        private final ByteArrayOutputStream out = new ByteArrayOutputStream();
        private final long size;

        MemorySink(long size) {
            this.size = size;
        }

        @Override
        public long position() {
            return out.size();
        }

        @Override
        public long size() {
            return size;
        }

        @Override
        public void write(ByteBuffer src) {
            byte[] b = new byte[src.remaining()];
            src.get(b);
            out.write(b, 0, b.length);
        }

        byte[] bytes() {
            return out.toByteArray();
        }
    }
}
