package org.volprov.jdbc;

import java.nio.file.Path;
import java.time.Clock;
import org.junit.jupiter.api.io.TempDir;
import org.volprov.contract.JobStoreContract;
import org.volprov.job.JobStore;

/** Core's JobStore contract on SQLite, in a temporary file per test. */
class SqliteJobStoreContractTest extends JobStoreContract {
    @TempDir
    Path dir;

    @Override
    protected JobStore createStore(String host, Clock clock) {
        return JdbcJobStore.open(JdbcJobStoreConfig.sqlite(dir.resolve("jobs.db")).host(host).clock(clock).build());
    }
}
