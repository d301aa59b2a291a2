package org.volprov.it;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * A JVM started on this one's class path, its output collected, spoken to through its standard
 * input, killed with SIGKILL by the test.
 */
final class ChildProcess implements AutoCloseable {
    private final Process process;
    private final StringBuffer output = new StringBuffer();

    private ChildProcess(Process process) {
        this.process = process;
        Thread reader = new Thread(this::read, "child-output");
        reader.setDaemon(true);
        reader.start();
    }

    static ChildProcess start(Class<?> main, Map<String, String> env, List<String> args) throws IOException {
        return start(List.of(), main, env, args);
    }

    /** The same, with {@code jvmOptions} (such as {@code -Xmx128m}) before the main class. */
    static ChildProcess start(List<String> jvmOptions, Class<?> main, Map<String, String> env, List<String> args)
            throws IOException {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString()));
        cmd.addAll(jvmOptions);
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), main.getName()));
        cmd.addAll(args);
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
        pb.environment().putAll(env);
        return new ChildProcess(pb.start());
    }

    /** The rest of the first output line that starts with {@code prefix}, waiting up to {@code timeout}. */
    synchronized String awaitLine(String prefix, Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            for (String line : output.toString().split("\n")) {
                if (line.startsWith(prefix)) {
                    return line.substring(prefix.length());
                }
            }
            long left = deadline - System.nanoTime();
            if (left <= 0 || !process.isAlive()) {
                throw new AssertionError("the child printed no line starting with '" + prefix + "' (alive: "
                        + process.isAlive() + "); its output:\n" + output);
            }
            wait(Math.max(1, Math.min(200, left / 1_000_000)));
        }
    }

    /** The child's process id. */
    long pid() {
        return process.pid();
    }

    /** Writes {@code line} to the child's standard input. */
    void send(String line) throws IOException {
        process.getOutputStream().write((line + "\n").getBytes(StandardCharsets.UTF_8));
        process.getOutputStream().flush();
    }

    /** SIGSTOP: every thread of the child stands still, as in a long pause of its JVM or its VM. */
    void freeze() throws IOException, InterruptedException {
        signal("STOP");
    }

    /** SIGCONT: the child runs on from where it stood. */
    void thaw() throws IOException, InterruptedException {
        signal("CONT");
    }

    private void signal(String name) throws IOException, InterruptedException {
        Process kill = new ProcessBuilder("kill", "-" + name, Long.toString(process.pid())).inheritIO().start();
        assertThat(kill.waitFor(30, TimeUnit.SECONDS) && kill.exitValue() == 0).as("kill -" + name).isTrue();
    }

    /** Waits up to {@code timeout} for the child to exit and returns its exit status. */
    int awaitExit(Duration timeout) throws InterruptedException {
        if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
            throw new AssertionError("the child did not exit within " + timeout + "; its output:\n" + output);
        }
        return process.exitValue();
    }

    /** SIGKILL: no finally block, no shutdown hook, nothing released. */
    void kill() throws InterruptedException {
        process.destroyForcibly();
        assertThat(process.waitFor(30, TimeUnit.SECONDS)).as("the child ended after SIGKILL").isTrue();
        assertThat(process.exitValue()).as("exit status of a SIGKILLed JVM").isEqualTo(137);
    }

    private void read() {
        try (BufferedReader r = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
            for (String line; (line = r.readLine()) != null; ) {
                synchronized (this) {
                    output.append(line).append('\n');
                    notifyAll();
                }
            }
        } catch (IOException e) {
            // killed: the pipe closes
        }
        synchronized (this) {
            notifyAll();
        }
    }

    @Override
    public void close() {
        if (process.isAlive()) {
            try {
                process.destroyForcibly().waitFor(30, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
