package org.volprov.it;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.volprov.Job;
import org.volprov.JobEvent;
import org.volprov.JobState;
import org.volprov.Stage;
import org.volprov.jdbc.JdbcJobStore;
import org.volprov.libvirt.WriteMode;
import org.volprov.libvirt.testkit.LibvirtTestPool;
import org.volprov.testing.LoopDevice;
import org.volprov.volume.VolumeInfo;

/**
 * End to end: an image in S3 becomes a verified volume in a libvirt pool, recorded in the job store;
 * on a {@code dir} pool, on a {@code disk} pool (thick partitions of a loop device that hold an
 * earlier tenant's bytes), and on volumes reached through symlinks to partitions, as LVM presents them.
 */
@Tag(Category.FULL_PROVISIONING_WORKFLOW)
class FullProvisioningWorkflowIT {
    @RegisterExtension
    static final LibvirtTestPool POOL = new LibvirtTestPool();
    @RegisterExtension
    static final LibvirtTestPool DISK = LibvirtTestPool.disk(512L << 20);
    @RegisterExtension
    static final LibvirtTestPool LINKED = LibvirtTestPool.linked(256L << 20);

    @TempDir
    Path work;

    enum Store { POSTGRESQL, SQLITE }

    static Stream<Arguments> images() {
        return Stream.of(
                Arguments.of(POOL, ImageSet.SMALL, Stack.Adapter.S3, Store.POSTGRESQL, WriteMode.AUTO),
                Arguments.of(POOL, ImageSet.MEDIUM, Stack.Adapter.MINIO, Store.POSTGRESQL, WriteMode.AUTO),
                Arguments.of(POOL, ImageSet.RAW, Stack.Adapter.S3, Store.SQLITE, WriteMode.AUTO),
                Arguments.of(POOL, ImageSet.COMPRESSED, Stack.Adapter.MINIO, Store.POSTGRESQL, WriteMode.AUTO),
                // Small images on the partitions: their nature is the point, not their size.
                Arguments.of(DISK, ImageSet.SMALL, Stack.Adapter.S3, Store.POSTGRESQL, WriteMode.AUTO),
                Arguments.of(DISK, ImageSet.RAW, Stack.Adapter.MINIO, Store.SQLITE, WriteMode.AUTO),
                Arguments.of(DISK, ImageSet.COMPRESSED, Stack.Adapter.S3, Store.POSTGRESQL, WriteMode.STREAM));
    }

    @ParameterizedTest(name = "on {0}: {1} via {2}, jobs in {3}, {4} writes")
    @MethodSource("images")
    void provision_completesThroughEveryStage_withVerifiedBytesAndRecord(LibvirtTestPool pool, ImageSet.Spec spec,
            Stack.Adapter adapter, Store storeKind, WriteMode mode) throws IOException {
        TestImage image = ImageSet.get(spec);
        String uri = Uploads.uri(image);
        Stack.Builder builder = Stack.builder(pool, work).adapter(adapter).writeMode(mode);
        JdbcJobStore sqlite = storeKind == Store.SQLITE ? JobStores.sqlite(work.resolve("jobs.db"), Stack.HOST) : null;
        if (sqlite != null) {
            builder.jobStore(sqlite);
        }
        try (sqlite; Stack stack = builder.build()) {
            String volume = stack.volume("full-" + spec.name());
            long size = image.virtualSize() + (64L << 20);
            if (pool.blockDevices()) {
                assertThat(pool.loopDevice().freeSpaceHoldsTenantPattern())
                        .as("the space the new partition takes holds an earlier tenant's bytes").isTrue();
            }
            String id = stack.engine.submit(Stack.request(uri, volume, size));
            Job job = stack.await(id);

            assertThat(job.state()).as("job %s: %s %s", id, job.errorCode(), job.errorMessage())
                    .isEqualTo(JobState.COMPLETED);
            assertThat(stack.stages(id)).containsExactly(Stage.RESOLVING, Stage.DOWNLOADING, Stage.INSPECTING,
                    Stage.CREATING_VOLUME, Stage.WRITING, Stage.FINALIZING);
            assertThat(progressOf(stack, id, Stage.DOWNLOADING)).as("download progress").isNotEmpty()
                    .last().isEqualTo(image.file().toFile().length());
            assertThat(progressOf(stack, id, Stage.WRITING)).as("write progress").isNotEmpty()
                    .isSorted().last().isEqualTo(size);
            Volumes.assertHolds(pool, volume, image);

            Job stored = stack.store.find(id).orElseThrow();
            assertThat(JobStores.asStored(stored)).as("the job's record in " + storeKind).isEqualTo(JobStores.asStored(job));
            assertThat(stored.imageDigest()).isEqualTo(image.fileSha256());
            assertThat(stored.cacheHit()).isFalse();
            assertThat(stored.createdVolume()).isTrue();
            assertThat(stored.volumePath()).isEqualTo(Volumes.info(pool, volume).path());
            assertThat(stored.finishedAt()).isNotNull().isAfterOrEqualTo(stored.startedAt());
        }
    }

