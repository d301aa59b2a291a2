package org.volprov.it;

import static org.assertj.core.api.Assertions.assertThat;

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
import org.volprov.libvirt.testkit.LibvirtTestPool;

/** End to end: an image in S3 becomes a verified volume in a libvirt pool, recorded in the job store. */
@Tag(Category.FULL_PROVISIONING_WORKFLOW)
class FullProvisioningWorkflowIT {
    @RegisterExtension
    static final LibvirtTestPool POOL = new LibvirtTestPool();

    @TempDir
    Path work;

    enum Store { POSTGRESQL, SQLITE }

    static Stream<Arguments> images() {
        return Stream.of(
                Arguments.of(ImageSet.SMALL, Stack.Adapter.S3, Store.POSTGRESQL),
                Arguments.of(ImageSet.MEDIUM, Stack.Adapter.MINIO, Store.POSTGRESQL),
                Arguments.of(ImageSet.RAW, Stack.Adapter.S3, Store.SQLITE),
                Arguments.of(ImageSet.COMPRESSED, Stack.Adapter.MINIO, Store.POSTGRESQL));
    }

    @ParameterizedTest(name = "{0} via {1}, jobs in {2}")
    @MethodSource("images")
    void provision_completesThroughEveryStage_withVerifiedBytesAndRecord(ImageSet.Spec spec, Stack.Adapter adapter,
            Store storeKind) {
        TestImage image = ImageSet.get(spec);
        String uri = Uploads.uri(image);
        Stack.Builder builder = Stack.builder(POOL, work).adapter(adapter);
        JdbcJobStore sqlite = storeKind == Store.SQLITE ? JobStores.sqlite(work.resolve("jobs.db"), Stack.HOST) : null;
        if (sqlite != null) {
            builder.jobStore(sqlite);
        }
        try (sqlite; Stack stack = builder.build()) {
            String volume = stack.volume("full-" + spec.name());
            long size = image.virtualSize() + (64L << 20);
            String id = stack.engine.submit(Stack.request(uri, volume, size));
            Job job = stack.await(id);

            assertThat(job.state()).as("job %s: %s %s", id, job.errorCode(), job.errorMessage())
                    .isEqualTo(JobState.COMPLETED);
            assertThat(stack.stages(id)).containsExactly(Stage.RESOLVING, Stage.DOWNLOADING, Stage.VERIFYING,
                    Stage.CREATING_VOLUME, Stage.WRITING, Stage.FINALIZING);
            assertThat(progressOf(stack, id, Stage.DOWNLOADING)).as("download progress").isNotEmpty()
                    .last().isEqualTo(image.file().toFile().length());
            assertThat(progressOf(stack, id, Stage.WRITING)).as("write progress").isNotEmpty()
                    .isSorted().last().isEqualTo(size);
            Volumes.assertHolds(POOL, volume, image);

            Job stored = stack.store.find(id).orElseThrow();
            assertThat(JobStores.asStored(stored)).as("the job's record in " + storeKind).isEqualTo(JobStores.asStored(job));
            assertThat(stored.imageDigest()).isEqualTo(image.fileSha256());
            assertThat(stored.cacheHit()).isFalse();
            assertThat(stored.createdVolume()).isTrue();
            assertThat(stored.volumePath()).isEqualTo(Volumes.info(POOL, volume).path());
            assertThat(stored.finishedAt()).isNotNull().isAfterOrEqualTo(stored.startedAt());
        }
    }

    @Test
    void reprovision_ofAnExistingVolume_reusesItAndLeavesNoTraceOfTheOldImage() {
        TestImage first = ImageSet.get(ImageSet.RAW);
        TestImage second = ImageSet.get(ImageSet.COMPRESSED);
        try (Stack stack = Stack.builder(POOL, work).build()) {
            String volume = stack.volume("reprovision");
            long size = 160L << 20;
            Job a = stack.run(Stack.request(Uploads.uri(first), volume, size));
            assertThat(a.state()).isEqualTo(JobState.COMPLETED);
            Volumes.assertHolds(POOL, volume, first);

            Job b = stack.run(Stack.request(Uploads.uri(second), volume, size));
            assertThat(b.state()).as("%s %s", b.errorCode(), b.errorMessage()).isEqualTo(JobState.COMPLETED);
            assertThat(b.createdVolume()).as("the volume existed: reused, not created").isFalse();
            Volumes.assertHolds(POOL, volume, second);
        }
    }

    private static List<Long> progressOf(Stack stack, String id, Stage stage) {
        return stack.events.stream()
                .filter(e -> e.kind() == JobEvent.Kind.PROGRESS && e.job().id().equals(id) && e.job().stage() == stage)
                .map(e -> e.job().progress().bytesDone())
                .toList();
    }
}
