package org.volprov.jdbc;

import java.nio.file.Path;
import java.time.Clock;
import org.junit.jupiter.api.io.TempDir;
import org.volprov.contract.JobQueueContract;
import org.volprov.job.JobQueue;

/** Core's JobQueue contract on SQLite: several processes of one host may share a file. */
class SqliteJobQueueContractTest extends JobQueueContract {
    @TempDir
    Path dir;

    @Override
    protected JobQueue createQueue(String host, Clock clock) {
        return JdbcJobStore.open(JdbcJobStoreConfig.sqlite(dir.resolve("jobs.db")).host(host).clock(clock).build());
    }
}
