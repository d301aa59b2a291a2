package org.volprov.jdbc;

import java.time.Clock;
import org.junit.jupiter.api.AfterEach;
import org.volprov.contract.JobStoreContract;
import org.volprov.jdbc.testkit.PostgresTestDatabase;
import org.volprov.job.JobStore;

/**
 * Core's JobStore contract on PostgreSQL, in a schema of its own per test; eight engines taking
 * jobs over at once run through a pool of eight connections, so that the row locks keep them apart.
 */
class PostgresJobStoreContractIT extends JobStoreContract {
    private final String schema = PostgresTestDatabase.newSchemaName();
    private boolean opened;

    @Override
    protected JobStore createStore(String host, Clock clock) {
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
