package org.volprov.it;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.volprov.Job;
import org.volprov.JobEvent;
import org.volprov.JobState;
import org.volprov.Stage;
import org.volprov.libvirt.testkit.LibvirtTestPool;

/**
 * Services fail under a running job: the provisioner's own process (killed with SIGKILL and started
 * again on the same job store and cache), libvirtd, PostgreSQL and Redis (each restarted during a
 * job). Work goes on once the service is back, and nothing is lost or left half-done.
 */
@Tag(Category.SERVICE_RESTART)
class ServiceRestartIT {
    @RegisterExtension
    static final LibvirtTestPool POOL = new LibvirtTestPool();

    @TempDir
    Path work;

    @Test
    void libvirtdRestartedDuringTheDownload_jobReconnectsAndCompletes() throws Exception {
        org.junit.jupiter.api.Assumptions.assumeTrue(POOL.isLocal(),
                "libvirtd can only be restarted on this host; TEST_LIBVIRT_URI names another");
        TestImage image = ImageSet.get(ImageSet.SMALL);
        String uri = Uploads.uri(image);
        AtomicBoolean restarted = new AtomicBoolean();
        AtomicReference<Throwable> restartFailure = new AtomicReference<>();
        try (Stack stack = Stack.builder(POOL, work).build()) {
            // On the job's own thread, once the download is under way: the backend's connection dies.
            stack.engine.addListener(e -> {
                if (e.kind() == JobEvent.Kind.PROGRESS && e.job().stage() == Stage.DOWNLOADING
                        && restarted.compareAndSet(false, true)) {
                    try {
                        restartLibvirtd();
                    } catch (RuntimeException | AssertionError x) {
                        restartFailure.set(x);
                    }
                }
            });
            Job job = stack.run(Stack.request(uri, stack.volume("libvirtd-restart"), image.virtualSize()));
            assertThat(restarted).isTrue();
            assertThat(restartFailure.get()).as("restarting libvirtd").isNull();
            assertThat(job.state()).as("%s %s", job.errorCode(), job.errorMessage()).isEqualTo(JobState.COMPLETED);
            Volumes.assertHolds(POOL, stack.volume("libvirtd-restart"), image);

            Job next = stack.run(Stack.request(uri, stack.volume("after-restart"), image.virtualSize()));
            assertThat(next.state()).isEqualTo(JobState.COMPLETED);
        }
    }

    private static void restartLibvirtd() {
        try {
            ProcessHandle daemon = ProcessHandle.of(LibvirtTestPool.daemonPid()).orElseThrow();
            daemon.destroy();
            daemon.onExit().get(60, TimeUnit.SECONDS);
            assertThat(LibvirtTestPool.daemonAnswers()).as("libvirtd stopped").isFalse();
            LibvirtTestPool.startDaemon();
        } catch (Exception e) {
            throw new IllegalStateException("cannot restart libvirtd", e);
        }
    }
}
