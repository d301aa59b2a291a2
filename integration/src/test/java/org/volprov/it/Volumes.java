package org.volprov.it;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.volprov.libvirt.testkit.LibvirtTestPool;
import org.volprov.testing.LoopDevice;
import org.volprov.testing.TestImages;
import org.volprov.volume.VolumeInfo;

/**
 * Checks a provisioned volume by content, independently of the code under test: its first
 * {@code virtualSize} bytes hash to the SHA-256 of {@code qemu-img convert -O raw} of the image, and
 * every byte after them reads as zero. Reads the volume's file or device (through its link, where
 * it has one) when it is on this host, else downloads it with {@code virsh vol-download}.
 */
final class Volumes {
    private Volumes() {
    }

    static void assertHolds(LibvirtTestPool pool, String volume, TestImage image) {
        VolumeInfo v = info(pool, volume);
        try {
            Path file = Path.of(v.path());
            Path downloaded = null;
            if (!(pool.isLocal() && Files.isReadable(file))) {
                downloaded = Files.createTempFile("volprov-it-", ".vol");
                LibvirtTestPool.virsh("vol-download", "--pool", pool.pool(), volume, downloaded.toString());
                file = downloaded;
            } else {
                LoopDevice.dropCache(file);
            }
            try {
                assertThat(LibvirtTestPool.sizeOnDisk(file)).as("size of volume " + volume).isEqualTo(v.capacityBytes());
                assertThat(TestImages.sha256(file, image.virtualSize()))
                        .as("SHA-256 of the first %d bytes of %s (qemu-img convert -O raw of %s)",
                                image.virtualSize(), volume, image.name())
                        .isEqualTo(image.rawSha256());
                assertThat(TestImages.zerosBetween(file, image.virtualSize(), v.capacityBytes()))
                        .as("bytes of %s past the image read as zero", volume).isTrue();
            } finally {
                if (downloaded != null) {
                    Files.deleteIfExists(downloaded);
                }
            }
        } catch (IOException e) {
            throw new AssertionError("cannot read volume " + volume + ": " + e, e);
        }
    }

    /** The volume as virsh reports it (capacity and target path), not as the backend under test does. */
    static VolumeInfo info(LibvirtTestPool pool, String volume) {
        try {
            return pool.info(volume);
        } catch (IOException e) {
            throw new AssertionError("volume " + volume + " is not in pool " + pool.pool() + ": " + e.getMessage(), e);
        }
    }

    /** Whether the pool holds {@code volume}. */
    static boolean exists(LibvirtTestPool pool, String volume) {
        try {
            return LibvirtTestPool.volumes(pool.pool()).contains(volume);
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }
}
