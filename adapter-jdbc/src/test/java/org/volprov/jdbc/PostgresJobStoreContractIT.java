package org.volprov.jdbc;

import org.junit.jupiter.api.AfterEach;
import org.volprov.JobStore;
import org.volprov.contract.JobStoreContract;
import org.volprov.jdbc.testkit.PostgresTestDatabase;

/** Core's JobStore contract on PostgreSQL, in a schema of its own per test. */
class PostgresJobStoreContractIT extends JobStoreContract {
    private final String schema = PostgresTestDatabase.newSchemaName();
    private JdbcJobStore store;

    @Override
    protected JobStore store() {
        if (store == null) {
            store = JdbcJobStore.open(PostgresTestDatabase.shared().config(schema).host("hv-1").build());
        }
        return store;
    }

    @AfterEach
    void dropSchema() {
        if (store != null) {
            store.close();
            PostgresTestDatabase.shared().dropSchema(schema);
        }
    }
}
