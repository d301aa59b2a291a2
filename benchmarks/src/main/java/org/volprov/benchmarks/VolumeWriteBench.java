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
import org.volprov.volume.VolumeInfo;
import org.volprov.volume.VolumeWriter;

/**
 * The volume write stage: raw bytes from memory written through a backend's {@link VolumeWriter}
 * in 1 MiB writes (the engine's copy buffer) into a volume created just before, then
 * {@code finish()} (fsync, or the end of the upload). Compare with {@code dd conv=fdatasync}.
 * {@code libvirt-local} writes the volume's file directly; {@code libvirt-stream} uploads it
 * through libvirtd, as for a remote host. The {@code libvirt-disk-*} backends do the same onto a
 * partition of a loop device (a {@code disk} pool: a block device, as an LV is); compare them with
 * {@code dd oflag=direct} onto a partition of the same device.
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

    @Param({"file", "libvirt-local", "libvirt-stream", "libvirt-disk-local", "libvirt-disk-stream"})
    public String backend;

    private Path dir;
    private BenchBackend target;
    private VolumeInfo volume;
    private String name;
    // Random, so that no layer can skip zeros; 16 MiB, so that the writes do not hit one cached line.
    private final ByteBuffer content = ByteBuffer.allocateDirect(16 << 20);

    @Setup(Level.Trial)
    public void open() {
        byte[] random = new byte[content.capacity()];
        new SplittableRandom(5).nextBytes(random);
        content.put(random).clear();
        dir = Fixture.scratch("volume-write");
        target = BenchBackend.open(backend, dir, (long) sizeMiB << 20);
    }

    /** A volume created just before each write, as the engine creates one per job. */
    @Setup(Level.Invocation)
    public void freshVolume() {
        // Only once there is one: libvirt prints every failed lookup to stderr, in the middle of JMH's output.
        if (volume != null) {
            target.backend().delete(name);
        }
        name = target.volumeName(VOLUME);
        volume = target.backend().create(name, (long) sizeMiB << 20);
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
                    target.backend().delete(name);
                }
            } finally {
                target.close();
                Fixture.discard(dir);
            }
        }
    }
}