    static Stream<LibvirtTestPool> pools() {
        return Stream.of(POOL, DISK);
    }

    @ParameterizedTest(name = "on {0}")
    @MethodSource("pools")
    void reprovision_ofAnExistingVolume_reusesItAndLeavesNoTraceOfTheOldImage(LibvirtTestPool pool) {
        TestImage first = ImageSet.get(ImageSet.RAW);
        TestImage second = ImageSet.get(ImageSet.COMPRESSED);
        try (Stack stack = Stack.builder(pool, work).build()) {
            String volume = stack.volume("reprovision");
            long size = 160L << 20;
            Job a = stack.run(Stack.request(Uploads.uri(first), volume, size));
            assertThat(a.state()).as("%s %s", a.errorCode(), a.errorMessage()).isEqualTo(JobState.COMPLETED);
            Volumes.assertHolds(pool, volume, first);

            Job b = stack.run(Stack.request(Uploads.uri(second), volume, size));
            assertThat(b.state()).as("%s %s", b.errorCode(), b.errorMessage()).isEqualTo(JobState.COMPLETED);
            assertThat(b.createdVolume()).as("the volume existed: reused, not created").isFalse();
            Volumes.assertHolds(pool, volume, second);
        }
    }

    static Stream<LibvirtTestPool> blockPools() {
        return Stream.of(DISK, LINKED);
    }

    /**
     * A volume an earlier tenant filled end to end (a partition, or a partition behind a symlink as
     * an LV is), reprovisioned with an image that covers 100 of its 160 MiB: every byte past the image reads as zero.
     */
    @ParameterizedTest(name = "on {0}")
    @MethodSource("blockPools")
    void reprovision_ofAVolumeHoldingAnEarlierTenantsBytes_leavesOnlyTheImageAndZeros(LibvirtTestPool pool)
            throws IOException {
        TestImage image = ImageSet.get(ImageSet.SMALL);
        VolumeInfo old = pool.existingVolume("tenant", 160L << 20);
        assertThat(LoopDevice.holdsTenantPattern(Path.of(old.path()), pool.partitionOf(old).start(), 0, old.capacityBytes()))
                .isTrue();
        try (Stack stack = Stack.builder(pool, work).build()) {
            Job job = stack.run(Stack.request(Uploads.uri(image), old.name(), old.capacityBytes()));
            assertThat(job.state()).as("%s %s", job.errorCode(), job.errorMessage()).isEqualTo(JobState.COMPLETED);
            assertThat(job.createdVolume()).isFalse();
            assertThat(job.volumePath()).isEqualTo(old.path());
            Volumes.assertHolds(pool, old.name(), image);
        }
        if (pool.kind() == LibvirtTestPool.Kind.LINKED) {
            assertThat(Files.isSymbolicLink(Path.of(old.path()))).as("the volume is still a link to its partition").isTrue();
        }
    }

    private static List<Long> progressOf(Stack stack, String id, Stage stage) {
        return stack.events.stream()
                .filter(e -> e.kind() == JobEvent.Kind.PROGRESS && e.job().id().equals(id) && e.job().stage() == stage)
                .map(e -> e.job().progress().bytesDone())
                .toList();
    }
}
