package org.volprov.libvirt;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DiskPartitionsTest {
    private static PoolXml disk(String device, String format) {
        return new PoolXml("disk", List.of(device), Optional.ofNullable(format), List.of(), Optional.of("/dev"));
    }

    private static Optional<String> next(String device, String format, List<String> volumes, String deviceName) {
        return DiskPartitions.nextName(disk(device, format), volumes, Optional.ofNullable(deviceName));
    }

    @Test
    void nextName_followsTheKernelsNamesAndTheLowestFreeNumber() {
        assertThat(next("/dev/sdb", "gpt", List.of(), "sdb")).contains("sdb1");
        assertThat(next("/dev/loop0", "gpt", List.of(), "loop0")).contains("loop0p1");
        assertThat(next("/dev/nvme0n1", "gpt", List.of(), "nvme0n1")).contains("nvme0n1p1");
        assertThat(next("/dev/loop0", "gpt", List.of("loop0p2", "loop0p3"), "loop0")).contains("loop0p1");
        assertThat(next("/dev/sdb", "gpt", List.of("sdb1", "sdb2", "sdb4"), "sdb")).contains("sdb3");
        assertThat(next("/dev/sdb", "dos", List.of("sdb1", "sdb3"), "sdb")).contains("sdb2");
    }

    @Test
    void nextName_fromTheVolumes_whenTheDevicesNameIsNotKnown() {
        // The link's name says nothing; libvirt's names of the partitions do.
        assertThat(next("/run/volprov/loop3p", "gpt", List.of("loop3p1"), null)).contains("loop3p2");
        assertThat(next("/dev/disk/by-id/wwn-0x5", "gpt", List.of("sdc1"), null)).contains("sdc2");
    }

    @Test
    void nextName_isUnknown_whenItCannotBeTold() {
        assertThat(next("/dev/disk/by-id/wwn-0x5", "gpt", List.of(), null)).isEmpty();
        assertThat(next("/dev/sdb", "dos", List.of("sdb1", "sdb2", "sdb3", "sdb4"), "sdb"))
                .as("a DOS label's primaries are used: a logical partition would follow").isEmpty();
        assertThat(next("/dev/sdb", "mac", List.of(), "sdb")).isEmpty();
        assertThat(next("/dev/sdb", "gpt", List.of("sdb1", "other"), "sdb")).isEmpty();
        assertThat(DiskPartitions.nextName(new PoolXml("disk", List.of(), Optional.of("gpt"), List.of(), Optional.of("/dev")), List.of(),
                Optional.of("sdb"))).isEmpty();
    }

    @Test
    void deviceName_resolvesALinkOnThisHost_andTakesOnlyANodeUnderDevFromElsewhere(@TempDir Path dir) throws IOException {
        Path link = Files.createSymbolicLink(dir.resolve("loop9p"), Path.of("/dev/null"));
        assertThat(DiskPartitions.deviceName(disk(link.toString(), "gpt"), true)).contains("null");
        assertThat(DiskPartitions.deviceName(disk(link.toString(), "gpt"), false)).isEmpty();
        assertThat(DiskPartitions.deviceName(disk("/dev/sdb", "gpt"), false)).contains("sdb");
        assertThat(DiskPartitions.deviceName(disk("/dev/disk/by-id/wwn-0x5", "gpt"), false)).isEmpty();
        assertThat(DiskPartitions.deviceName(disk(dir.resolve("missing").toString(), "gpt"), true)).isEmpty();
    }

    @Test
    void canDelete_notOnADeviceWhoseNameEndsInADigit() {
        assertThat(DiskPartitions.canDelete(disk("/dev/sdb", "gpt"))).isTrue();
        assertThat(DiskPartitions.canDelete(disk("/run/volprov/loop0p", "gpt"))).isTrue();
        assertThat(DiskPartitions.canDelete(disk("/dev/loop0", "gpt"))).isFalse();
        assertThat(DiskPartitions.canDelete(disk("/dev/nvme0n1", "gpt"))).isFalse();
    }

    @Test
    void capacityFor_roundsUpToWholeSectors() {
        assertThat(DiskPartitions.capacityFor(10_000_000)).isEqualTo(10_000_384);
        assertThat(DiskPartitions.capacityFor(10L << 20)).isEqualTo(10L << 20);
        assertThat(DiskPartitions.capacityFor(1)).isEqualTo(512);
        assertThat(DiskPartitions.capacityFor(Long.MAX_VALUE)).isEqualTo(Long.MAX_VALUE);
    }

    @Test
    void expectedName_readsLibvirtsRefusal() {
        assertThat(DiskPartitions.expectedName("invalid argument: invalid partition name 'vm-1', expected 'loop0p1'"))
                .contains("loop0p1");
        assertThat(DiskPartitions.expectedName("storage volume 'x' exists already")).isEmpty();
        assertThat(DiskPartitions.expectedName(null)).isEmpty();
    }
}
