package org.volprov.image;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Marks the {@code qemu-img} processes this JVM starts, and ends those that a JVM which is gone left
 * running. A JVM killed with SIGKILL (or by the OOM killer) takes nothing with it: its conversion
 * goes on writing into a volume that a new engine may hand to another job. Each child gets
 * {@value #VARIABLE}{@code =<pid>:<start time>} of the JVM that started it in its environment (the
 * start time tells that JVM from a later process with the same pid), readable in
 * {@code /proc/<pid>/environ} for as long as the child runs, under any parent. A new converter asks
 * every process it may read: a child whose JVM is alive (another engine of this host) is left
 * alone, one whose JVM is gone is killed.
 *
 * <p>Linux only: where there is no {@code /proc}, children are not marked and nothing is swept.
 */
final class QemuImgChildren {
    private static final Logger LOG = LoggerFactory.getLogger(QemuImgChildren.class);
    static final String VARIABLE = "VOLPROV_QEMU_IMG_OWNER";
    private static final Path PROC = Path.of("/proc");
    private static final long EXIT_WAIT_SECONDS = 10;

    private QemuImgChildren() {
    }

    /** The mark of this JVM, or empty where processes cannot be told apart (no {@code /proc}). */
    static Optional<String> mark() {
        return Mark.THIS;
    }

    /** Holds this JVM's mark, read once. */
    private static final class Mark {
        static final Optional<String> THIS = of(ProcessHandle.current().pid());

        private static Optional<String> of(long pid) {
            return startTime(pid).map(start -> pid + ":" + start);
        }
    }

    /**
     * Kills the marked processes whose JVM is gone and waits briefly for them to exit.
     *
     * @return how many it ended
     */
    static int endOrphans() {
        if (Mark.THIS.isEmpty()) {
            return 0;
        }
        int ended = 0;
        try (DirectoryStream<Path> procs = Files.newDirectoryStream(PROC, p -> isPid(p.getFileName().toString()))) {
            for (Path p : procs) {
                long pid = Long.parseLong(p.getFileName().toString());
                // Taken before the environment is read: the handle refuses to kill a later process
                // that reuses the pid.
                Optional<ProcessHandle> handle = ProcessHandle.of(pid);
                Optional<String> owner = handle.flatMap(h -> ownerOf(pid));
                if (owner.isPresent() && !alive(owner.get()) && end(handle.get(), owner.get())) {
                    ended++;
                }
            }
        } catch (IOException e) {
            LOG.debug("cannot list {}: no orphaned qemu-img processes are looked for", PROC, e);
        }
        return ended;
    }

    private static boolean end(ProcessHandle h, String owner) {
        String what = h.info().commandLine().orElse("qemu-img");
        if (!h.destroyForcibly()) {
            return false;
        }
        try {
            h.onExit().get(EXIT_WAIT_SECONDS, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (Exception e) {
            LOG.debug("waiting for process {} to exit", h.pid(), e);
        }
        LOG.warn("ended process {} ({}): a qemu-img that process {} started and left running when it died",
                h.pid(), what, owner.substring(0, owner.indexOf(':')));
        return true;
    }

    /** The mark in the environment of process {@code pid}, if it has one and this process may read it. */
    private static Optional<String> ownerOf(long pid) {
        byte[] env;
        try {
            env = Files.readAllBytes(PROC.resolve(Long.toString(pid)).resolve("environ"));
        } catch (IOException | SecurityException e) {
            return Optional.empty(); // another user's, or gone
        }
        String prefix = VARIABLE + "=";
        for (String entry : new String(env, StandardCharsets.UTF_8).split("\0")) {
            if (entry.startsWith(prefix)) {
                return Optional.of(entry.substring(prefix.length()));
            }
        }
        return Optional.empty();
    }

    /** Whether the process a mark names still runs (the same process: its start time matches). */
    private static boolean alive(String mark) {
        int colon = mark.indexOf(':');
        if (colon < 1 || !isPid(mark.substring(0, colon))) {
            return true; // not a mark this class wrote: leave the process alone
        }
        long pid = Long.parseLong(mark.substring(0, colon));
        return startTime(pid).map(start -> start.equals(mark.substring(colon + 1))).orElse(false);
    }

    /** Field 22 of {@code /proc/<pid>/stat}: when the process started, in clock ticks since boot. */
    private static Optional<String> startTime(long pid) {
        String stat;
        try {
            stat = Files.readString(PROC.resolve(Long.toString(pid)).resolve("stat"), StandardCharsets.US_ASCII);
        } catch (IOException | SecurityException e) {
            return Optional.empty();
        }
        // The command name (field 2) is in parentheses and may hold spaces: count from after it.
        int end = stat.lastIndexOf(')');
        if (end < 0 || end + 2 > stat.length()) {
            return Optional.empty();
        }
        String[] fields = stat.substring(end + 2).split(" ");
        return fields.length > 19 ? Optional.of(fields[19]) : Optional.empty();
    }

    private static boolean isPid(String s) {
        if (s.isEmpty() || s.length() > 18) {
            return false;
        }
        for (int i = 0; i < s.length(); i++) {
            if (s.charAt(i) < '0' || s.charAt(i) > '9') {
                return false;
            }
        }
        return true;
    }
}
