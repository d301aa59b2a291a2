package org.volprov.benchmarks;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;
import org.volprov.support.Json;

/**
 * Turns one run's JMH JSON and the runner's baseline timings into the tables the README carries:
 * each stage in MB/s (10^6 bytes per second) beside the physical limit of that stage measured in
 * the same run with a standard tool, and the ratio of the two.
 *
 * <p>{@code java -cp benchmarks.jar org.volprov.benchmarks.Report <jmh.json> <baselines> [<meta>]}
 * prints the tables in Markdown. The baselines file has one line per tool,
 * {@code name=<bytes> <seconds> <seconds>...}; the meta file ({@code key=value}) describes the run.
 * A figure the run lacks (a benchmark that failed, a tool that is missing) reads {@code n/a}.
 */
public final class Report {
    private static final String PACKAGE = "org.volprov.benchmarks.";
    private static final List<String> META_KEYS =
            List.of("date", "command", "machine", "disk", "loop", "link", "size", "server", "jmh", "baselines", "tools");

    private final List<Map<?, ?>> jmh;
    private final Map<String, String> baselines;
    private final Map<String, String> meta;

    Report(List<Map<?, ?>> jmh, Map<String, String> baselines, Map<String, String> meta) {
        this.jmh = jmh;
        this.baselines = baselines;
        this.meta = meta;
    }

    public static void main(String[] args) throws IOException {
        if (args.length < 2 || args.length > 3) {
            System.err.println("usage: Report <jmh.json> <baselines> [<meta>]");
            System.exit(2);
        }
        System.out.print(read(Path.of(args[0]), Path.of(args[1]), args.length > 2 ? Path.of(args[2]) : null).markdown());
    }

    static Report read(Path jmhJson, Path baselineFile, Path metaFile) throws IOException {
        List<Map<?, ?>> entries = new ArrayList<>();
        String text = Files.exists(jmhJson) ? Files.readString(jmhJson, StandardCharsets.UTF_8).strip() : "";
        if (!text.isEmpty()) {
            for (Object o : (List<?>) Json.parse(text)) {
                entries.add((Map<?, ?>) o);
            }
        }
        Map<String, String> base = Files.exists(baselineFile) ? KeyValues.read(baselineFile) : Map.of();
        Map<String, String> m = metaFile != null && Files.exists(metaFile) ? KeyValues.read(metaFile) : Map.of();
        return new Report(entries, base, m);
    }

    // ---- what the tables show ----

    /** A figure in MB/s (or µs for the cache hit), with JMH's 99.9 % error margin when it has one, else NaN. */
    record Rate(double value, double error) {
        String format() {
            return Double.isNaN(error) ? mb(value) : mb(value) + " ± " + mb(error);
        }
    }

    /** Where a figure comes from. */
    sealed interface Figure permits Jmh, Baseline, SlowestStage {
        Optional<Rate> in(Report r);
    }

    /**
     * The {@code bytes} counter, in MB/s, of a JMH benchmark ({@code Class.method}) run with these
     * {@code name=value} parameters (others may have any value).
     */
    record Jmh(String benchmark, List<String> params) implements Figure {
        @Override
        public Optional<Rate> in(Report r) {
            return r.result(this).flatMap(Report::bytesPerSecond);
        }
    }

    /** A standard tool's timings from the baselines file. */
    record Baseline(String name) implements Figure {
        @Override
        public Optional<Rate> in(Report r) {
            return r.baselineRate(name);
        }
    }

    /** The slowest of the stages a cold job runs one after the other. */
    record SlowestStage() implements Figure {
        @Override
        public Optional<Rate> in(Report r) {
            return r.slowestStage().map(Map.Entry::getValue);
        }
    }

    static Jmh jmh(String benchmark, String... params) {
        return new Jmh(benchmark, List.of(params));
    }

    /** The ratio a stage should reach: at least {@code ratio}, or more than it when {@code strict}. */
    record Target(double ratio, boolean strict) {
        String text() {
            return (strict ? "> " : "≥ ") + Report.ratio(ratio);
        }

