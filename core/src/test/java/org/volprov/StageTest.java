package org.volprov;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Instant;
import org.junit.jupiter.api.Test;
import org.volprov.job.JobJson;

class StageTest {

    @Test
    void parse_readsEveryStageByItsName() {
        for (Stage s : Stage.values()) {
            assertThat(Stage.parse(s.name())).isEqualTo(s);
        }
    }

    @Test
    void parse_readsTheEarlierNameOfInspecting_andRefusesAnUnknownOne() {
        assertThat(Stage.parse("VERIFYING")).isEqualTo(Stage.INSPECTING);
        assertThatThrownBy(() -> Stage.parse("CHECKING")).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void aJobRecordWrittenWithTheEarlierName_readsAsInspecting() {
        Instant t = Instant.parse("2026-01-01T00:00:00Z");
        Job job = Job.pending("j-1", ProvisionRequest.builder().imageUri("s3://images/disk.qcow2")
                .volumeName("vm-1").volumeSizeBytes(1L << 20).build(), t)
                .withProgress(new Progress(Stage.INSPECTING, 0, 0), t);
        String json = JobJson.writeJob(job);
        String old = json.replace("\"INSPECTING\"", "\"VERIFYING\"");
        assertThat(old).as("the record as an earlier version wrote it").isNotEqualTo(json);
        assertThat(JobJson.readJob(old)).isEqualTo(job);
    }
}
