package org.volprov.libvirt;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

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
    void isLocalUri_trueOnlyWithoutAnAuthority_andOverTheUnixSocket() {
        assertThat(LibvirtConfig.isLocal("qemu:///system")).isTrue();
        assertThat(LibvirtConfig.isLocal("qemu:///session")).isTrue();
        assertThat(LibvirtConfig.isLocal("qemu+unix:///system?socket=/run/x.sock")).isTrue();
        assertThat(LibvirtConfig.isLocal("QEMU+UNIX:///system")).isTrue();
        assertThat(LibvirtConfig.isLocal("qemu+ssh://root@kvm7/system")).isFalse();
        assertThat(LibvirtConfig.isLocal("qemu+tcp://10.0.0.5:16509/system")).isFalse();
        // When in doubt: remote (STREAM works everywhere).
        assertThat(LibvirtConfig.isLocal("qemu://localhost/system")).isFalse();
        assertThat(LibvirtConfig.isLocal("qemu+ssh:///system")).isFalse();
        assertThat(LibvirtConfig.isLocal("qemu+ext:///system?command=/opt/connect")).isFalse();
        assertThat(LibvirtConfig.isLocal("qemu:/system")).isFalse();
        assertThat(LibvirtConfig.isLocal("qemu:system")).isFalse();
    }

    @Test
    void isLocalUri_falseForAHostNameWithAnUnderscore_whichJavaNetUriCannotParse() {
        // java.net.URI reports a null host for hv_17: taken for "no host", the engine wrote a local path.
        assertThat(LibvirtConfig.isLocal("qemu+ssh://root@hv_17/system")).isFalse();
        assertThat(LibvirtConfig.isLocal("qemu+tcp://hv_17/system")).isFalse();
        assertThat(LibvirtConfig.isLocal("qemu://hv_17/system")).isFalse();
    }

    @Test
    void autoMode_onARemoteUriWithAnUnderscoreHost_streams_evenWhenThePathExistsHere(@TempDir Path dir) throws IOException {
        Path here = Files.createFile(dir.resolve("vm-1"));
        LibvirtConfig remote = LibvirtConfig.builder().uri("qemu+ssh://root@hv_17/system").poolName("vms").build();
        assertThat(LibvirtVolumeBackend.writeModeFor(remote, here.toString())).isEqualTo(WriteMode.STREAM);
        LibvirtConfig local = LibvirtConfig.builder().poolName("vms").build();
        assertThat(LibvirtVolumeBackend.writeModeFor(local, here.toString())).isEqualTo(WriteMode.LOCAL);
        assertThat(LibvirtVolumeBackend.writeModeFor(local, dir.resolve("missing").toString())).isEqualTo(WriteMode.STREAM);
    }

    @Test
    void toString_hidesAPasswordInTheUri() {
        LibvirtConfig c = LibvirtConfig.builder().uri("qemu+tcp://admin:s3cret@kvm7/system").poolName("vms").build();
        assertThat(c.toString()).doesNotContain("s3cret").contains("admin:****@kvm7");
        assertThat(c.isLocalUri()).isFalse();
    }

    @Test
    void badUri_messagesNeverEchoAPassword() {
        for (String uri : new String[] {"qemu+tcp://admin:hunter2@kvm 7/system", "//admin:hunter2@kvm7/system", "qemu+tcp://admin:hunter2@kvm7/sys tem",
                "qemu+tcp://admin:hunter2@[kvm7/system"}) {
            assertThatThrownBy(() -> LibvirtConfig.builder().uri(uri)).as(uri)
                    .hasMessageStartingWith("uri:")
                    .satisfies(e -> {
                        for (Throwable t = e; t != null; t = t.getCause()) {
                            assertThat(String.valueOf(t)).doesNotContain("hunter2");
                        }
                    });
        }
        LibvirtConfig c = LibvirtConfig.builder().uri("qemu+tcp://admin:hunter2@kvm7/system?password=hunter2")
                .poolName("vms").build();
        assertThat(c.redactedUri()).isEqualTo("qemu+tcp://admin:****@kvm7/system?password=****");
        assertThat(c.toString()).doesNotContain("hunter2");
    }
}
