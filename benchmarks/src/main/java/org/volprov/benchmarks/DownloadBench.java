package org.volprov.benchmarks;

import java.io.IOException;
import java.time.Clock;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;
import org.openjdk.jmh.infra.Blackhole;
import org.volprov.Cancellation;
import org.volprov.ImageRef;
import org.volprov.RetryPolicy;
import org.volprov.Sleeper;
import org.volprov.internal.engine.Download;
import org.volprov.source.ImageSource;
import org.volprov.source.ObjectInfo;
import org.volprov.support.DaemonThreads;
import org.volprov.support.Retrier;

/**
 * The download stage alone: the engine's {@link Download} filler reading the object from the S3
 * server through an adapter, into a sink that discards the bytes. Compare with {@code curl} of the
 * same object from the same server.
 *
 * <ul>
 *   <li>{@code parts}: a single stream ({@code parts=1}, the engine's default) against 2, 4 and 8
 *       ranged parts in flight, with the default 1 MiB copy buffer;</li>
 *   <li>{@code buffer}: a single stream with 64 KiB, 1 MiB and 8 MiB copy buffers.</li>
 * </ul>
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Fork(1)
@Warmup(iterations = 2, time = 1, timeUnit = TimeUnit.SECONDS)
@Measurement(iterations = 5, time = 1, timeUnit = TimeUnit.SECONDS)
public class DownloadBench {

    @Benchmark
    public void parts(Parts s, Bytes bytes, Blackhole bh) throws IOException {
        bytes.bytes += s.download(bh);
    }

    @Benchmark
    public void buffer(Buffer s, Bytes bytes, Blackhole bh) throws IOException {
        bytes.bytes += s.download(bh);
    }

    /** Source and settings; subclasses say which of them vary. */
    @State(Scope.Benchmark)
    public abstract static class Source {
        @Param({"256"})
        public int sizeMiB;

        @Param({"s3", "minio"})
        public String adapter;

        /** Bytes per ranged part when parts > 1: the engine's default. */
        @Param({"32"})
        public int partMiB;

        private Fixture fixture;
        private ImageSource source;
        private ImageRef ref;
        private long size;
        private String etag;
        private final Retrier retrier = new Retrier(RetryPolicy.NONE, Clock.systemUTC(), Sleeper.SYSTEM);
        private final ExecutorService parts = Executors.newCachedThreadPool(DaemonThreads.named("bench-download"));

        abstract int parallelism();

        abstract int bufferBytes();

        @Setup(Level.Trial)
        public void open() {
            fixture = Fixture.obtain(sizeMiB);
            source = fixture.source(adapter);
            ref = fixture.objectRef();
            ObjectInfo info = source.stat(ref);
            size = info.size();
            etag = info.etag();
        }

        /** Downloads the whole object; no retry, so that a failure fails the benchmark instead of slowing it. */
        long download(Blackhole bh) throws IOException {
            DiscardingSink sink = new DiscardingSink(size, bh);
            new Download(source, ref, etag, retrier, Clock.systemUTC(), Cancellation.none(), done -> { },
                    bufferBytes(), parallelism(), (long) partMiB << 20, parts).fill(sink);
            if (sink.position() != size) {
                throw new IllegalStateException("downloaded " + sink.position() + " of " + size + " bytes");
            }
            return size;
        }

        @TearDown(Level.Trial)
        public void close() {
            parts.shutdownNow();
            if (source != null) {
                source.close();
            }
            if (fixture != null) {
                fixture.close();
            }
        }
    }

    @State(Scope.Benchmark)
    public static class Parts extends Source {
        @Param({"1", "2", "4", "8"})
        public int parts;

        @Override
        int parallelism() {
            return parts;
        }

        @Override
        int bufferBytes() {
            return 1 << 20;
        }
    }

    @State(Scope.Benchmark)
    public static class Buffer extends Source {
        @Param({"64", "1024", "8192"})
        public int bufferKiB;

        @Override
        int parallelism() {
            return 1;
        }

        @Override
        int bufferBytes() {
            return bufferKiB << 10;
        }
    }
}
