package org.volprov.micrometer;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import org.volprov.Job;
import org.volprov.JobEvent;
import org.volprov.JobListener;
import org.volprov.Provisioner;
import org.volprov.Stage;
import org.volprov.Ticker;

/**
 * Publishes a {@link Provisioner}'s activity to Micrometer. Micrometer is an optional dependency
 * of core: this class is the only one that needs it, and only callers who use it need it on the
 * class path.
 *
 * <table>
 * <caption>Meters</caption>
 * <tr><th>name</th><th>type</th><th>tags</th></tr>
 * <tr><td>volprov.jobs</td><td>counter</td><td>outcome (COMPLETED, FAILED, CANCELLED), error (code or none)</td></tr>
 * <tr><td>volprov.stage.duration</td><td>timer</td><td>stage</td></tr>
 * <tr><td>volprov.queue.depth</td><td>gauge</td><td></td></tr>
 * <tr><td>volprov.jobs.running</td><td>gauge</td><td></td></tr>
 * <tr><td>volprov.cache.requests</td><td>function counter</td><td>result (hit, miss)</td></tr>
 * <tr><td>volprov.bytes</td><td>counter</td><td>direction (downloaded, written)</td></tr>
 * </table>
 *
 * <p>Stage durations are measured on the wall clock of the JVM, whatever clock the engine was given.
 * Thread-safe; {@link #close()} removes the listener and the meters.
 */
public final class ProvisionerMetrics implements JobListener, AutoCloseable {
    private final Provisioner provisioner;
    private final MeterRegistry registry;
    private final List<Meter> meters = new ArrayList<>();
    private final Map<String, StageClock> jobs = new ConcurrentHashMap<>();
    private final Counter downloaded;
    private final Counter written;
    private final AtomicBoolean closed = new AtomicBoolean();
    private final Ticker ticker;

    private ProvisionerMetrics(Provisioner provisioner, MeterRegistry registry, Ticker ticker) {
        this.provisioner = provisioner;
        this.registry = registry;
        this.ticker = ticker;
        meters.add(Gauge.builder("volprov.queue.depth", provisioner, Provisioner::queueDepth)
                .description("jobs waiting for a slot").register(registry));
        meters.add(Gauge.builder("volprov.jobs.running", provisioner, Provisioner::runningJobs)
                .description("jobs running").register(registry));
        meters.add(FunctionCounter.builder("volprov.cache.requests", provisioner, p -> p.cacheStats().hits())
                .tag("result", "hit").description("image requests served from the cache").register(registry));
        meters.add(FunctionCounter.builder("volprov.cache.requests", provisioner, p -> p.cacheStats().misses())
                .tag("result", "miss").description("image requests that downloaded").register(registry));
        downloaded = Counter.builder("volprov.bytes").tag("direction", "downloaded").baseUnit("bytes")
                .register(registry);
        written = Counter.builder("volprov.bytes").tag("direction", "written").baseUnit("bytes").register(registry);
        meters.add(downloaded);
        meters.add(written);
    }

    /** Registers the meters and starts listening to {@code provisioner}'s jobs. */
    public static ProvisionerMetrics bind(Provisioner provisioner, MeterRegistry registry) {
        return bind(provisioner, registry, Ticker.SYSTEM);
    }

    /**
     * Registers the meters and starts listening to {@code provisioner}'s jobs, timing the stages on
     * {@code ticker} (the one given to the engine's builder, for tests that advance time).
     */
    public static ProvisionerMetrics bind(Provisioner provisioner, MeterRegistry registry, Ticker ticker) {
        ProvisionerMetrics m = new ProvisionerMetrics(Objects.requireNonNull(provisioner, "provisioner"),
                Objects.requireNonNull(registry, "registry"), Objects.requireNonNull(ticker, "ticker"));
        provisioner.addListener(m);
        return m;
    }

    @Override
    public void onEvent(JobEvent event) {
        Job job = event.job();
        switch (event.kind()) {
            case STAGE -> jobs.computeIfAbsent(job.id(), id -> new StageClock()).enter(job.stage());
            case PROGRESS -> {
                StageClock c = jobs.get(job.id());
                if (c != null) {
                    long delta = c.advance(job.progress().bytesDone());
                    if (job.stage() == Stage.DOWNLOADING) {
                        downloaded.increment(delta);
                    } else if (job.stage() == Stage.WRITING) {
                        written.increment(delta);
                    }
                }
            }
            case STATE -> {
                if (job.state().terminal()) {
                    StageClock c = jobs.remove(job.id());
                    if (c != null) {
                        c.enter(null);
                    }
                    Counter.builder("volprov.jobs").tag("outcome", job.state().name())
                            .tag("error", job.error().map(Enum::name).orElse("none"))
                            .register(registry).increment();
                }
            }
            default -> { }
        }
    }

    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) {
            return;
        }
        provisioner.removeListener(this);
        meters.forEach(registry::remove);
    }

    /** Times the stages of one job; used by that job's thread only. */
    private final class StageClock {
        private Stage stage;
        private long since;
        private long bytes;

        void enter(Stage next) {
            long now = ticker.nanos();
            if (stage != null) {
                Timer.builder("volprov.stage.duration").tag("stage", stage.name()).register(registry)
                        .record(Duration.ofNanos(now - since));
            }
            stage = next;
            since = now;
            bytes = 0;
        }

        long advance(long done) {
            long delta = Math.max(0, done - bytes);
            bytes = Math.max(bytes, done);
            return delta;
        }
    }
}
