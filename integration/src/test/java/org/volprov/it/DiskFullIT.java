package org.volprov.it;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.volprov.ErrorCode;
import org.volprov.Job;
import org.volprov.JobEvent;
import org.volprov.JobState;
import org.volprov.Stage;
import org.volprov.libvirt.LibvirtConfig;
import org.volprov.libvirt.LibvirtVolumeBackend;
import org.volprov.libvirt.testkit.LibvirtTestPool;
import org.volprov.testing.LoopDevice;

/**
 * The cache directory (or the pool) on a small tmpfs: INSUFFICIENT_SPACE, no partial file, no
 * volume; once space is freed the same request succeeds. Where mounting is not allowed, the cache's
 * byte budget stands in for the file system's size, and the run says so. A disk pool on a loop
 * device without room for the request: INSUFFICIENT_SPACE, no partition.
 */
@Tag(Category.DISK_FULL)
class DiskFullIT {
    private static final long MIB = 1L << 20;
    @RegisterExtension
    static final LibvirtTestPool POOL = new LibvirtTestPool();
    @RegisterExtension
    static final LibvirtTestPool DISK = LibvirtTestPool.disk(256 * MIB);
    private static String noMount;

    @TempDir
    static Path shared;
    @TempDir
    Path work;

    @BeforeAll
    static void canMount() {
        noMount = TmpfsMount.whyNot(shared);
        if (noMount != null) {
            System.out.println("[DiskFull] cannot mount a tmpfs (" + noMount.strip()
                    + "); the cache's byte budget stands in for a small file system");
        }
    }

    @Test
    void imageLargerThanTheCacheFileSystem_failsBeforeDownloading_andSucceedsOnceThereIsRoom() throws IOException {
        TestImage image = ImageSet.get(ImageSet.SMALL);
        long fileSize = Files.size(image.file());
        String uri = Uploads.uri(image);
        if (noMount != null) {
            budgetStandIn(image, uri);
            return;
        }
        try (TmpfsMount small = TmpfsMount.mount(work, fileSize / 2)) {
            Path cacheDir = Files.createDirectories(small.path.resolve("cache"));
            try (Stack stack = Stack.builder(POOL, work.resolve("a")).cacheDirectory(cacheDir).build()) {
                Job job = stack.run(Stack.request(uri, stack.volume("fs-too-small"), image.virtualSize()));
                assertThat(job.state()).isEqualTo(JobState.FAILED);
                assertThat(job.errorCode()).as(job.errorMessage()).isEqualTo(ErrorCode.INSUFFICIENT_SPACE);
                assertThat(stack.cache.stats().bytesDownloaded()).as("refused before any download").isZero();
                Leftovers.assertNothingLeft(stack, POOL, job, List.of());
            }
        }
        try (TmpfsMount roomy = TmpfsMount.mount(work, fileSize * 2)) {
            Path cacheDir = Files.createDirectories(roomy.path.resolve("cache"));
            try (Stack stack = Stack.builder(POOL, work.resolve("b")).cacheDirectory(cacheDir).build()) {
                Job job = stack.run(Stack.request(uri, stack.volume("fs-too-small"), image.virtualSize()));
                assertThat(job.state()).as("%s %s", job.errorCode(), job.errorMessage()).isEqualTo(JobState.COMPLETED);
                Volumes.assertHolds(POOL, stack.volume("fs-too-small"), image);
            }
        }
    }

    @Test
    void fileSystemFillingUpMidDownload_failsWithInsufficientSpace_removesThePartialFile_andRecovers() throws IOException {
        if (noMount != null) {
            System.out.println("[DiskFull] ENOSPC mid-download not run: " + noMount.strip()
                    + " (the budget stand-in runs in the other test)");
            return;
        }
        TestImage image = ImageSet.get(ImageSet.SMALL);
        long fileSize = Files.size(image.file());
        String uri = Uploads.uri(image);
        try (TmpfsMount fs = TmpfsMount.mount(work, fileSize + 16 * MIB)) {
            Path cacheDir = Files.createDirectories(fs.path.resolve("cache"));
            Path otherTenant = fs.path.resolve("other-tenant.bin");
            AtomicBoolean filled = new AtomicBoolean();
            try (Stack stack = Stack.builder(POOL, work).cacheDirectory(cacheDir).build()) {
                // Another writer takes most of the space once the download is under way.
                stack.engine.addListener(e -> {
                    if (e.kind() == JobEvent.Kind.PROGRESS && e.job().stage() == Stage.DOWNLOADING
                            && filled.compareAndSet(false, true)) {
                        fill(otherTenant, fileSize / 2);
                    }
                });
                String volume = stack.volume("enospc");
                Job job = stack.run(Stack.request(uri, volume, image.virtualSize()));
                assertThat(filled).isTrue();
                assertThat(job.state()).isEqualTo(JobState.FAILED);
                assertThat(job.errorCode()).as(job.errorMessage()).isEqualTo(ErrorCode.INSUFFICIENT_SPACE);
                Leftovers.assertNothingLeft(stack, POOL, job, List.of());

                Files.delete(otherTenant);
                Job again = stack.run(Stack.request(uri, volume, image.virtualSize()));
                assertThat(again.state()).as("%s %s", again.errorCode(), again.errorMessage())
                        .isEqualTo(JobState.COMPLETED);
                Volumes.assertHolds(POOL, volume, image);
            }
        }
    }