        boolean met(double r) {
            return strict ? r > ratio : r >= ratio;
        }
    }

    /** A stage of the copy path (ranked by its ratio); a control that explains one; or the whole job. */
    enum Kind { STAGE, CONTROL, END_TO_END }

    /** One line of the stage table; {@code target} is what the issue asks for, or null. */
    record Row(Kind kind, String stage, String engine, Figure measured, String limitName, Figure limit, Target target) {
    }

    private static final Target TENTH_OFF = new Target(0.9, false);
    private static final Target AS_FAST = new Target(1.0, false);
    private static final Target FASTER = new Target(1.0, true);
    private static final Target DECODE_TARGET = new Target(1.5, false);
    private static final Baseline CURL = new Baseline("curl");
    private static final Baseline DD = new Baseline("dd");
    private static final String CURL_NAME = "curl, same object and server";
    private static final String DD_NAME = "dd conv=fdatasync";
    private static final String REFERENCE_NAME =
            "reference sequence: 32 MiB-buffer GET, hash pass, qemu-img convert (no fsync)";
    private static final Jmh S3_SINGLE = jmh("DownloadBench.parts", "adapter=s3", "parts=1");
    private static final Jmh ADMISSION = jmh("HashAndWriteBench.cacheAdmission");
    private static final Jmh PLAIN_WRITE = jmh("HashAndWriteBench.plainWrite");
    private static final Jmh COLD = jmh("ProvisionBench.cold", "backend=file");
    private static final Jmh WARM = jmh("ProvisionBench.warm");
    private static final String NO_READ_BACK = "the same job without read-back";
    private static final Jmh COLD_LOCAL = jmh("ProvisionBench.cold", "backend=libvirt-local");
    private static final Jmh COLD_STREAM = jmh("ProvisionBench.cold", "backend=libvirt-stream");
    private static final Jmh COLD_SHAPED = jmh("ProvisionBench.coldShaped");
    private static final Baseline CURL_SHAPED = new Baseline("curl.shaped");
    /** At most 1.15 x curl's time over the same link is a rate of at least 1 / 1.15 of curl's. */
    static final double SHAPED_TIME_TARGET = 1.15;
    private static final Target SHAPED_TARGET = new Target(1 / SHAPED_TIME_TARGET, false);
    private static final Jmh LIBVIRT_LOCAL = jmh("VolumeWriteBench.write", "backend=libvirt-local");
    private static final Jmh LIBVIRT_STREAM = jmh("VolumeWriteBench.write", "backend=libvirt-stream");
    private static final Jmh DISK_LOCAL = jmh("VolumeWriteBench.write", "backend=libvirt-disk-local");
    private static final Jmh DISK_STREAM = jmh("VolumeWriteBench.write", "backend=libvirt-disk-stream");
    private static final Baseline DD_LOOP = new Baseline("dd.loop");
    private static final String DD_LOOP_NAME = "dd oflag=direct conv=fsync onto a partition of the same loop device";
    static final String[][] ADAPTERS = {{"s3", "S3 (AWS SDK v2)"}, {"minio", "MinIO SDK"}};
    static final String[] PARTS = {"1", "2", "4", "8"};
    static final String[] BUFFERS_KIB = {"64", "1024", "8192"};
    static final String[][] HITS = {{"hitByDigest", "by published digest"}, {"hitByIdentity", "by object identity"}};
    private static final String[][] IMAGES = {
        {"random", "random-content qcow2"}, {"halfzero", "half-zero qcow2"},
        {"compressed", "compressed qcow2"}, {"raw", "raw image (copy)"}};

