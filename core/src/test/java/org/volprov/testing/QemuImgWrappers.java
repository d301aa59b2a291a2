package org.volprov.testing;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.Optional;

/**
 * Real qemu-img behind a small shell script, for tests that need a qemu-img caught in the act: one
 * that stops itself (SIGSTOP) before it runs a given command, so that it can only end by being
 * killed, or one that runs a command slowly (qemu-img's own rate limit).
 */
public final class QemuImgWrappers {
    private QemuImgWrappers() {
    }

    /** A qemu-img that stops itself before running {@code command} ({@code info}, {@code check}, {@code convert}). */
    public static Path stoppingBefore(Path dir, String command) throws IOException {
        return script(dir.resolve("qemu-img-stopping-" + command), "case \"$1\" in " + command
                + ") kill -STOP $$ ;; esac\nexec qemu-img \"$@\"\n");
    }

    /** A qemu-img whose {@code convert} writes at most {@code bytesPerSecond}. */
    public static Path slowConvert(Path dir, long bytesPerSecond) throws IOException {
        return script(dir.resolve("qemu-img-slow-convert"), "if [ \"$1\" = convert ]; then shift; exec qemu-img convert -r "
                + bytesPerSecond + " \"$@\"; fi\nexec qemu-img \"$@\"\n");
    }

    /** A shell script {@code file} with {@code body}, executable; the body ends by exec'ing qemu-img. */
    public static Path script(Path file, String body) throws IOException {
        Files.createDirectories(file.getParent());
        Files.writeString(file, "#!/bin/sh\n" + body, StandardCharsets.US_ASCII);
        Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rwxr-xr-x"));
        return file;
    }

    /** The descendant of this JVM running {@code script} that has stopped itself, waiting up to {@code timeout}. */
    public static ProcessHandle awaitStopped(Path script, Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            Optional<ProcessHandle> stopped = ProcessHandle.current().descendants()
                    .filter(h -> h.info().commandLine().map(c -> c.contains(script.toString())).orElse(false))
                    .filter(QemuImgWrappers::isStopped)
                    .findFirst();
            if (stopped.isPresent()) {
                return stopped.get();
            }
            if (System.nanoTime() - deadline > 0) {
                throw new AssertionError("no stopped process of " + script + " within " + timeout);
            }
            Thread.sleep(10);
        }
    }

    /** Whether the process is stopped (state T in {@code /proc/<pid>/stat}). */
    public static boolean isStopped(ProcessHandle h) {
        try {
            String stat = Files.readString(Path.of("/proc", Long.toString(h.pid()), "stat"));
            return stat.substring(stat.lastIndexOf(')') + 2).startsWith("T");
        } catch (IOException e) {
            return false;
        }
    }
}
