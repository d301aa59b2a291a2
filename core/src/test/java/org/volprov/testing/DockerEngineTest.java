package org.volprov.testing;

import static org.assertj.core.api.Assertions.assertThat;

import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DockerEngineTest {
    @TempDir
    Path dir;

    @Test
    void probe_whenNothingIsConfiguredAndNoSocketExists_findsNoneAndNamesWhatItTried() {
        DockerEngine.Probe p = DockerEngine.probe(null, List.of(dir.resolve("a.sock"), dir.resolve("b.sock")));

        assertThat(p.found()).isFalse();
        assertThat(p.detail()).startsWith("DOCKER_HOST unset").contains("a.sock").contains("b.sock");
    }

    @Test
    void probe_whenASocketListens_findsIt() throws Exception {
        Path socket = dir.resolve("docker.sock");
        try (ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            server.bind(UnixDomainSocketAddress.of(socket));

            DockerEngine.Probe p = DockerEngine.probe(null, List.of(dir.resolve("missing.sock"), socket));

            assertThat(p.found()).isTrue();
            assertThat(p.detail()).isEqualTo("unix://" + socket);
        }
    }

    @Test
    void probe_whenASocketFileIsLeftButNothingListens_findsNone() throws Exception {
        Path socket = dir.resolve("stale.sock");
        try (ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            server.bind(UnixDomainSocketAddress.of(socket));
        }
        assertThat(socket).exists();

        DockerEngine.Probe p = DockerEngine.probe(null, List.of(socket));

        assertThat(p.found()).isFalse();
        assertThat(p.detail()).contains("nothing answers at " + socket);
    }

    @Test
    void probe_whenDockerHostIsTcp_connectsToItOnly() throws Exception {
        try (ServerSocket server = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            String host = "tcp://127.0.0.1:" + server.getLocalPort();

            assertThat(DockerEngine.probe(host, List.of()).found()).isTrue();
        }
        int closed;
        try (ServerSocket free = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            closed = free.getLocalPort();
        }
        DockerEngine.Probe refused = DockerEngine.probe("tcp://127.0.0.1:" + closed, List.of());
        assertThat(refused.found()).isFalse();
        assertThat(refused.detail()).startsWith("nothing answers at tcp://127.0.0.1:" + closed);
    }

    @Test
    void probe_whenDockerHostHasASchemeItCannotTry_leavesItToTestcontainers() {
        assertThat(DockerEngine.probe("npipe:////./pipe/docker_engine", List.of()).found()).isTrue();
    }

    @Test
    void configuredHost_prefersDockerHostOverTheTestcontainersProperties() throws Exception {
        Files.writeString(dir.resolve(".testcontainers.properties"), "docker.host=unix:///srv/docker.sock\n");

        assertThat(DockerEngine.configuredHost(Map.of("DOCKER_HOST", "tcp://10.0.0.1:2375"), dir))
                .isEqualTo("tcp://10.0.0.1:2375");
        assertThat(DockerEngine.configuredHost(Map.of(), dir)).isEqualTo("unix:///srv/docker.sock");
        assertThat(DockerEngine.configuredHost(Map.of(), dir.resolve("nobody"))).isNull();
    }

    @Test
    void defaultSockets_includeDockerDesktopAndRootlessDockerWhereTheirDirectoriesAreKnown() {
        assertThat(DockerEngine.defaultSockets(Map.of("HOME", "/home/u", "XDG_RUNTIME_DIR", "/run/user/1000")))
                .containsExactly(Path.of("/var/run/docker.sock"), Path.of("/home/u/.docker/run/docker.sock"),
                        Path.of("/home/u/.docker/desktop/docker.sock"), Path.of("/run/user/1000/docker.sock"));
        assertThat(DockerEngine.defaultSockets(Map.of())).containsExactly(Path.of("/var/run/docker.sock"));
    }
}
