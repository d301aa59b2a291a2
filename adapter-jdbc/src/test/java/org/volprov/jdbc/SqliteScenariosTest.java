package org.volprov.jdbc;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SqliteScenariosTest extends JdbcStoreScenarios {
    @TempDir
    Path dir;

    @Override
    protected JdbcJobStoreConfig.Builder storage() {
        return JdbcJobStoreConfig.sqlite(dir.resolve("state/jobs.db"));
    }

    @Test
    void open_createsTheFileAndItsDirectory_inWalMode() {
        JdbcJobStore s = open();
        assertThat(dir.resolve("state/jobs.db")).exists();
        String mode = s.jdbi().withHandle(h -> h.createQuery("PRAGMA journal_mode").mapTo(String.class).one());
        assertThat(mode).isEqualToIgnoringCase("wal");
    }
}
