package org.volprov.demo;

import java.io.PrintStream;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.function.LongSupplier;
import org.volprov.Job;
import org.volprov.JobEvent;
import org.volprov.JobListener;
import org.volprov.Progress;
import org.volprov.Stage;

/**
 * Job progress the way a person reads it. On a terminal each running job has one line that is
 * rewritten in place (stage, percent, MB/s, ETA) and stays as its outcome when the job ends; in a
 * log or a pipe each job gets a line per stage and one each time a stage passes another 10 %.
 *
 * <p>Thread-safe: jobs report on their own threads. MB/s is 10^6 bytes per second, averaged over
 * the stage so far; the time comes from {@code nanoTime}.
 */
final class ProgressPrinter implements JobListener {
    /** How the output is shown. */
    enum Mode {
        /** Lines rewritten in place with ANSI cursor controls. */
        TERMINAL,
        /** Append-only lines. */
        LOG;

        /**
         * {@code DEMO_PROGRESS=terminal|log} when set; otherwise a terminal when the JVM has a console
         * and {@code TERM} is not {@code dumb}.
         */
        static Mode detect() {
            String forced = System.getenv("DEMO_PROGRESS");
            if (forced != null && !forced.isBlank()) {
                try {
                    return valueOf(forced.strip().toUpperCase(Locale.ROOT));
                } catch (IllegalArgumentException e) {
                    throw new IllegalArgumentException("DEMO_PROGRESS must be terminal or log, was " + forced);
                }
            }
            return System.console() != null && !"dumb".equals(System.getenv("TERM")) ? TERMINAL : LOG;
        }
    }

    /** A terminal line is redrawn at most this often for bytes alone; stage and state changes show at once. */
    static final long REDRAW_NANOS = 100_000_000L;
    private static final String ESC = "\u001b[";

    private final PrintStream out;
    private final Mode mode;
    private final LongSupplier nanoTime;
    private final Map<String, Line> lines = new LinkedHashMap<>();
    private int drawn;
    private boolean drewOnce;
    private long lastDraw;

    ProgressPrinter(PrintStream out, Mode mode, LongSupplier nanoTime) {
        this.out = out;
        this.mode = mode;
        this.nanoTime = nanoTime;
    }

    @Override
    public synchronized void onEvent(JobEvent event) {
        long now = nanoTime.getAsLong();
        Job job = event.job();
        Line line = lines.computeIfAbsent(job.id(), id -> new Line(job.request().volumeName(), now));
        boolean newStage = line.track(job.progress(), now);
        if (mode == Mode.LOG) {
            log(line, job, event.kind(), newStage, now);
            if (job.state().terminal()) {
                lines.remove(job.id());
            }
            return;
        }
        line.text = job.state().terminal() ? outcome(line, job, now) : status(line, job.progress(), now);
        line.ended = job.state().terminal();
        if (event.kind() != JobEvent.Kind.PROGRESS || !drewOnce || now - lastDraw >= REDRAW_NANOS) {
            redraw(now);
        }
    }

    private void log(Line line, Job job, JobEvent.Kind kind, boolean newStage, long now) {
        if (job.state().terminal()) {
            out.println(outcome(line, job, now));
        } else if (newStage) {
            out.println(String.format(Locale.ROOT, "  %-10s %s", line.volume, job.stage()));
        } else if (kind == JobEvent.Kind.PROGRESS) {
            int decile = (int) (job.progress().percent() / 10);
            if (decile > line.decile) {
                line.decile = decile;
                out.println(status(line, job.progress(), now));
            }
        }
    }

    /** Rewrites the block of live lines: ended jobs keep their last line above the running ones. */
    private void redraw(long now) {
        StringBuilder sb = new StringBuilder();
        if (drawn > 0) {
            sb.append('\r').append(ESC).append(drawn).append('A');
        }
        for (var it = lines.entrySet().iterator(); it.hasNext(); ) {
            Line l = it.next().getValue();
            if (l.ended) {
                sb.append(ESC).append("2K").append(l.text).append('\n');
                it.remove();
            }
        }
        for (Line l : lines.values()) {
            sb.append(ESC).append("2K").append(l.text).append('\n');
        }
        sb.append(ESC).append('J');
        drawn = lines.size();
        drewOnce = true;
        lastDraw = now;
        out.print(sb);
        out.flush();
    }

    private static String status(Line line, Progress p, long now) {
        StringBuilder sb = new StringBuilder(String.format(Locale.ROOT, "  %-10s %-15s", line.volume, p.stage()));
        if (p.bytesTotal() > 0) {
            sb.append(String.format(Locale.ROOT, " %5.1f %%", p.percent()));
            double seconds = (now - line.stageStart) / 1e9;
            if (p.bytesDone() > 0 && seconds >= 0.05) {
                double bytesPerSecond = p.bytesDone() / seconds;
                long remaining = Math.max(0, p.bytesTotal() - p.bytesDone());
                sb.append(String.format(Locale.ROOT, "  %8.1f MB/s  ETA %s", bytesPerSecond / 1e6,
                        clock(Math.ceil(remaining / bytesPerSecond))));
            } else {
                sb.append("        -- MB/s  ETA --");
            }
        }
        return sb.toString().stripTrailing();
    }

    private static String outcome(Line line, Job job, long now) {
        String took = String.format(Locale.ROOT, "%.1f s", (now - line.firstSeen) / 1e9);
        return switch (job.state()) {
            case COMPLETED -> String.format(Locale.ROOT, "  %-10s COMPLETED in %s (%s)", line.volume, took,
                    job.cacheHit() ? "cache hit" : "downloaded");
            default -> String.format(Locale.ROOT, "  %-10s %s in %s at %s [%s]", line.volume, job.state(), took,
                    job.stage(), job.errorCode());
        };
    }

    private static String clock(double seconds) {
        long s = (long) seconds;
        return String.format(Locale.ROOT, "%d:%02d", s / 60, s % 60);
    }

    /** One job's line and what its rate is measured from. */
    private static final class Line {
        final String volume;
        final long firstSeen;
        Stage stage;
        long stageStart;
        int decile;
        String text = "";
        boolean ended;

        Line(String volume, long now) {
            this.volume = volume;
            this.firstSeen = now;
        }

        /** Restarts the rate and the 10 % steps when the stage changes; true when it did. */
        boolean track(Progress p, long now) {
            if (p.stage() == stage) {
                return false;
            }
            stage = p.stage();
            stageStart = now;
            decile = 0;
            return true;
        }
    }
}
