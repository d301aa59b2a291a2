package org.volprov.libvirt;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class PoolXmlTest {
    // As libvirt 9.0 describes a disk pool on a GPT-labelled loop device with one partition.
    private static final String DISK = """
            <pool type='disk'>
              <name>bd</name>
              <capacity unit='bytes'>67091968</capacity>
              <source>
                <device path='/run/volprov/loop0p'>
                  <freeExtent start='17408' end='10503168'/>
                  <freeExtent start='20988928' end='67091968'/>
                </device>
                <format type='gpt'/>
              </source>
              <target><path>/dev</path></target>
            </pool>
            """;

    @Test
    void parse_readsTypeDeviceFormatAndFreeExtents() {
        PoolXml p = PoolXml.parse(DISK);
        assertThat(p.type()).isEqualTo("disk");
        assertThat(p.sourceDevices()).containsExactly("/run/volprov/loop0p");
        assertThat(p.format()).contains("gpt");
        assertThat(p.freeExtents()).containsExactly(new PoolXml.Extent(17408, 10503168), new PoolXml.Extent(20988928, 67091968));
        assertThat(p.largestFreeExtent()).isEqualTo(67091968 - 20988928);
        assertThat(p.targetPath()).contains("/dev");
    }

    @Test
    void parse_ofADirPool_hasNoDeviceNorExtents() {
        PoolXml p = PoolXml.parse("<pool type=\"dir\"><name>d</name><target><path>/x</path></target></pool>");
        assertThat(p.type()).isEqualTo("dir");
        assertThat(p.sourceDevices()).isEmpty();
        assertThat(p.format()).isEmpty();
        assertThat(p.largestFreeExtent()).isZero();
        assertThat(p.targetPath()).contains("/x");
    }

    @Test
    void parse_refusesWhatIsNotAPoolDescription() {
        for (String bad : List.of("<pool><name>x</name></pool>", "<volume type='dir'/>", "not xml", "<pool type='a b'/>",
                "<!DOCTYPE pool [<!ENTITY x SYSTEM 'file:///etc/passwd'>]><pool type='dir'>&x;</pool>")) {
            assertThatThrownBy(() -> PoolXml.parse(bad)).as(bad).isInstanceOf(IllegalArgumentException.class);
        }
        assertThatThrownBy(() -> PoolXml.parse("<pool type='dir'>" + " ".repeat(2 << 20) + "</pool>"))
                .isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void parse_dropsValuesThatAreNotWhatLibvirtWrites() {
        PoolXml p = PoolXml.parse("""
                <pool type='disk'><source>
                  <device path='relative/loop0'><freeExtent start='-1' end='9'/><freeExtent start='9' end='3'/>
                    <freeExtent start='1' end='99999999999999999999'/></device>
                  <format type='g p t'/>
                </source></pool>""");
        assertThat(p.sourceDevices()).isEmpty();
        assertThat(p.freeExtents()).isEmpty();
        assertThat(p.format()).isEqualTo(Optional.empty());
    }
}
