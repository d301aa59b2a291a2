package org.volprov.jdbc;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.volprov.ErrorCode;
import org.volprov.ProvisionRequest;
import org.volprov.ProvisioningException;
import org.volprov.source.LocalDirectoryImageSource;
import org.volprov.testing.ForwardingVolumeBackend;
import org.volprov.testing.TestImages;
import org.volprov.volume.VolumeBackend;
import org.volprov.volume.VolumeInfo;
import org.volprov.volume.VolumeWriter;

/** Real images and real embedded parts for tests that run the engine on this store. */
final class EngineFixture {
    static final long IMAGE_SIZE = 6L << 20;
    static final long VOLUME_SIZE = 8L << 20;

    final Path root;
    final String rawDigest;

    /** A bucket {@code images} under {@code root} holding {@code disk.qcow2} and its published checksum. */
    EngineFixture(Path root) throws IOException {
        this.root = root;
        Path bucket = Files.createDirectories(root.resolve("images"));
        Path raw = TestImages.raw(root.resolve("disk.raw"), IMAGE_SIZE, 7);
        this.rawDigest = TestImages.sha256(raw);
        Path qcow2 = TestImages.qcow2(raw, bucket.resolve("disk.qcow2"), false);
        Files.writeString(bucket.resolve("disk.qcow2.sha256"), TestImages.sha256(qcow2) + "  disk.qcow2\n",
                StandardCharsets.US_ASCII);
    }

    LocalDirectoryImageSource source() {
        return new LocalDirectoryImageSource(root);
    }

    static ProvisionRequest request(String volume) {
        return ProvisionRequest.builder().imageUri("s3://images/disk.qcow2").volumeName(volume)
                .volumeSizeBytes(VOLUME_SIZE).correlationId("c-" + volume).build();
    }

    /** Whether the volume file holds the image's bytes followed by zeros. */
    boolean holdsImage(Path volume) {
        try {
            return Files.size(volume) == VOLUME_SIZE && TestImages.sha256(volume, IMAGE_SIZE).equals(rawDigest)
                    && TestImages.zerosBetween(volume, IMAGE_SIZE, VOLUME_SIZE);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * A real backend whose writer, once the volume exists, waits until released; then it fails
     * ({@code dies}: an engine stuck there stands for a process that died after creating the
     * volume) or writes as usual.
     */
    static final class PausedWriterBackend extends ForwardingVolumeBackend {
        final CountDownLatch writing = new CountDownLatch(1);
        final CountDownLatch release = new CountDownLatch(1);
        private final boolean dies;

        PausedWriterBackend(VolumeBackend d, boolean dies) {
            super(d);
            this.dies = dies;
        }

        @Override
        public VolumeWriter openWriter(VolumeInfo volume) {
            writing.countDown();
            await(release);
            if (dies) {
                throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "the process was gone");
            }
            return delegate.openWriter(volume);
        }
    }

    private static void await(CountDownLatch latch) {
        try {
            if (!latch.await(120, TimeUnit.SECONDS)) {
                throw new ProvisioningException(ErrorCode.SOURCE_UNAVAILABLE, "the test never released the gate");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new ProvisioningException(ErrorCode.CANCELLED, "interrupted at the gate");
        }
    }
}
