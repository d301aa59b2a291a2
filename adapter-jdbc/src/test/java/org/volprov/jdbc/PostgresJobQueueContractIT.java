package org.volprov.jdbc;

import java.time.Clock;
import org.junit.jupiter.api.AfterEach;
import org.volprov.contract.JobQueueContract;
import org.volprov.jdbc.testkit.PostgresTestDatabase;
import org.volprov.job.JobQueue;

/**
 * Core's JobQueue contract on PostgreSQL, among them 8 threads claiming 200 jobs through one pool
 * of 8 connections, so that the claims really run at once and SKIP LOCKED is what keeps them apart.
 */
class PostgresJobQueueContractIT extends JobQueueContract {
    private final String schema = PostgresTestDatabase.newSchemaName();
    private boolean opened;

    @Override
    protected JobQueue createQueue(String host, Clock clock) {
        opened = true;
        return JdbcJobStore.open(PostgresTestDatabase.shared().config(schema).host(host).clock(clock)
                .maxPoolSize(8).build());
    }

    @AfterEach
    void dropSchema() {
        if (opened) {
            PostgresTestDatabase.shared().dropSchema(schema);
        }
    }
}
