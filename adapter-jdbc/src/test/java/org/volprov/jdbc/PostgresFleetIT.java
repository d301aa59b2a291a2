package org.volprov.jdbc;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.volprov.Job;
import org.volprov.JobKind;
import org.volprov.JobState;
import org.volprov.ProvisionRequest;
import org.volprov.Provisioner;
import org.volprov.cache.DiskImageCache;
import org.volprov.jdbc.testkit.PostgresTestDatabase;
import org.volprov.volume.FileVolumeBackend;

/**
 * Fleet mode end to end: a client process queues jobs for two hosts; each host's engine, on its
 * own store and volume directory, claims and runs only its own.
 */
class PostgresFleetIT {
    @TempDir
    static Path images;
    static EngineFixture fixture;

    @TempDir
    Path work;
    private final String schema = PostgresTestDatabase.newSchemaName();
    private final List<AutoCloseable> toClose = new ArrayList<>();
    private final Map<String, CompletableFuture<Job>> ends = new ConcurrentHashMap<>();
    /** The jobs each host's engine reported an event of. */
    private final Map<String, Set<String>> seenBy = new ConcurrentHashMap<>();
    private final Map<String, Provisioner> engines = new ConcurrentHashMap<>();

    @BeforeAll
    static void makeImages() throws Exception {
        fixture = new EngineFixture(images);
    }

    @AfterEach
    void tearDown() throws Exception {
        for (int i = toClose.size() - 1; i >= 0; i--) {
            toClose.get(i).close();
        }
        PostgresTestDatabase.shared().dropSchema(schema);
    }

    private JdbcJobStore store(String host) {
        JdbcJobStore s = JdbcJobStore.open(PostgresTestDatabase.shared().config(schema).host(host).build());
        toClose.add(s);
        return s;
    }

    private FileVolumeBackend hostEngine(String host) {
        JdbcJobStore store = store(host);
        FileVolumeBackend volumes = FileVolumeBackend.open(work.resolve(host).resolve("volumes"));
        DiskImageCache cache = DiskImageCache.builder().directory(work.resolve(host).resolve("cache"))
                .maxBytes(1L << 30).build();
        toClose.add(cache);
        Provisioner p = Provisioner.builder().source(fixture.source()).cache(cache).backend(volumes)
                .workDirectory(work).queue(store, Duration.ofMillis(50))
                .listener(e -> {
                    seenBy.computeIfAbsent(host, h -> ConcurrentHashMap.newKeySet()).add(e.job().id());
                    if (e.job().state().terminal()) {
                        ends.computeIfAbsent(e.job().id(), id -> new CompletableFuture<>()).complete(e.job());
                    }
                })
                .build();
        toClose.add(p);
        engines.put(host, p);
        return volumes;
    }

    private String enqueue(JdbcJobStore client, String volume, String host) {
        Job job = Job.pending(UUID.randomUUID().toString(), EngineFixture.request(volume),
                Instant.now().truncatedTo(ChronoUnit.MICROS));
        ends.computeIfAbsent(job.id(), id -> new CompletableFuture<>());
        client.enqueue(job, host);
        return job.id();
    }

    @Test
    void jobsQueuedForTwoHosts_areEachRunByTheirOwnHostsEngine() throws Exception {
        JdbcJobStore client = store("client");
        List<String> forA = List.of(enqueue(client, "vm-a1", "hv-a"), enqueue(client, "vm-a2", "hv-a"));
        List<String> forB = List.of(enqueue(client, "vm-b1", "hv-b"));
        FileVolumeBackend volumesA = hostEngine("hv-a");
        FileVolumeBackend volumesB = hostEngine("hv-b");

        for (String id : concat(forA, forB)) {
            Job done = ends.get(id).get(120, TimeUnit.SECONDS);
            assertThat(done.state()).as(id).isEqualTo(JobState.COMPLETED);
            assertThat(client.find(id).orElseThrow().state()).isEqualTo(JobState.COMPLETED);
        }
        assertThat(fixture.holdsImage(volumesA.directory().resolve("vm-a1"))).isTrue();
        assertThat(fixture.holdsImage(volumesA.directory().resolve("vm-a2"))).isTrue();
        assertThat(fixture.holdsImage(volumesB.directory().resolve("vm-b1"))).isTrue();
        assertThat(volumesA.find("vm-b1")).isEmpty();
        assertThat(volumesB.find("vm-a1")).isEmpty();
        assertThat(client.claim("hv-a", "another-engine", Duration.ofSeconds(30))).isEmpty();
    }

    @Test
    void prefetchQueuedForOneHost_warmsThatHostsCacheOnly_andTheOtherEngineNeverTakesIt() throws Exception {
        JdbcJobStore client = store("client");
        FileVolumeBackend volumesA = hostEngine("hv-a");
        FileVolumeBackend volumesB = hostEngine("hv-b");
        Job prefetch = Job.pending(UUID.randomUUID().toString(),
                ProvisionRequest.builder().kind(JobKind.PREFETCH).imageUri("s3://images/disk.qcow2")
                        .correlationId("warm-hv-b").build(),
                Instant.now().truncatedTo(ChronoUnit.MICROS));
        ends.computeIfAbsent(prefetch.id(), id -> new CompletableFuture<>());
        client.enqueue(prefetch, "hv-b");

        Job done = ends.get(prefetch.id()).get(120, TimeUnit.SECONDS);
        assertThat(done.state()).isEqualTo(JobState.COMPLETED);
        assertThat(done.kind()).isEqualTo(JobKind.PREFETCH);
        assertThat(done.cacheHit()).isFalse();
        Job stored = client.find(prefetch.id()).orElseThrow();
        assertThat(stored.state()).isEqualTo(JobState.COMPLETED);
        assertThat(stored.kind()).isEqualTo(JobKind.PREFETCH);
        assertThat(stored.request().correlationId()).isEqualTo("warm-hv-b");
        assertThat(engines.get("hv-b").cacheStats().entries()).isOne();
        assertThat(engines.get("hv-a").cacheStats().entries()).isZero();
        assertThat(seenBy.getOrDefault("hv-a", Set.of())).doesNotContain(prefetch.id());
        assertThat(volumeFiles(volumesA)).isEmpty();
        assertThat(volumeFiles(volumesB)).as("a prefetch makes no volume").isEmpty();

        // A provision on hv-b now finds the image in its cache.
        String provision = enqueue(client, "vm-b1", "hv-b");
        Job provisioned = ends.get(provision).get(120, TimeUnit.SECONDS);
        assertThat(provisioned.state()).isEqualTo(JobState.COMPLETED);
        assertThat(provisioned.cacheHit()).isTrue();
    }

    private static List<Path> volumeFiles(FileVolumeBackend volumes) throws java.io.IOException {
        try (var files = java.nio.file.Files.list(volumes.directory())) {
            return files.toList();
        }
    }

    private static List<String> concat(List<String> a, List<String> b) {
        List<String> all = new ArrayList<>(a);
        all.addAll(b);
        return all;
    }
}
