package org.volprov.benchmarks;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.openjdk.jmh.results.Result;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.results.format.ResultFormatType;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.options.Options;
import org.openjdk.jmh.runner.options.OptionsBuilder;
import org.openjdk.jmh.runner.options.TimeValue;
import org.openjdk.jmh.runner.options.VerboseMode;
import org.volprov.s3.testkit.S3TestServer;

/**
 * Runs every benchmark of the jar once, on 8 MiB, inside this JVM, so that the suite cannot rot
 * between the runs that produce figures: the runner's S3 server and fixture file, libvirt pools,
 * the engine and the report all take part. Needs what the adapters' ITs need: qemu-img and
 * libvirtd; and, for the shaped link, root with ip, tc, socat and nsenter. Its figures mean nothing.
 */
class BenchmarksSmokeIT {

    @Test
    void everyBenchmark_runsOnce_andEveryFigureOfTheTablesIsProduced() throws Exception {
        Path work = Files.createDirectories(Path.of("target", "bench-smoke").toAbsolutePath());
        Path json = work.resolve("jmh.json");
        Options options = new OptionsBuilder()
                .include("org\\.volprov\\.benchmarks\\..*")
                .forks(0) // in this JVM, for a quick run
                .warmupIterations(0)
                .measurementIterations(1)
                .measurementTime(TimeValue.milliseconds(1))
                .param("sizeMiB", "8")
                .shouldFailOnError(true)
                .verbosity(VerboseMode.SILENT)
                .resultFormat(ResultFormatType.JSON)
                .result(json.toString())
                .build();

        Collection<RunResult> results;
        // One server for every benchmark, found through its fixture file, as in the runner's runs,
        // and the runner's shaped link in front of it.
        S3TestServer server = BenchServer.start(work, 8);
        String link = "s" + ProcessHandle.current().pid() % 100_000;
        try {
            System.setProperty("volprov.bench.fixture", work.resolve("server.properties").toString());
            System.setProperty("volprov.bench.shaped.link", shapedLink("up", link,
                    Integer.toString(server.endpoint().getPort())));
            results = new Runner(options).run();
        } finally {
            System.clearProperty("volprov.bench.fixture");
            System.clearProperty("volprov.bench.shaped.link");
            shapedLink("down", link);
            server.close();
        }

        for (RunResult run : results) {
            String name = run.getParams().getBenchmark();
            Map<String, Result> secondary = run.getSecondaryResults();
            if (!name.contains("CacheHitBench")) {
                assertThat(secondary).as(name + " counts its bytes").containsKey("bytes");
                assertThat(secondary.get("bytes").getScore()).as(name + " bytes per second").isPositive();
            }
        }
        Report report = Report.read(json, work.resolve("no-baselines"), null);
        for (Report.Jmh figure : Report.benchmarksRead()) {
            assertThat(report.result(figure)).as(figure + " in the results").isPresent();
        }
    }

    /** Runs {@code scripts/shaped-link.sh} (root, ip, tc, socat) and returns what it printed. */
    private static String shapedLink(String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of("bash",
                Path.of("..", "scripts", "shaped-link.sh").toAbsolutePath().normalize().toString()));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
        assertThat(p.waitFor()).as("exit status of scripts/shaped-link.sh " + String.join(" ", args)
                + " (needs root, ip, tc, socat, nsenter)").isZero();
        return out;
    }
}