    static List<Row> stageRows() {
        List<Row> rows = new ArrayList<>();
        rows.add(new Row(Kind.STAGE, "download", "S3 adapter, single stream, 1 MiB buffer", S3_SINGLE,
                CURL_NAME, CURL, TENTH_OFF));
        rows.add(new Row(Kind.STAGE, "download", "MinIO adapter, single stream, 1 MiB buffer",
                jmh("DownloadBench.parts", "adapter=minio", "parts=1"), CURL_NAME, CURL, TENTH_OFF));
        rows.add(new Row(Kind.STAGE, "hash-and-write", "cache admission: SHA-256, file, fsync, rename", ADMISSION,
                DD_NAME, DD, TENTH_OFF));
        rows.add(new Row(Kind.CONTROL, "hash-and-write", "plain file write + fsync (JVM, no hash)", PLAIN_WRITE,
                DD_NAME, DD, null));
        rows.add(new Row(Kind.CONTROL, "hash", "SHA-256 in the JVM, from memory", jmh("HashAndWriteBench.sha256"),
                "openssl dgst -sha256", new Baseline("openssl"), null));
        for (String[] image : IMAGES) {
            // The target for compressed images: the Java decoder inflates on every core.
            Target target = image[0].equals("compressed") ? DECODE_TARGET : AS_FAST;
            rows.add(new Row(Kind.STAGE, "convert", image[1] + " → raw volume file, Java decoder (no fsync)",
                    jmh("ConvertBench.convert", "image=" + image[0], "converter=java"),
                    "qemu-img convert -O raw, same image (no fsync)", new Baseline("qemu-img." + image[0]), target));
        }
        rows.add(new Row(Kind.CONTROL, "convert", "compressed qcow2 → raw volume file, QemuImgConverter (no fsync)",
                jmh("ConvertBench.convert", "image=compressed", "converter=qemu-img"),
                "qemu-img convert -O raw, same image (no fsync)", new Baseline("qemu-img.compressed"), null));
        rows.add(new Row(Kind.STAGE, "volume write", "file-backed backend", jmh("VolumeWriteBench.write", "backend=file"),
                DD_NAME, DD, null));
        rows.add(new Row(Kind.STAGE, "volume write", "libvirt, local path (dir pool)", LIBVIRT_LOCAL, DD_NAME, DD, null));
        rows.add(new Row(Kind.STAGE, "volume write", "libvirt, stream upload (dir pool)", LIBVIRT_STREAM, DD_NAME, DD,
                null));
        rows.add(new Row(Kind.STAGE, "volume write", "libvirt, local path (disk pool: a loop device's partition)",
                DISK_LOCAL, DD_LOOP_NAME, DD_LOOP, null));
        rows.add(new Row(Kind.STAGE, "volume write", "libvirt, stream upload (disk pool: a loop device's partition)",
                DISK_STREAM, DD_LOOP_NAME, DD_LOOP, null));
        Jmh reference = jmh("ReferenceSequenceBench.downloadHashConvert");
        rows.add(new Row(Kind.END_TO_END, "end to end", "cold: download, verify, convert, write (S3 adapter, file backend)",
                COLD, REFERENCE_NAME, reference, FASTER));
        rows.add(new Row(Kind.END_TO_END, "end to end", "cold, against its slowest single stage", COLD,
                "slowest stage", new SlowestStage(), null));
        rows.add(new Row(Kind.END_TO_END, "end to end", "warm: cache hit, convert, write", WARM,
                REFERENCE_NAME, reference, null));
        rows.add(new Row(Kind.END_TO_END, "end to end", "cold over a link shaped to 1 Gbit/s (S3 adapter, file backend)",
                COLD_SHAPED, "curl of the same image over the same link (per byte of virtual size)", CURL_SHAPED,
                SHAPED_TARGET));
        rows.add(new Row(Kind.END_TO_END, "end to end", "cold, STREAM mode: libvirt upload into a dir pool volume",
                COLD_STREAM, "cold, LOCAL mode: libvirt local path, same dir pool", COLD_LOCAL, null));
        rows.add(new Row(Kind.CONTROL, "end to end", "cold, LOCAL mode: libvirt local path (dir pool)", COLD_LOCAL,
                "cold, file-backed volume", COLD, null));
        rows.add(new Row(Kind.CONTROL, "end to end", "cold, with read-back (verifyWrittenVolume, file backend)",
                jmh("ProvisionBench.coldReadBack"), NO_READ_BACK, COLD, null));
        rows.add(new Row(Kind.CONTROL, "end to end", "warm, with read-back (verifyWrittenVolume, file backend)",
                jmh("ProvisionBench.warmReadBack"), NO_READ_BACK, WARM, null));
        return rows;
    }

