package org.volprov.demo;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.volprov.Job;
import org.volprov.JobEvent;
import org.volprov.JobState;
import org.volprov.Progress;
import org.volprov.ProvisionRequest;
import org.volprov.Stage;

class ProgressPrinterTest {
    private static final Instant T0 = Instant.parse("2026-01-01T00:00:00Z");
    private static final long MB = 1_000_000L;

    private final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    private final AtomicLong nanos = new AtomicLong();

    private ProgressPrinter printer(ProgressPrinter.Mode mode) {
        return new ProgressPrinter(new PrintStream(bytes, true, StandardCharsets.UTF_8), mode, nanos::get);
    }

    private String output() {
        return bytes.toString(StandardCharsets.UTF_8);
    }

    @Test
    void log_whenAJobRunsThroughEveryStage_printsALinePerStageAndOnePerTenPercent() {
        ProgressPrinter p = printer(ProgressPrinter.Mode.LOG);
        run(p, new FakeJob("j1", "vm-log"), 100);

        List<String> lines = output().lines().toList();
        // 7 stages, 10 steps in each of the two stages that move bytes, and the outcome.
        assertThat(lines).hasSize(7 + 10 + 10 + 1);
        assertThat(lines).filteredOn(l -> l.contains("DOWNLOADING")).hasSize(11);
        assertThat(lines).noneMatch(l -> l.contains("\u001b"));
        // 1 MB every 10 ms is 100 MB/s; at half of 100 MB, 50 MB are left: half a second, shown as 0:01.
        assertThat(lines).contains("  vm-log     DOWNLOADING      50.0 %     100.0 MB/s  ETA 0:01");
        assertThat(lines.get(lines.size() - 1)).isEqualTo("  vm-log     COMPLETED in 2.1 s (downloaded)");
    }

    @Test
    void log_whenOneEventJumpsSeveralSteps_printsOneLine() {
        ProgressPrinter p = printer(ProgressPrinter.Mode.LOG);
        FakeJob job = new FakeJob("j1", "vm-jump");
        p.onEvent(job.stage(Stage.WRITING, 100 * MB));
        nanos.addAndGet(1_000_000_000L);
        p.onEvent(job.progress(100 * MB));

        assertThat(output().lines()).containsExactly("  vm-jump    WRITING",
                "  vm-jump    WRITING         100.0 %     100.0 MB/s  ETA 0:00");
    }

    @Test
    void terminal_whenAJobRuns_keepsOneLineThatEndsAsItsOutcome() {
        ProgressPrinter p = printer(ProgressPrinter.Mode.TERMINAL);
        FakeJob job = new FakeJob("j1", "vm-tty");
        p.onEvent(job.state(JobState.PENDING));
        p.onEvent(job.stage(Stage.DOWNLOADING, 100 * MB));
        for (int i = 1; i <= 40; i++) {
            nanos.addAndGet(10_000_000L);
            p.onEvent(job.progress(i * MB));
        }
        // While it runs: one line, with the stage, the percent, the rate and what is left.
        assertThat(new Screen(output()).lines())
                .containsExactly("  vm-tty     DOWNLOADING      40.0 %     100.0 MB/s  ETA 0:01");

        run(p, job, 100);
        assertThat(new Screen(output()).lines()).containsExactly("  vm-tty     COMPLETED in 2.5 s (downloaded)");
    }

    @Test
    void terminal_whenTwoJobsRunAtOnce_showsOneLinePerJob() {
        ProgressPrinter p = printer(ProgressPrinter.Mode.TERMINAL);
        FakeJob a = new FakeJob("a", "vm-a");
        FakeJob b = new FakeJob("b", "vm-b");
        p.onEvent(a.stage(Stage.DOWNLOADING, 100 * MB));
        p.onEvent(b.stage(Stage.WRITING, 200 * MB));
        for (int i = 1; i <= 50; i++) {
            nanos.addAndGet(ProgressPrinter.REDRAW_NANOS);
            p.onEvent(a.progress(i * MB));
            p.onEvent(b.progress(2 * i * MB));
        }
        // b's last step came within the redraw interval of a's: the screen shows its one before.
        assertThat(new Screen(output()).lines()).containsExactly(
                "  vm-a       DOWNLOADING      50.0 %      10.0 MB/s  ETA 0:05",
                "  vm-b       WRITING          49.0 %      20.0 MB/s  ETA 0:06");

        p.onEvent(a.end(JobState.COMPLETED));
        assertThat(new Screen(output()).lines()).containsExactly(
                "  vm-a       COMPLETED in 5.0 s (downloaded)",
                "  vm-b       WRITING          50.0 %      20.0 MB/s  ETA 0:05");
    }

