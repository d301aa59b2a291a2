package org.volprov.contract;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.UUID;
import org.junit.jupiter.api.Test;
import org.volprov.ErrorCode;
import org.volprov.ImageFormat;
import org.volprov.Job;
import org.volprov.JobFilter;
import org.volprov.JobState;
import org.volprov.JobStore;
import org.volprov.Progress;
import org.volprov.ProvisionRequest;
import org.volprov.ProvisioningException;
import org.volprov.Stage;

/**
 * The behaviour every {@link JobStore} shares. An implementation's test extends this class and
 * returns a fresh, empty store from {@link #store()}.
 */
public abstract class JobStoreContract {

    /** An empty store, the same instance for the whole test method. */
    protected abstract JobStore store();

    /** Timestamps stored with millisecond precision at least. */
    protected static final Instant T0 = Instant.parse("2026-01-02T03:04:05.123Z");

    protected static Job newJob(String volume, Instant createdAt) {
        ProvisionRequest r = ProvisionRequest.builder()
                .imageUri("s3://images/ubuntu 24.04/disk.qcow2")
                .volumeName(volume)
                .volumeSizeBytes(10L << 30)
                .format(ImageFormat.QCOW2)
                .correlationId("corr-" + volume)
                .label("tenant", "t-1")
                .label("zone", "eu/west-1")
                .build();
        return Job.pending(UUID.randomUUID().toString(), r, createdAt);
    }

    @Test
    public void insert_thenFind_returnsEqualJob() {
        Job job = newJob("vm-1", T0);
        store().insert(job);
        assertThat(store().find(job.id())).contains(job);
    }

    @Test
    public void find_whenUnknown_isEmpty() {
        assertThat(store().find("no-such-job")).isEmpty();
    }

    @Test
    public void insert_whenIdTaken_failsWithBackendFailure() {
        Job job = newJob("vm-1", T0);
        store().insert(job);
        assertThatThrownBy(() -> store().insert(job))
                .isInstanceOf(ProvisioningException.class)
                .extracting(e -> ((ProvisioningException) e).code()).isEqualTo(ErrorCode.BACKEND_FAILURE);
    }

    @Test
    public void update_storesEveryField() {
        Job job = newJob("vm-2", T0);
        store().insert(job);
        Instant t1 = T0.plusSeconds(1);
        Job running = job.running(t1)
                .withProgress(new Progress(Stage.DOWNLOADING, 1234, 5678), t1)
                .withImage("a".repeat(64), true, t1)
                .withVolume("/var/lib/libvirt/images/vm-2", true, t1);
        store().update(running);
        assertThat(store().find(job.id())).contains(running);

        Job failed = running.finished(JobState.FAILED, ErrorCode.CHECKSUM_MISMATCH, "digest differs", t1.plusSeconds(2));
        store().update(failed);
        Job read = store().find(job.id()).orElseThrow();
        assertThat(read).isEqualTo(failed);
        assertThat(read.error()).contains(ErrorCode.CHECKSUM_MISMATCH);
    }

    @Test
    public void update_whenUnknown_failsWithBackendFailure() {
        Job job = newJob("vm-3", T0);
        assertThatThrownBy(() -> store().update(job))
                .isInstanceOf(ProvisioningException.class)
                .extracting(e -> ((ProvisioningException) e).code()).isEqualTo(ErrorCode.BACKEND_FAILURE);
    }

    @Test
    public void update_whenTerminal_neverMovesBack() {
        Job job = newJob("vm-4", T0);
        store().insert(job);
        Job done = job.running(T0).finished(JobState.COMPLETED, null, null, T0.plusSeconds(5));
        store().update(done);
        assertThatThrownBy(() -> store().update(done.running(T0.plusSeconds(6))))
                .isInstanceOf(ProvisioningException.class)
                .extracting(e -> ((ProvisioningException) e).code()).isEqualTo(ErrorCode.BACKEND_FAILURE);
        assertThatThrownBy(() -> store().update(done.finished(JobState.FAILED, ErrorCode.INTERRUPTED, "x",
                T0.plusSeconds(7))))
                .isInstanceOf(ProvisioningException.class);
        assertThat(store().find(job.id()).orElseThrow().state()).isEqualTo(JobState.COMPLETED);
    }

    @Test
    public void list_filtersByStateVolumeAndCorrelation_newestFirst_withinLimit() {
        Job a = newJob("vm-a", T0);
        Job b = newJob("vm-b", T0.plusSeconds(1));
        Job c = newJob("vm-c", T0.plusSeconds(2));
        store().insert(a);
        store().insert(b);
        store().insert(c);
        store().update(b.running(T0.plusSeconds(3)));

        assertThat(store().list(JobFilter.all())).extracting(Job::id).containsExactly(c.id(), b.id(), a.id());
        assertThat(store().list(JobFilter.all().withLimit(2))).extracting(Job::id).containsExactly(c.id(), b.id());
        assertThat(store().list(JobFilter.inStates(JobState.RUNNING))).extracting(Job::id).containsExactly(b.id());
        assertThat(store().list(JobFilter.all().withVolumeName("vm-a"))).extracting(Job::id).containsExactly(a.id());
        assertThat(store().list(JobFilter.all().withCorrelationId("corr-vm-c"))).extracting(Job::id)
                .containsExactly(c.id());
        assertThat(store().list(JobFilter.inStates(JobState.COMPLETED))).isEmpty();
    }

    @Test
    public void unfinished_returnsPendingAndRunning_oldestFirst() {
        Job a = newJob("vm-a", T0);
        Job b = newJob("vm-b", T0.plusSeconds(1));
        Job c = newJob("vm-c", T0.plusSeconds(2));
        store().insert(a);
        store().insert(b);
        store().insert(c);
        store().update(a.running(T0.plusSeconds(3)));
        store().update(c.running(T0.plusSeconds(3)).finished(JobState.CANCELLED, ErrorCode.CANCELLED, "by user",
                T0.plusSeconds(4)));

        List<Job> unfinished = store().unfinished();
        assertThat(unfinished).extracting(Job::id).containsExactly(a.id(), b.id());
        assertThat(unfinished.get(0).state()).isEqualTo(JobState.RUNNING);
    }

    @Test
    public void find_keepsTimestampsToTheMillisecond() {
        Instant odd = T0.plus(987, ChronoUnit.MILLIS);
        Job job = newJob("vm-t", odd);
        store().insert(job);
        assertThat(store().find(job.id()).orElseThrow().createdAt()).isEqualTo(odd);
    }
}
