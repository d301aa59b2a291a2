package org.volprov.libvirt;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.volprov.Cancellation;
import org.volprov.image.ImageFormat;
import org.volprov.internal.qcow2.Qcow2Stream;
import org.volprov.internal.qcow2.StreamingFill;
import org.volprov.libvirt.testkit.LibvirtTestPool;
import org.volprov.testing.TestImages;
import org.volprov.volume.VolumeInfo;
import org.volprov.volume.VolumeWriter;

/**
 * A qcow2 image with big holes, streamed in file order by {@link StreamingFill} straight into a
 * STREAM-mode upload (no temp file): the holes cross as {@code virStreamSendHole}. The volume's
 * bytes are {@code qemu-img convert}'s, zero past the image; a dir pool's file keeps the holes
 * (allocated blocks far below its size); a disk pool's partition, holding an earlier tenant's
 * bytes, reads as zero in them.
 */
class StreamHolesIT {
    private static final long MIB = 1L << 20;
    private static final long VIRTUAL = 48 * MIB;

    abstract static class Holes {
        private final LibvirtTestPool pool;

        @TempDir
        Path work;

        Holes(LibvirtTestPool pool) {
            this.pool = pool;
        }

        abstract VolumeInfo volume(LibvirtVolumeBackend backend) throws IOException;

        @Test
        void streamUpload_ofAnImageWithHoles_givesQemuImgBytes_andSendsHoles() throws IOException {
            try (LibvirtVolumeBackend backend = pool.backend(WriteMode.STREAM)) {
                VolumeInfo volume = volume(backend);
                upload(backend, volume);
                if (pool.kind() == LibvirtTestPool.Kind.DIR && pool.isLocal()) {
                    String[] stat = LibvirtTestPool.run(List.of("stat", "-c", "%b %B %s", volume.path()), true)
                            .strip().split(" ");
                    long allocated = Long.parseLong(stat[0]) * Long.parseLong(stat[1]);
                    assertThat(Long.parseLong(stat[2])).isEqualTo(volume.capacityBytes());
                    assertThat(allocated).as("bytes allocated to the volume file").isLessThan(8 * MIB);
                }
            }
        }

        /** Streams the image into the volume and checks the volume's bytes against qemu-img's, zero past the image. */
        void upload(LibvirtVolumeBackend backend, VolumeInfo volume) throws IOException {
            Path image = work.resolve("holes.qcow2");
            TestImages.run(List.of("qemu-img", "create", "-q", "-f", "qcow2", image.toString(), Long.toString(VIRTUAL)));
            TestImages.run(List.of("qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 1M", "-c", "write -P 0xa5 24M 1M",
                    "-c", "write -P 0x3c 47M 512k", image.toString()));
            try (VolumeWriter w = backend.openWriter(volume)) {
                assertThat(w).isInstanceOf(StreamVolumeWriter.class);
                assertThat(((StreamVolumeWriter) w).sparse()).as("upload opened as a sparse stream").isTrue();
                fill(image, w, volume);
            }
            Path reference = TestImages.toRaw(image, work.resolve("reference.raw"));
            try (RandomAccessFile f = new RandomAccessFile(reference.toFile(), "rw")) {
                f.setLength(volume.capacityBytes());
            }
            assertThat(pool.sha256(volume)).isEqualTo(TestImages.sha256(reference));
        }

        private static void fill(Path image, VolumeWriter w, VolumeInfo volume) throws IOException {
            try (FileChannel ch = FileChannel.open(image, StandardOpenOption.READ);
                 StreamingFill fill = new StreamingFill(ch.size(), ImageFormat.AUTO,
                         info -> new StreamingFill.Target(w, volume.capacityBytes(), volume.readsAsZeros()), null, 1, null,
                         d -> { }, Cancellation.none(), Qcow2Stream.Limits.defaults())) {
                ByteBuffer buf = ByteBuffer.allocate(64 << 10);
                for (long at = 0; at < ch.size(); ) {
                    buf.clear();
                    int n = ch.read(buf, at);
                    at += n;
                    fill.feed(buf.flip());
                }
                fill.finish(ch);
            }
        }
    }

    @Nested
    @DisplayName("dir pool")
    class DirPool extends Holes {
        @RegisterExtension
        static final LibvirtTestPool POOL = new LibvirtTestPool();

        DirPool() {
            super(POOL);
        }

        @Override
        VolumeInfo volume(LibvirtVolumeBackend backend) {
            return backend.create(POOL.volumeName("holes"), VIRTUAL);
        }

        /** A file that holds an earlier tenant's bytes: a hole would leave them, so its zeros are sent as zeros. */
        @Test
        void streamUpload_intoAReusedFile_givesQemuImgBytes() throws IOException {
            POOL.existingVolume("reused", VIRTUAL);
            try (LibvirtVolumeBackend backend = POOL.backend(WriteMode.STREAM)) {
                upload(backend, backend.find(POOL.volumeName("reused")).orElseThrow());
            }
        }
    }

    @Nested
    @DisplayName("disk pool (loop device partitions)")
    class DiskPool extends Holes {
        @RegisterExtension
        static final LibvirtTestPool POOL = LibvirtTestPool.disk(64L << 20);

        DiskPool() {
            super(POOL);
        }

        /** A partition holding an earlier tenant's bytes, which the holes must not let through. */
        @Override
        VolumeInfo volume(LibvirtVolumeBackend backend) throws IOException {
            POOL.existingVolume("holes", VIRTUAL);
            return backend.find(POOL.volumeName("holes")).orElseThrow();
        }
    }
}
