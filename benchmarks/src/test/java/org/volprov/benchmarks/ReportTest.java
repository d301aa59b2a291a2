package org.volprov.benchmarks;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.openjdk.jmh.runner.BenchmarkList;
import org.openjdk.jmh.runner.BenchmarkListEntry;
import org.openjdk.jmh.runner.format.OutputFormatFactory;
import org.openjdk.jmh.runner.options.VerboseMode;
import org.volprov.support.Json;

class ReportTest {

    @Test
    void everyFigureTheTablesRead_isABenchmarkOfTheJarWithThoseParameterValues() {
        PrintStream silent = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
        Set<BenchmarkListEntry> list = BenchmarkList.defaultList()
                .getAll(OutputFormatFactory.createFormatInstance(silent, VerboseMode.SILENT), List.of());
        for (Report.Jmh figure : Report.benchmarksRead()) {
            Optional<BenchmarkListEntry> entry = list.stream()
                    .filter(e -> e.getUsername().equals("org.volprov.benchmarks." + figure.benchmark())).findFirst();
            assertThat(entry).as(figure.benchmark()).isPresent();
            Map<String, String[]> params = entry.get().getParams().orElse(Map.of());
            for (String kv : figure.params()) {
                String name = kv.substring(0, kv.indexOf('='));
                assertThat(params).as(figure.benchmark() + " parameters").containsKey(name);
                assertThat(params.get(name)).as(figure.benchmark() + " values of " + name)
                        .contains(kv.substring(kv.indexOf('=') + 1));
            }
        }
    }

    @Test
    void stageTable_showsMegabytesPerSecond_theRatioToTheLimit_andWhetherTheTargetIsMet() {
        Report r = report(List.of(
                result("DownloadBench.parts", 900e6, "adapter", "s3", "parts", "1"),
                result("HashAndWriteBench.cacheAdmission", 500e6)),
                Map.of("curl", "1000000000 1.0 1.0", "dd", "2000000000 2.0"));

        String table = r.markdown();

        assertThat(table).contains("| download | S3 adapter, single stream, 1 MiB buffer | 900 | curl, same object and server"
                + " | 1000 | 0.90 | ≥ 0.90, met |");
        assertThat(table).contains("| hash-and-write | cache admission: SHA-256, file, fsync, rename | 500 | dd conv=fdatasync"
                + " | 1000 | 0.50 | ≥ 0.90, missed |");
        assertThat(table).contains("| download | MinIO adapter, single stream, 1 MiB buffer | n/a | curl, same object and"
                + " server | 1000 | n/a | ≥ 0.90 |");
    }

    @Test
    void baselineRate_isTheMeanOfTheRunsRates_likeJmhsMeanOfIterations() {
        Report r = report(List.of(), Map.of("dd", "1000000000 1.0 4.0"));

        assertThat(r.baselineRate("dd")).hasValueSatisfying(rate -> assertThat(rate.value()).isEqualTo(625.0));
        assertThat(r.baselineRate("curl")).isEmpty();
    }

    @Test
    void coldProvisioning_isComparedWithTheReference_andWithItsSlowestStage() {
        Report r = report(List.of(
                result("ProvisionBench.cold", 300e6, "backend", "file"),
                result("ReferenceSequenceBench.downloadHashConvert", 250e6),
                result("DownloadBench.parts", 900e6, "adapter", "s3", "parts", "1"),
                result("HashAndWriteBench.cacheAdmission", 400e6),
                result("ConvertBench.convert", 700e6, "image", "random", "converter", "java")), Map.of());

        String table = r.markdown();

        assertThat(table).contains("| 300 | reference sequence: 32 MiB-buffer GET, hash pass, qemu-img convert (no fsync) | 250 | 1.20"
                + " | > 1.00, met |");
        assertThat(table).contains("| 300 | slowest stage: hash-and-write (cache admission) | 400 | 0.75 |  |");
    }

    @Test
    void coldOverTheShapedLink_isHeldTo115PercentOfCurlsTime_andStreamModeIsComparedWithLocal() {
        Report r = report(List.of(
                result("ProvisionBench.coldShaped", 100e6),
                result("ProvisionBench.cold", 200e6, "backend", "libvirt-stream"),
                result("ProvisionBench.cold", 400e6, "backend", "libvirt-local")),
                Map.of("curl.shaped", "1000000000 8.0"));

        String table = r.markdown();

        assertThat(table).contains("| cold over a link shaped to 1 Gbit/s (S3 adapter, file backend) | 100 | curl of the"
                + " same image over the same link (per byte of virtual size) | 125 | 0.80 | ≥ 0.87, missed |");
        assertThat(table).contains("| cold over the 1 Gbit/s link: time / curl's time for the same image, same link"
                + " (target ≤ 1.15) | 1.25x |");
        assertThat(table).contains("| cold, STREAM mode: libvirt upload into a dir pool volume | 200 | cold, LOCAL mode:"
                + " libvirt local path, same dir pool | 400 | 0.50 |  |");
        assertThat(table).contains("| cold: STREAM mode's time / LOCAL mode's time, same dir pool | 2.00x |");
    }