    @Test
    void poolOnAFullFileSystem_failsWithInsufficientSpace_andLeavesNoVolume() throws IOException {
        if (noMount != null) {
            System.out.println("[DiskFull] full pool not run: " + noMount.strip());
            return;
        }
        Assumptions.assumeTrue(POOL.isLocal(), "a pool on a tmpfs of this host needs libvirtd on this host");
        TestImage image = ImageSet.get(ImageSet.SMALL);
        String uri = Uploads.uri(image);
        String pool = "volprov-full-" + UUID.randomUUID().toString().substring(0, 8);
        try (TmpfsMount fs = TmpfsMount.mount(work, 64 * MIB)) {
            LibvirtTestPool.defineDirPool(pool, fs.path);
            try (LibvirtVolumeBackend full = LibvirtVolumeBackend.open(
                    LibvirtConfig.builder().uri(LibvirtTestPool.URI).poolName(pool).build());
                 Stack stack = Stack.builder(POOL, work).backend(full).build()) {
                Job job = stack.run(Stack.request(uri, "vm-too-big", image.virtualSize()));
                assertThat(job.state()).isEqualTo(JobState.FAILED);
                assertThat(job.errorCode()).as(job.errorMessage()).isEqualTo(ErrorCode.INSUFFICIENT_SPACE);
                assertThat(LibvirtTestPool.volumes(pool)).isEmpty();
            } finally {
                LibvirtTestPool.removePool(pool);
            }
        }
    }

    @Test
    void diskPoolWithoutRoomForTheRequest_failsWithInsufficientSpace_leavesNoPartition_andSucceedsWhereItFits()
            throws IOException {
        TestImage image = ImageSet.get(ImageSet.SMALL);
        String uri = Uploads.uri(image);
        LoopDevice loop = DISK.loopDevice();
        try (Stack stack = Stack.builder(DISK, work).build()) {
            Job tooBig = stack.run(Stack.request(uri, stack.volume("too-big"), 300 * MIB));
            assertThat(tooBig.state()).isEqualTo(JobState.FAILED);
            assertThat(tooBig.errorCode()).as(tooBig.errorMessage()).isEqualTo(ErrorCode.INSUFFICIENT_SPACE);
            assertThat(tooBig.errorMessage()).contains("bytes available");
            assertThat(loop.partitions()).as("partitions on " + loop).isEmpty();
            Leftovers.assertNothingLeft(stack, DISK, tooBig, List.of());

            // Room enough in all, but not in one region: 110 MiB free between two partitions, 66 MiB after them.
            DISK.existingVolume("first", 60 * MIB);
            String middle = DISK.existingVolume("middle", 110 * MIB).name();
            DISK.existingVolume("last", 20 * MIB);
            LibvirtTestPool.virsh("vol-delete", "--pool", DISK.pool(), middle);
            List<LoopDevice.Partition> before = loop.partitions();
            Job split = stack.run(Stack.request(uri, stack.volume("split"), 120 * MIB));
            assertThat(split.errorCode()).as(split.errorMessage()).isEqualTo(ErrorCode.INSUFFICIENT_SPACE);
            assertThat(split.errorMessage()).contains("in one free region");
            assertThat(loop.partitions()).as("partitions on " + loop).isEqualTo(before);

            String fits = stack.volume("fits");
            Job job = stack.run(Stack.request(uri, fits, 105 * MIB));
            assertThat(job.state()).as("%s %s", job.errorCode(), job.errorMessage()).isEqualTo(JobState.COMPLETED);
            assertThat(fits).as("the partition libvirt made in the hole").isEqualTo(middle);
            Volumes.assertHolds(DISK, fits, image);
        }
    }

    /** Where tmpfs cannot be mounted: a budget smaller than the image gives the same early refusal. */
    private void budgetStandIn(TestImage image, String uri) throws IOException {
        long fileSize = Files.size(image.file());
        Path cacheDir = work.resolve("budget-cache");
        try (Stack stack = Stack.builder(POOL, work.resolve("a")).cacheDirectory(cacheDir).cacheBytes(fileSize / 2).build()) {
            Job job = stack.run(Stack.request(uri, stack.volume("budget"), image.virtualSize()));
            assertThat(job.errorCode()).as(job.errorMessage()).isEqualTo(ErrorCode.INSUFFICIENT_SPACE);
            Leftovers.assertNothingLeft(stack, POOL, job, List.of());
        }
        try (Stack stack = Stack.builder(POOL, work.resolve("b")).cacheDirectory(cacheDir).cacheBytes(fileSize * 2).build()) {
            Job job = stack.run(Stack.request(uri, stack.volume("budget"), image.virtualSize()));
            assertThat(job.state()).isEqualTo(JobState.COMPLETED);
            Volumes.assertHolds(POOL, stack.volume("budget"), image);
        }
    }

    private static void fill(Path file, long bytes) {
        byte[] block = new byte[(int) MIB];
        java.util.Arrays.fill(block, (byte) 0x5a);
        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
            for (long done = 0; done < bytes; done += block.length) {
                f.write(block, 0, (int) Math.min(block.length, bytes - done));
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