    /** The stages a cold job runs one after the other, by the figure that measures each. */
    private static Map<String, Figure> coldStages() {
        Map<String, Figure> m = new LinkedHashMap<>();
        m.put("download (S3 adapter, single stream)", S3_SINGLE);
        m.put("hash-and-write (cache admission)", ADMISSION);
        m.put("convert (random-content qcow2)", jmh("ConvertBench.convert", "image=random", "converter=java"));
        return m;
    }

    /** Every JMH result the tables read: a test checks that each exists in the benchmark list. */
    static List<Jmh> benchmarksRead() {
        List<Jmh> all = new ArrayList<>();
        for (Row row : stageRows()) {
            Stream.of(row.measured(), row.limit()).filter(Jmh.class::isInstance).map(Jmh.class::cast).forEach(all::add);
        }
        for (String[] adapter : ADAPTERS) {
            for (String parts : PARTS) {
                all.add(jmh("DownloadBench.parts", "adapter=" + adapter[0], "parts=" + parts));
            }
            for (String buf : BUFFERS_KIB) {
                all.add(jmh("DownloadBench.buffer", "adapter=" + adapter[0], "bufferKiB=" + buf));
            }
        }
        for (String[] hit : HITS) {
            all.add(jmh("CacheHitBench." + hit[0]));
        }
        return all;
    }

    Optional<Map.Entry<String, Rate>> slowestStage() {
        Map.Entry<String, Rate> slowest = null;
        for (Map.Entry<String, Figure> e : coldStages().entrySet()) {
            Optional<Rate> rate = e.getValue().in(this);
            if (rate.isPresent() && (slowest == null || rate.get().value() < slowest.getValue().value())) {
                slowest = Map.entry(e.getKey(), rate.get());
            }
        }
        return Optional.ofNullable(slowest);
    }

    // ---- rendering ----

    String markdown() {
        StringBuilder b = new StringBuilder("## Copy throughput against the physical limits\n\n");
        for (String k : META_KEYS) {
            if (meta.containsKey(k)) {
                b.append("- ").append(k).append(": ").append(meta.get(k)).append('\n');
            }
        }
        b.append("- figures in MB/s (10^6 bytes per second), JMH's with their 99.9 % error when it ran several"
                + " iterations; ratio = engine / limit, higher is better\n\n");
        List<Ranked> ranked = stageTable(b);
        downloadTable(b);
        cacheAndVolumeTable(b);
        furthest(b, ranked);
        return b.toString();
    }

    private List<Ranked> stageTable(StringBuilder b) {
        b.append("| Stage | Engine | MB/s | Limit, measured in the same run | MB/s | Ratio | Target |\n");
        b.append("|---|---|---:|---|---:|---:|---|\n");
        List<Ranked> ranked = new ArrayList<>();
        for (Row row : stageRows()) {
            Optional<Rate> m = row.measured().in(this);
            Optional<Rate> l = row.limit().in(this);
            Optional<Double> ratio = m.isPresent() && l.isPresent() && l.get().value() > 0
                    ? Optional.of(m.get().value() / l.get().value()) : Optional.empty();
            String limitName = row.limit() instanceof SlowestStage
                    ? slowestStage().map(e -> "slowest stage: " + e.getKey()).orElse(row.limitName()) : row.limitName();
            String target = row.target() == null ? "" : row.target().text()
                    + ratio.map(r -> row.target().met(r) ? ", met" : ", missed").orElse("");
            b.append("| ").append(row.stage()).append(" | ").append(row.engine()).append(" | ")
                    .append(m.map(Rate::format).orElse("n/a")).append(" | ").append(limitName).append(" | ")
                    .append(l.map(Rate::format).orElse("n/a")).append(" | ")
                    .append(ratio.map(Report::ratio).orElse("n/a")).append(" | ").append(target).append(" |\n");
            if (ratio.isPresent() && row.kind() == Kind.STAGE) {
                ranked.add(new Ranked(row, ratio.get(), m.get(), l.get()));
            }
        }
        return ranked;
    }

