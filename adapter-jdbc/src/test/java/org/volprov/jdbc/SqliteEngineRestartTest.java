package org.volprov.jdbc;

/** The engine restart on one SQLite file, as the embedded default runs it. */
class SqliteEngineRestartTest extends EngineRestartScenarios {
    @Override
    protected JdbcJobStore openStore() {
        return JdbcJobStore.open(JdbcJobStoreConfig.sqlite(work.resolve("db/jobs.db")).host("hv-1").clock(clock)
                .build());
    }
}