    @Test
    void readBack_isComparedWithTheSameJobWithoutIt_coldAndWarm() {
        Report r = report(List.of(
                result("ProvisionBench.cold", 300e6, "backend", "file"),
                result("ProvisionBench.coldReadBack", 200e6),
                result("ProvisionBench.warm", 500e6, "backend", "file"),
                result("ProvisionBench.warmReadBack", 250e6, "backend", "file")), Map.of());

        assertThat(r.markdown())
                .contains("| end to end | cold, with read-back (verifyWrittenVolume, file backend) | 200 | the same job"
                        + " without read-back | 300 | 0.67 |")
                .contains("| end to end | warm, with read-back (verifyWrittenVolume, file backend) | 250 | the same job"
                        + " without read-back | 500 | 0.50 |")
                .contains("| end to end | warm: cache hit, convert, write | 500 |");
    }

    @Test
    void furthestFromLimits_ranksTheThreeLowestStages_butNotTheControls() {
        Report r = report(List.of(
                result("DownloadBench.parts", 950e6, "adapter", "s3", "parts", "1"),
                result("DownloadBench.parts", 400e6, "adapter", "minio", "parts", "1"),
                result("HashAndWriteBench.cacheAdmission", 600e6),
                result("HashAndWriteBench.plainWrite", 100e6),
                result("ConvertBench.convert", 500e6, "image", "compressed", "converter", "java")),
                Map.of("curl", "1000 0.000001", "dd", "1000 0.000001", "qemu-img.compressed", "1000 0.000001"));

        String furthest = r.markdown().split("### Furthest from their limits")[1];

        assertThat(furthest).containsSubsequence("1. download, MinIO adapter", "2. convert, compressed qcow2",
                "3. hash-and-write, cache admission");
        assertThat(furthest).doesNotContain("plain file write").doesNotContain("S3 adapter");
    }

    @Test
    void compressedDecode_isHeldToTheIssuesTarget_ofOneAndAHalfTimesQemuImg() {
        Report r = report(List.of(
                result("ConvertBench.convert", 450e6, "image", "compressed", "converter", "java"),
                result("ConvertBench.convert", 290e6, "image", "compressed", "converter", "qemu-img")),
                Map.of("qemu-img.compressed", "300000000 1.0"));

        assertThat(r.markdown())
                .contains("| convert | compressed qcow2 → raw volume file, Java decoder (no fsync) | 450 | qemu-img convert"
                        + " -O raw, same image (no fsync) | 300 | 1.50 | ≥ 1.50, met |")
                .contains("| convert | compressed qcow2 → raw volume file, QemuImgConverter (no fsync) | 290 |");
    }

    @Test
    void cacheHitCost_isReadFromThePrimaryScoreInMicroseconds() {
        Map<String, Object> hit = new LinkedHashMap<>();
        hit.put("benchmark", "org.volprov.benchmarks.CacheHitBench.hitByDigest");
        hit.put("params", Map.of());
        hit.put("primaryMetric", Map.of("score", 0.42, "scoreError", "NaN", "scoreUnit", "us/op"));

        assertThat(report(List.of(hit), Map.of()).markdown())
                .contains("| cache hit cost (lookup and lease close), by published digest | 0.42 µs |")
                .contains("| cache hit cost (lookup and lease close), by object identity | n/a |");
    }

    @Test
    void jmhJson_asJmhWritesIt_isRead() {
        String json = "[{\"benchmark\":\"org.volprov.benchmarks.ConvertBench.convert\",\"mode\":\"thrpt\","
                + "\"params\":{\"image\":\"raw\",\"converter\":\"java\",\"sizeMiB\":\"64\"},"
                + "\"primaryMetric\":{\"score\":3.0,\"scoreError\":\"NaN\",\"scoreUnit\":\"ops/s\"},"
                + "\"secondaryMetrics\":{\"bytes\":{\"score\":2.5E8,\"scoreError\":1.0E7,\"scoreUnit\":\"ops/s\"}}}]";
        List<Map<?, ?>> entries = new ArrayList<>();
        for (Object o : (List<?>) Json.parse(json)) {
            entries.add((Map<?, ?>) o);
        }

        assertThat(report(entries, Map.of()).markdown())
                .contains("| convert | raw image (copy) → raw volume file, Java decoder (no fsync) | 250 ± 10.0 |");
    }

    private static Report report(List<Map<?, ?>> results, Map<String, String> baselines) {
        return new Report(results, baselines, Map.of());
    }

    /** A JMH result with a bytes counter of {@code bytesPerSecond} and parameters given as name, value, ... */
    private static Map<?, ?> result(String benchmark, double bytesPerSecond, String... params) {
        Map<String, String> p = new LinkedHashMap<>();
        for (int i = 0; i < params.length; i += 2) {
            p.put(params[i], params[i + 1]);
        }
        return Map.of("benchmark", "org.volprov.benchmarks." + benchmark, "params", p,
                "primaryMetric", Map.of("score", 1.0, "scoreError", "NaN"),
                "secondaryMetrics", Map.of("bytes", Map.of("score", bytesPerSecond, "scoreError", "NaN")));
    }
}