    private void downloadTable(StringBuilder b) {
        b.append("\n### Download: single stream against ranged parts, and copy buffers\n\n");
        b.append("MB/s, and in brackets the ratio to `curl` of the same object from the same server."
                + " Parts are 32 MiB; the part columns use a 1 MiB buffer, the buffer columns a single stream.\n\n");
        b.append("| Adapter | single stream | 2 parts | 4 parts | 8 parts | 64 KiB buffer | 1 MiB buffer | 8 MiB buffer |\n");
        b.append("|---|---:|---:|---:|---:|---:|---:|---:|\n");
        Optional<Rate> curl = CURL.in(this);
        for (String[] adapter : ADAPTERS) {
            b.append("| ").append(adapter[1]);
            for (String parts : PARTS) {
                b.append(" | ").append(cell(jmh("DownloadBench.parts", "adapter=" + adapter[0], "parts=" + parts), curl));
            }
            for (String buf : BUFFERS_KIB) {
                b.append(" | ").append(cell(jmh("DownloadBench.buffer", "adapter=" + adapter[0], "bufferKiB=" + buf), curl));
            }
            b.append(" |\n");
        }
        b.append("| curl | ").append(curl.map(Rate::format).orElse("n/a")).append(" | | | | | | |\n");
    }

    private void cacheAndVolumeTable(StringBuilder b) {
        b.append("\n### Cache and volume figures\n\n| Figure | Value |\n|---|---|\n");
        for (String[] hit : HITS) {
            b.append("| cache hit cost (lookup and lease close), ").append(hit[1]).append(" | ")
                    .append(result(jmh("CacheHitBench." + hit[0])).flatMap(Report::primary)
                            .map(p -> String.format(Locale.ROOT, "%.2f µs", p.value())).orElse("n/a"))
                    .append(" |\n");
        }
        b.append("| cache admission / plain file write, same bytes, same run | ")
                .append(pair(ADMISSION, PLAIN_WRITE)).append(" |\n");
        b.append("| libvirt local path / stream upload | ").append(pair(LIBVIRT_LOCAL, LIBVIRT_STREAM)).append(" |\n");
        b.append("| libvirt local path onto a loop partition / dd oflag=direct onto the same device | ")
                .append(pair(DISK_LOCAL, DD_LOOP)).append(" |\n");
        b.append("| dd onto that partition through the page cache (conv=fsync) / with oflag=direct | ")
                .append(pair(new Baseline("dd.loop.cached"), DD_LOOP)).append(" |\n");
        b.append("| cold over the 1 Gbit/s link: time / curl's time for the same image, same link (target ≤ ")
                .append(ratio(SHAPED_TIME_TARGET)).append(") | ").append(timeRatio(COLD_SHAPED, CURL_SHAPED)).append(" |\n");
        b.append("| cold: STREAM mode's time / LOCAL mode's time, same dir pool | ")
                .append(timeRatio(COLD_STREAM, COLD_LOCAL)).append(" |\n");
    }

    private static void furthest(StringBuilder b, List<Ranked> ranked) {
        b.append("\n### Furthest from their limits\n\n");
        ranked.sort(Comparator.comparingDouble(Ranked::ratio));
        if (ranked.isEmpty()) {
            b.append("No stage has both a figure and a limit in this run.\n");
        }
        for (int i = 0; i < Math.min(3, ranked.size()); i++) {
            Ranked r = ranked.get(i);
            b.append(i + 1).append(". ").append(r.row().stage()).append(", ").append(r.row().engine()).append(": ")
                    .append(ratio(r.ratio())).append(" of ").append(r.row().limitName()).append(" (")
                    .append(mb(r.measured().value())).append(" against ").append(mb(r.limit().value()))
                    .append(" MB/s)\n");
        }
    }

