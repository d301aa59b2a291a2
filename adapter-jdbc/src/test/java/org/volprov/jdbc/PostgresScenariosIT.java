package org.volprov.jdbc;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.volprov.jdbc.testkit.PostgresTestDatabase;

class PostgresScenariosIT extends JdbcStoreScenarios {
    private final String schema = PostgresTestDatabase.newSchemaName();

    @Override
    protected JdbcJobStoreConfig.Builder storage() {
        return PostgresTestDatabase.shared().config(schema);
    }

    @AfterEach
    void dropSchema() {
        closeStores();
        PostgresTestDatabase.shared().dropSchema(schema);
    }

    @Test
    void open_createsItsSchema_andKeepsTheRequestAsJsonb() {
        JdbcJobStore s = open();
        String type = s.jdbi().withHandle(h -> h.createQuery("SELECT data_type FROM information_schema.columns"
                + " WHERE table_schema = :s AND table_name = 'volprov_jobs' AND column_name = 'request'")
                .bind("s", schema).mapTo(String.class).one());
        assertThat(type).isEqualTo("jsonb");
    }
}
