package org.volprov.libvirt;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;

class LibvirtConfigTest {

    @Test
    void build_withOnlyPool_usesDefaults() {
        LibvirtConfig c = LibvirtConfig.builder().poolName("vms").build();
        assertThat(c.uri()).isEqualTo("qemu:///system");
        assertThat(c.writeMode()).isEqualTo(WriteMode.AUTO);
        assertThat(c.definePoolAt()).isEmpty();
        assertThat(c.isLocalUri()).isTrue();
    }

    @Test
    void build_withoutPool_failsNamingPoolName() {
        assertThatThrownBy(() -> LibvirtConfig.builder().build()).hasMessageStartingWith("poolName:");
    }

    @Test
    void setters_refuseBadValues_namingTheField() {
        assertThatThrownBy(() -> LibvirtConfig.builder().poolName("a/b")).hasMessageStartingWith("poolName:");
        assertThatThrownBy(() -> LibvirtConfig.builder().poolName(" ")).hasMessageStartingWith("poolName:");
        assertThatThrownBy(() -> LibvirtConfig.builder().poolName("a\nb")).hasMessageStartingWith("poolName:");
        assertThatThrownBy(() -> LibvirtConfig.builder().uri("no scheme")).hasMessageStartingWith("uri:");
        assertThatThrownBy(() -> LibvirtConfig.builder().uri("/just/a/path")).hasMessageStartingWith("uri:");
        assertThatThrownBy(() -> LibvirtConfig.builder().definePoolAt(Path.of("relative"))).hasMessageStartingWith("definePoolAt:");
        assertThatThrownBy(() -> LibvirtConfig.builder().writeMode(null)).hasMessage("writeMode");
    }

    @Test
    void isLocalUri_trueOnlyWithoutHost() {
        assertThat(LibvirtConfig.isLocal("qemu:///system")).isTrue();
        assertThat(LibvirtConfig.isLocal("qemu+unix:///system?socket=/run/x.sock")).isTrue();
        assertThat(LibvirtConfig.isLocal("qemu+ssh://root@kvm7/system")).isFalse();
        assertThat(LibvirtConfig.isLocal("qemu+tcp://10.0.0.5:16509/system")).isFalse();
    }

    @Test
    void toString_hidesAPasswordInTheUri() {
        LibvirtConfig c = LibvirtConfig.builder().uri("qemu+tcp://admin:s3cret@kvm7/system").poolName("vms").build();
        assertThat(c.toString()).doesNotContain("s3cret").contains("admin:****@kvm7");
        assertThat(c.isLocalUri()).isFalse();
    }
}
