package org.volprov.benchmarks;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collection;
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
 * libvirtd. Its figures mean nothing.
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
        // One server for every benchmark, found through its fixture file, as in the runner's runs.
        S3TestServer server = BenchServer.start(work, 8);
        try {
            System.setProperty("volprov.bench.fixture", work.resolve("server.properties").toString());
            results = new Runner(options).run();
        } finally {
            System.clearProperty("volprov.bench.fixture");
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
}