    @Test
    void terminal_whenBytesArriveFasterThanTheRedrawInterval_redrawsOnlyAtThatInterval() {
        ProgressPrinter p = printer(ProgressPrinter.Mode.TERMINAL);
        FakeJob job = new FakeJob("j1", "vm-fast");
        p.onEvent(job.stage(Stage.WRITING, 1000 * MB));
        int before = output().length();
        for (int i = 1; i <= 1000; i++) {
            nanos.addAndGet(ProgressPrinter.REDRAW_NANOS / 100);
            p.onEvent(job.progress(i * MB));
        }
        // 1000 events over 10 redraw intervals: 10 redraws of one line each.
        long redraws = output().substring(before).chars().filter(c -> c == '\n').count();
        assertThat(redraws).isEqualTo(10);
    }

    /** Every stage, with {@code steps} progress events 10 ms apart in the two stages that move bytes. */
    private void run(ProgressPrinter p, FakeJob job, int steps) {
        p.onEvent(job.state(JobState.PENDING));
        p.onEvent(job.state(JobState.RUNNING));
        for (Stage s : Stage.values()) {
            boolean moves = s == Stage.DOWNLOADING || s == Stage.WRITING;
            p.onEvent(job.stage(s, moves ? steps * MB : 0));
            for (int i = 1; moves && i <= steps; i++) {
                nanos.addAndGet(10_000_000L);
                p.onEvent(job.progress(i * MB));
            }
        }
        nanos.addAndGet(50_000_000L);
        p.onEvent(job.end(JobState.COMPLETED));
    }

    /** Snapshots of one job as the engine would report them. */
    private static final class FakeJob {
        private Job job;

        FakeJob(String id, String volume) {
            job = Job.pending(id, ProvisionRequest.builder().imageUri("s3://images/disk.qcow2").volumeName(volume)
                    .volumeSizeBytes(1L << 30).build(), T0);
        }

        JobEvent state(JobState state) {
            if (state == JobState.RUNNING) {
                job = job.running(T0);
            }
            return new JobEvent(JobEvent.Kind.STATE, job);
        }

        JobEvent stage(Stage stage, long total) {
            job = job.withProgress(new Progress(stage, 0, total), T0);
            return new JobEvent(JobEvent.Kind.STAGE, job);
        }

        JobEvent progress(long done) {
            Progress p = job.progress();
            job = job.withProgress(new Progress(p.stage(), done, p.bytesTotal()), T0);
            return new JobEvent(JobEvent.Kind.PROGRESS, job);
        }

        JobEvent end(JobState state) {
            job = job.finished(state, null, null, T0);
            return new JobEvent(JobEvent.Kind.STATE, job);
        }
    }

    /**
     * What a terminal shows after the output: plain text, carriage return, line feed, cursor up
     * ({@code ESC[nA}), erase line ({@code ESC[2K}) and erase below ({@code ESC[J}).
     */
    private static final class Screen {
        private final List<StringBuilder> rows = new ArrayList<>();
        private int row;
        private int col;

        Screen(String output) {
            rows.add(new StringBuilder());
            for (int i = 0; i < output.length(); i++) {
                char c = output.charAt(i);
                if (c == '\u001b') {
                    int end = i + 2;
                    while (!Character.isLetter(output.charAt(end))) {
                        end++;
                    }
                    control(output.substring(i + 2, end), output.charAt(end));
                    i = end;
                } else if (c == '\r') {
                    col = 0;
                } else if (c == '\n') {
                    row++;
                    col = 0;
                    if (row == rows.size()) {
                        rows.add(new StringBuilder());
                    }
                } else {
                    StringBuilder r = rows.get(row);
                    while (r.length() < col) {
                        r.append(' ');
                    }
                    if (col < r.length()) {
                        r.setCharAt(col, c);
                    } else {
                        r.append(c);
                    }
                    col++;
                }
            }
        }

        private void control(String arg, char command) {
            switch (command) {
                case 'A' -> row = Math.max(0, row - (arg.isEmpty() ? 1 : Integer.parseInt(arg)));
                case 'K' -> rows.get(row).setLength(0);
                case 'J' -> {
                    rows.get(row).setLength(col);
                    rows.subList(row + 1, rows.size()).clear();
                }
                default -> throw new AssertionError("unexpected control " + arg + command);
            }
        }

        /** The non-empty rows. */
        List<String> lines() {
            return rows.stream().map(StringBuilder::toString).filter(s -> !s.isEmpty()).toList();
        }
    }
}
