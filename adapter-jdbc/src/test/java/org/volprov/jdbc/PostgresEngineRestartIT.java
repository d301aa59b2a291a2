package org.volprov.jdbc;

import org.junit.jupiter.api.AfterEach;
import org.volprov.jdbc.testkit.PostgresTestDatabase;

/** The engine restart on PostgreSQL, in a schema of its own. */
class PostgresEngineRestartIT extends EngineRestartScenarios {
    private final String schema = PostgresTestDatabase.newSchemaName();

    @Override
    protected JdbcJobStore openStore() {
        return JdbcJobStore.open(PostgresTestDatabase.shared().config(schema).host("hv-1").clock(clock).build());
    }

    @AfterEach
    void dropSchema() throws Exception {
        tearDown();
        PostgresTestDatabase.shared().dropSchema(schema);
    }
}