    private record Ranked(Row row, double ratio, Rate measured, Rate limit) {
    }

    private String cell(Figure f, Optional<Rate> limit) {
        Optional<Rate> m = f.in(this);
        return m.map(r -> mb(r.value()) + limit.filter(l -> l.value() > 0)
                .map(l -> " (" + ratio(r.value() / l.value()) + ")").orElse("")).orElse("n/a");
    }

    /** How many times {@code b}'s time {@code a} takes for the same bytes: the inverse of the rates' ratio. */
    private String timeRatio(Figure a, Figure b) {
        Optional<Rate> x = a.in(this);
        Optional<Rate> y = b.in(this);
        return x.isPresent() && y.isPresent() && x.get().value() > 0
                ? ratio(y.get().value() / x.get().value()) + "x" : "n/a";
    }

    private String pair(Figure a, Figure b) {
        Optional<Rate> x = a.in(this);
        Optional<Rate> y = b.in(this);
        String both = x.map(r -> mb(r.value())).orElse("n/a") + " / " + y.map(r -> mb(r.value())).orElse("n/a") + " MB/s";
        return x.isPresent() && y.isPresent() && y.get().value() > 0
                ? both + " = " + ratio(x.get().value() / y.get().value()) : both;
    }

    // ---- reading the inputs ----

    /** The first JMH result of {@code figure}'s benchmark whose parameters include all of its parameters. */
    Optional<Map<?, ?>> result(Jmh figure) {
        for (Map<?, ?> e : jmh) {
            if (!(PACKAGE + figure.benchmark()).equals(e.get("benchmark"))) {
                continue;
            }
            Map<?, ?> p = e.get("params") instanceof Map<?, ?> m ? m : Map.of();
            if (figure.params().stream().allMatch(kv -> kv.substring(kv.indexOf('=') + 1)
                    .equals(p.get(kv.substring(0, kv.indexOf('=')))))) {
                return Optional.of(e);
            }
        }
        return Optional.empty();
    }

    /** The {@code bytes} counter (bytes per second in throughput mode) of a JMH result, in MB/s. */
    private static Optional<Rate> bytesPerSecond(Map<?, ?> entry) {
        if (!(entry.get("secondaryMetrics") instanceof Map<?, ?> secondary)
                || !(secondary.get("bytes") instanceof Map<?, ?> bytes)) {
            return Optional.empty();
        }
        double score = number(bytes.get("score"));
        return Double.isNaN(score) ? Optional.empty()
                : Optional.of(new Rate(score / 1e6, number(bytes.get("scoreError")) / 1e6));
    }

    /** The primary score in its own unit (for the cache hit: µs per lookup). */
    private static Optional<Rate> primary(Map<?, ?> entry) {
        return entry.get("primaryMetric") instanceof Map<?, ?> p
                ? Optional.of(new Rate(number(p.get("score")), number(p.get("scoreError")))) : Optional.empty();
    }

    /** The mean of the runs' rates (bytes / seconds each), like JMH's mean of its iterations. */
    Optional<Rate> baselineRate(String name) {
        String line = baselines.get(name);
        String[] parts = line == null ? new String[0] : line.trim().split("\\s+");
        if (parts.length < 2) {
            return Optional.empty();
        }
        double bytes = Double.parseDouble(parts[0]);
        double sum = 0;
        for (int i = 1; i < parts.length; i++) {
            sum += bytes / Double.parseDouble(parts[i]);
        }
        return Optional.of(new Rate(sum / (parts.length - 1) / 1e6, Double.NaN));
    }

    private static double number(Object o) {
        return o instanceof Number n ? n.doubleValue() : Double.NaN; // JMH writes "NaN" as a string
    }

    static String mb(double mbps) {
        return String.format(Locale.ROOT, mbps >= 100 ? "%.0f" : "%.1f", mbps);
    }

    static String ratio(double r) {
        return String.format(Locale.ROOT, "%.2f", r);
    }
}
