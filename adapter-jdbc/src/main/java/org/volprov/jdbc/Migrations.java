package org.volprov.jdbc;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.zip.CRC32;
import org.jdbi.v3.core.Handle;
import org.jdbi.v3.core.Jdbi;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;

/**
 * The versioned schema. Each migration runs once, in order, in one transaction with the version row
 * that records it. Two processes starting at once are serialized: PostgreSQL by an advisory lock
 * taken first in the transaction, SQLite by its write lock ({@code BEGIN IMMEDIATE}). A database
 * whose version is newer than {@link #LATEST} is refused, so an older library never writes rows it
 * does not understand.
 */
final class Migrations {
    private static final Logger LOG = LoggerFactory.getLogger(Migrations.class);

    record Migration(int version, String description, List<String> sqlite, List<String> postgresql) {
        List<String> statements(Dialect d) {
            return d == Dialect.SQLITE ? sqlite : postgresql;
        }
    }

    private static final String STATES = "('PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED')";

    // Indexes serve: list newest first (created), by state, by volume, by correlation id; a host's
    // unfinished and claimable jobs (active, partial: only live rows); retention (finished).
    private static final List<String> INDEXES = List.of(
            "CREATE INDEX volprov_jobs_created_idx ON volprov_jobs (created_at, id)",
            "CREATE INDEX volprov_jobs_state_idx ON volprov_jobs (state, created_at)",
            "CREATE INDEX volprov_jobs_volume_idx ON volprov_jobs (volume_name, created_at)",
            "CREATE INDEX volprov_jobs_correlation_idx ON volprov_jobs (correlation_id, created_at)"
                    + " WHERE correlation_id IS NOT NULL",
            "CREATE INDEX volprov_jobs_active_idx ON volprov_jobs (owner_host, created_at, id)"
                    + " WHERE state IN ('PENDING', 'RUNNING')",
            "CREATE INDEX volprov_jobs_finished_idx ON volprov_jobs (finished_at) WHERE finished_at IS NOT NULL");

    static final List<Migration> ALL = List.of(
            new Migration(1, "jobs table",
                    concat("""
                            CREATE TABLE volprov_jobs (
                              id TEXT NOT NULL PRIMARY KEY,
                              request TEXT NOT NULL,
                              volume_name TEXT NOT NULL,
                              correlation_id TEXT,
                              state TEXT NOT NULL CHECK (state IN %s),
                              stage TEXT NOT NULL,
                              bytes_done INTEGER NOT NULL,
                              bytes_total INTEGER NOT NULL,
                              error_code TEXT,
                              error_message TEXT,
                              cache_hit INTEGER NOT NULL,
                              image_digest TEXT,
                              volume_path TEXT,
                              created_volume INTEGER NOT NULL,
                              attempts INTEGER NOT NULL,
                              owner_host TEXT NOT NULL,
                              queued INTEGER NOT NULL,
                              lease_expires_at INTEGER,
                              created_at INTEGER NOT NULL,
                              started_at INTEGER,
                              updated_at INTEGER NOT NULL,
                              finished_at INTEGER
                            ) STRICT""".formatted(STATES)),
                    concat("""
                            CREATE TABLE volprov_jobs (
                              id TEXT NOT NULL PRIMARY KEY,
                              request JSONB NOT NULL,
                              volume_name TEXT NOT NULL,
                              correlation_id TEXT,
                              state TEXT NOT NULL CHECK (state IN %s),
                              stage TEXT NOT NULL,
                              bytes_done BIGINT NOT NULL,
                              bytes_total BIGINT NOT NULL,
                              error_code TEXT,
                              error_message TEXT,
                              cache_hit BOOLEAN NOT NULL,
                              image_digest TEXT,
                              volume_path TEXT,
                              created_volume BOOLEAN NOT NULL,
                              attempts INTEGER NOT NULL,
                              owner_host TEXT NOT NULL,
                              queued BOOLEAN NOT NULL,
                              lease_expires_at TIMESTAMPTZ,
                              created_at TIMESTAMPTZ NOT NULL,
                              started_at TIMESTAMPTZ,
                              updated_at TIMESTAMPTZ NOT NULL,
                              finished_at TIMESTAMPTZ
                            )""".formatted(STATES))),
            // Every job that has not ended is held by one engine under a lease (lease_expires_at,
            // which version 1 kept for queued jobs only). Rows of version 1 have no holder: their
            // lease counts as run out, and the next engine of their host recovers them.
            new Migration(2, "holder engine of every job",
                    List.of("ALTER TABLE volprov_jobs ADD COLUMN holder_engine TEXT"),
                    List.of("ALTER TABLE volprov_jobs ADD COLUMN holder_engine TEXT")));

    /** The schema version this library writes. */
    static final int LATEST = ALL.get(ALL.size() - 1).version();

    private Migrations() {
    }

    private static List<String> concat(String table) {
        return java.util.stream.Stream.concat(java.util.stream.Stream.of(table), INDEXES.stream()).toList();
    }

    /** Brings the schema to {@link #LATEST}; returns the version found before. */
    static int migrate(Jdbi jdbi, Dialect dialect, String schema, String location) {
        return migrate(jdbi, dialect, schema, location, LATEST);
    }

    /** Brings the schema to version {@code upTo} (tests make databases of older versions with it). */
    static int migrate(Jdbi jdbi, Dialect dialect, String schema, String location, int upTo) {
        return jdbi.inTransaction(h -> {
            if (dialect == Dialect.POSTGRESQL) {
                h.createQuery("SELECT 1 FROM (SELECT pg_advisory_xact_lock(:key)) AS locked")
                        .bind("key", lockKey(schema)).mapTo(Integer.class).one();
                if (schema != null) {
                    h.execute("CREATE SCHEMA IF NOT EXISTS " + schema); // validated by the config
                }
            }
            h.execute(dialect == Dialect.SQLITE
                    ? "CREATE TABLE IF NOT EXISTS volprov_schema_version (version INTEGER NOT NULL PRIMARY KEY,"
                            + " description TEXT NOT NULL,"
                            + " applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))"
                    : "CREATE TABLE IF NOT EXISTS volprov_schema_version (version INTEGER NOT NULL PRIMARY KEY,"
                            + " description TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())");
            int found = current(h);
            if (found > LATEST) {
                throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "the job store at " + location
                        + " has schema version " + found + ", newer than version " + LATEST + " that this volprov"
                        + " knows; upgrade volprov, or use another database" + (dialect == Dialect.POSTGRESQL
                                ? " or schema" : " file"));
            }
            for (Migration m : ALL) {
                if (m.version() > found && m.version() <= upTo) {
                    for (String sql : m.statements(dialect)) {
                        h.execute(sql);
                    }
                    h.createUpdate("INSERT INTO volprov_schema_version (version, description) VALUES (:v, :d)")
                            .bind("v", m.version()).bind("d", m.description()).execute();
                    LOG.info("job store at {}: schema migrated to version {} ({})", location, m.version(),
                            m.description());
                }
            }
            return found;
        });
    }

    static int current(Handle h) {
        return h.createQuery("SELECT COALESCE(MAX(version), 0) FROM volprov_schema_version").mapTo(Integer.class).one();
    }

    // One lock per schema, so that stores in two schemas of one database do not wait for each other.
    private static long lockKey(String schema) {
        CRC32 crc = new CRC32();
        crc.update(("volprov-migrations:" + (schema == null ? "" : schema)).getBytes(StandardCharsets.UTF_8));
        return 0x766f6c7000000000L | crc.getValue();
    }
}
