package org.volprov.it;

import java.nio.file.Path;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import org.volprov.Job;
import org.volprov.jdbc.JdbcJobStore;
import org.volprov.jdbc.JdbcJobStoreConfig;
import org.volprov.jdbc.testkit.PostgresTestDatabase;

/**
 * The job stores categories run on: PostgreSQL, as a fleet would (each store in a schema of its own,
 * dropped when the stack closes), or SQLite, the embedded default.
 */
final class JobStores {
    private JobStores() {
    }

    /** {@code j} with its times as a JDBC store keeps them: to the microsecond. */
    static Job asStored(Job j) {
        return new Job(j.id(), j.request(), j.state(), j.progress(), j.errorCode(), j.errorMessage(), j.cacheHit(),
                j.imageDigest(), j.volumePath(), j.createdVolume(), j.attempts(), micros(j.createdAt()),
                micros(j.startedAt()), micros(j.updatedAt()), micros(j.finishedAt()));
    }

    private static Instant micros(Instant t) {
        return t == null ? null : t.truncatedTo(ChronoUnit.MICROS);
    }

    static PostgresTestDatabase postgres() {
        return PostgresTestDatabase.shared();
    }

    /** A store in {@code schema} of the suite's PostgreSQL, acting for {@code host}. */
    static JdbcJobStore postgres(String schema, String host) {
        return JdbcJobStore.open(postgres().config(schema).host(host).build());
    }

    static JdbcJobStore sqlite(Path file, String host) {
        return JdbcJobStore.open(JdbcJobStoreConfig.sqlite(file).host(host).build());
    }
}
