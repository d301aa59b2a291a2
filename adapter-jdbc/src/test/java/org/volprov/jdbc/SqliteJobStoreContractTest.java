package org.volprov.jdbc;

import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.io.TempDir;
import org.volprov.JobStore;
import org.volprov.contract.JobStoreContract;

/** Core's JobStore contract on SQLite, in a temporary file per test. */
class SqliteJobStoreContractTest extends JobStoreContract {
    @TempDir
    Path dir;
    private JdbcJobStore store;

    @Override
    protected JobStore store() {
        if (store == null) {
            store = JdbcJobStore.open(JdbcJobStoreConfig.sqlite(dir.resolve("jobs.db")).host("hv-1").build());
        }
        return store;
    }

    @AfterEach
    void close() {
        if (store != null) {
            store.close();
        }
    }
}
