package org.volprov.libvirt;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class DiskPartitionsTest {
    private static PoolXml disk(String device, String format) {
        return new PoolXml("disk", List.of(device), Optional.ofNullable(format), List.of());
    }

    @Test
    void nextName_followsTheKernelsNamesAndTheLowestFreeNumber() {
        assertThat(DiskPartitions.nextName(disk("/dev/sdb", "gpt"), List.of(), false)).contains("sdb1");
        assertThat(DiskPartitions.nextName(disk("/dev/loop0", "gpt"), List.of(), false)).contains("loop0p1");
        assertThat(DiskPartitions.nextName(disk("/dev/nvme0n1", "gpt"), List.of(), false)).contains("nvme0n1p1");
        assertThat(DiskPartitions.nextName(disk("/dev/loop0", "gpt"), List.of("loop0p2", "loop0p3"), false)).contains("loop0p1");
        assertThat(DiskPartitions.nextName(disk("/dev/sdb", "gpt"), List.of("sdb1", "sdb2", "sdb4"), false)).contains("sdb3");
        assertThat(DiskPartitions.nextName(disk("/dev/sdb", "dos"), List.of("sdb1", "sdb3"), false)).contains("sdb2");
    }

    @Test
    void nextName_fromTheVolumes_whenTheDeviceIsGivenThroughALink() {
        // The link's name says nothing; libvirt's names of the partitions do.
        assertThat(DiskPartitions.nextName(disk("/run/volprov/loop3p", "gpt"), List.of("loop3p1"), true)).contains("loop3p2");
        assertThat(DiskPartitions.nextName(disk("/dev/disk/by-id/wwn-0x5", "gpt"), List.of("sdc1"), false)).contains("sdc2");
    }

    @Test
    void nextName_isUnknown_whenItCannotBeTold() {
        assertThat(DiskPartitions.nextName(disk("/run/volprov/loop3p", "gpt"), List.of(), false)).isEmpty();
        assertThat(DiskPartitions.nextName(disk("/dev/disk/by-id/wwn-0x5", "gpt"), List.of(), false)).isEmpty();
        assertThat(DiskPartitions.nextName(disk("/dev/vmdisk", "gpt"), List.of(), true)).as("a link directly in /dev").isEmpty();
        assertThat(DiskPartitions.nextName(disk("/dev/sdb", "dos"), List.of("sdb1", "sdb2", "sdb3", "sdb4"), false))
                .as("a DOS label's primaries are used: a logical partition would follow").isEmpty();
        assertThat(DiskPartitions.nextName(disk("/dev/sdb", "mac"), List.of(), false)).isEmpty();
        assertThat(DiskPartitions.nextName(disk("/dev/sdb", "gpt"), List.of("sdb1", "other"), false)).isEmpty();
        assertThat(DiskPartitions.nextName(new PoolXml("disk", List.of(), Optional.of("gpt"), List.of()), List.of(), false))
                .isEmpty();
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
