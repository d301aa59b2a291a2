package org.volprov.benchmarks;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.SplittableRandom;
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
import org.volprov.VolumeInfo;
import org.volprov.VolumeWriter;

/**
 * The volume write stage: raw bytes from memory written through a backend's {@link VolumeWriter}
 * in 1 MiB writes (the engine's copy buffer) into a volume created just before, then
 * {@code finish()} (fsync, or the end of the upload). Compare with {@code dd conv=fdatasync}.
 * {@code libvirt-local} writes the volume's file directly; {@code libvirt-stream} uploads it
 * through libvirtd, as for a remote host.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Fork(1)
@Warmup(iterations = 2, time = 1, timeUnit = TimeUnit.SECONDS)
@Measurement(iterations = 5, time = 1, timeUnit = TimeUnit.SECONDS)
@State(Scope.Benchmark)
public class VolumeWriteBench {
    private static final int CHUNK = 1 << 20;
    private static final String VOLUME = "bench-write";

    @Param({"256"})
    public int sizeMiB;

    @Param({"file", "libvirt-local", "libvirt-stream"})
    public String backend;

    private Path dir;
    private BenchBackend target;
    private VolumeInfo volume;
    // Random, so that no layer can skip zeros; 16 MiB, so that the writes do not hit one cached line.
    private final ByteBuffer content = ByteBuffer.allocateDirect(16 << 20);

    @Setup(Level.Trial)
    public void open() {
        byte[] random = new byte[content.capacity()];
        new SplittableRandom(5).nextBytes(random);
        content.put(random).clear();
        dir = Fixture.scratch("volume-write");
        target = BenchBackend.open(backend, dir);
    }

    /** A volume created just before each write, as the engine creates one per job. */
    @Setup(Level.Invocation)
    public void freshVolume() {
        // Only once there is one: libvirt prints every failed lookup to stderr, in the middle of JMH's output.
        if (volume != null) {
            target.backend().delete(VOLUME);
        }
        volume = target.backend().create(VOLUME, (long) sizeMiB << 20);
    }

    @Benchmark
    public long write(Bytes bytes) throws IOException {
        long size = volume.capacityBytes();
        try (VolumeWriter w = target.backend().openWriter(volume)) {
            for (long done = 0; done < size; done += CHUNK) {
                int at = (int) (done % content.capacity());
                w.write(content.duplicate().position(at).limit(at + (int) Math.min(CHUNK, size - done)));
            }
            w.finish();
            if (w.position() != size) {
                throw new IllegalStateException("wrote " + w.position() + " of " + size + " bytes");
            }
        }
        bytes.bytes += size;
        return size;
    }

    @TearDown(Level.Trial)
    public void remove() {
        if (target != null) {
            try {
                if (volume != null) {
                    target.backend().delete(VOLUME);
                }
            } finally {
                target.close();
                Fixture.discard(dir);
            }
        }
    }
}
