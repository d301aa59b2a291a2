package org.volprov.cache;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Another process asking for a file's lock, as a second provisioner process would: a child JVM
 * that tries an exclusive lock on the file and prints {@code FREE} (it got it) or {@code HELD}.
 */
final class LockProbe {
    private LockProbe() {
    }

    /** Runs the probe in a child JVM; {@code FREE} or {@code HELD}. */
    static String tryLockFromAnotherProcess(Path file) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp", System.getProperty("java.class.path"), LockProbe.class.getName(), file.toString()))
                .redirectErrorStream(true).start();
        if (!p.waitFor(60, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("the lock probe did not finish");
        }
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
        if (p.exitValue() != 0) {
            throw new AssertionError("the lock probe failed: " + out);
        }
        return out;
    }

    public static void main(String[] args) throws IOException {
        try (FileChannel ch = FileChannel.open(Path.of(args[0]), StandardOpenOption.WRITE);
             FileLock lock = ch.tryLock()) {
            System.out.println(lock == null ? "HELD" : "FREE");
        }
    }
}
