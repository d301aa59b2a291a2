package org.volprov.image;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.volprov.Cancellation;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;

/**
 * One running qemu-img, bounded: started under its limits, marked with this JVM's identity, killed
 * when the cancellation fires, its error output read (up to the cap) on a thread of its own.
 * Closing kills it if it still runs. Used by one thread.
 */
final class QemuImgProcess implements AutoCloseable {
    private static final long DRAIN_JOIN_MILLIS = 10_000;

    private final String what;
    private final int maxOutputBytes;
    private final Process process;
    private final Drain err;
    private final Cancellation.AutoCloseableAction kill;

    /**
     * @param qemuImg the qemu-img to run: a path, or a name looked up on the {@code PATH}
     * @param what names the command in messages, e.g. {@code "qemu-img check"}
     * @param limited whether {@code limits} is a {@code prlimit} prefix
     */
    QemuImgProcess(String qemuImg, String what, List<String> limits, boolean limited, List<String> args,
            int maxOutputBytes, Cancellation cancellation) {
        this.what = what;
        this.maxOutputBytes = maxOutputBytes;
        // Looked up here rather than left to prlimit, which would report a missing qemu-img as a
        // failure of the image.
        String found = executable(qemuImg);
        if (found == null) {
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "cannot run " + qemuImg
                    + ": not found (install qemu-utils)");
        }
        List<String> cmd = new ArrayList<>(limits);
        cmd.add(found);
        cmd.addAll(args);
        ProcessBuilder pb = new ProcessBuilder(cmd);
        Map<String, String> env = pb.environment();
        // Stable messages: the no-space check reads them.
        env.put("LC_ALL", "C");
        if (limited) {
            // A few malloc arenas, so that the address-space limit bounds what the image makes
            // qemu-img allocate rather than the number of cores (an arena per thread otherwise).
            env.put("MALLOC_ARENA_MAX", "4");
        }
        QemuImgChildren.mark().ifPresent(m -> env.put(QemuImgChildren.VARIABLE, m));
        try {
            this.process = pb.start();
        } catch (IOException e) {
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "cannot run " + cmd.get(0) + ": "
                    + e.getMessage(), e);
        }
        this.kill = cancellation.onCancel(process::destroyForcibly);
        this.err = new Drain(process.getErrorStream(), maxOutputBytes, process, what);
    }

    /** The standard output, to be read by the caller. */
    InputStream stdout() {
        return process.getInputStream();
    }

    /** Reads the standard output on a thread of its own, up to the cap, as {@link #stderr()} is read. */
    Drain drainStdout() {
        return new Drain(process.getInputStream(), maxOutputBytes, process, what);
    }

    /** What qemu-img wrote on its error output, once it ended. */
    String stderr() {
        return err.text();
    }

    int exitValue() {
        return process.exitValue();
    }

    /**
     * Waits for qemu-img, at most {@code timeout} (null: as long as it runs); whether it ended. One
     * that did not end in time is killed.
     */
    boolean waitFor(Duration timeout) {
        try {
            if (timeout == null) {
                process.waitFor();
                return true;
            }
            if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                process.destroyForcibly();
                return false;
            }
            return true;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            process.destroyForcibly();
            throw new ProvisioningException(ErrorCode.INTERRUPTED, "interrupted while qemu-img ran", e);
        }
    }

    /** Refuses the image when qemu-img printed more than the cap on stderr or {@code out}. */
    void refuseOverflow(Drain out) {
        if (err.overflowed || (out != null && out.overflowed)) {
            throw new ProvisioningException(ErrorCode.UNSUPPORTED_IMAGE, what + " printed more than "
                    + maxOutputBytes + " bytes about the image, and was stopped: the image is refused");
        }
    }

    @Override
    public void close() {
        kill.close();
        process.destroyForcibly();
    }

    /** {@code name} as it will run: a path, or the first executable of that name on the {@code PATH}; null when there is none. */
    static String executable(String name) {
        if (name.contains(File.separator)) {
            return Files.isExecutable(Path.of(name)) ? name : null;
        }
        String path = System.getenv("PATH");
        if (path == null) {
            return null;
        }
        for (String dir : path.split(File.pathSeparator)) {
            if (!dir.isEmpty() && Files.isExecutable(Path.of(dir, name))) {
                return Path.of(dir, name).toString();
            }
        }
        return null;
    }

    /**
     * Reads a stream of a child on a daemon thread, keeping at most {@code cap} bytes; when more
     * arrives it kills the child and stops reading.
     */
    static final class Drain extends Thread {
        private final InputStream in;
        private final int cap;
        private final Process process;
        private final ByteArrayOutputStream kept = new ByteArrayOutputStream();
        volatile boolean overflowed;

        private Drain(InputStream in, int cap, Process process, String what) {
            super(what + " output");
            this.in = in;
            this.cap = cap;
            this.process = process;
            setDaemon(true);
            start();
        }

        @Override
        public void run() {
            byte[] buf = new byte[8192];
            try (in) {
                for (int n; (n = in.read(buf)) > 0; ) {
                    synchronized (kept) {
                        if (kept.size() + n > cap) {
                            overflowed = true;
                            process.destroyForcibly();
                            return;
                        }
                        kept.write(buf, 0, n);
                    }
                }
            } catch (IOException e) {
                // The process was killed: its pipe closed.
            }
        }

        /** What was read, once the stream ended (at most {@value QemuImgProcess#DRAIN_JOIN_MILLIS} ms after the process did). */
        String text() {
            try {
                join(DRAIN_JOIN_MILLIS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            synchronized (kept) {
                return kept.toString(StandardCharsets.UTF_8);
            }
        }
    }
}
