package org.volprov.jdbc;

import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.Locale;
import java.util.Objects;
import java.util.Optional;
import java.util.regex.Pattern;
import org.volprov.ProvisioningException;
import org.volprov.support.ConfigChecks;
import org.volprov.support.LocalHost;
import org.volprov.support.Redaction;

/**
 * Immutable settings of a {@link JdbcJobStore}. Start from {@link #sqlite(Path)} or
 * {@link #postgres(String)}; every setter checks its argument and refuses it with
 * {@code INVALID_REQUEST} naming the field. {@link #toString()} never prints the password.
 */
public final class JdbcJobStoreConfig {
    /** The databases the store speaks. */
    public enum Database {
        /** One file on the host, WAL journal: the embedded default. */
        SQLITE,
        /** A server shared by a fleet; the only one that makes sense for the fleet queue across hosts. */
        POSTGRESQL
    }

    private static final Pattern SCHEMA = Pattern.compile("[a-z_][a-z0-9_]{0,62}");
    private static final Pattern HOST = Pattern.compile("[\\p{Print}&&[^\\p{Cntrl}]]{1,255}");

    private final Database database;
    private final Path sqliteFile;
    private final String jdbcUrl;
    private final String username;
    private final String password;
    private final String schema;
    private final String host;
    private final Clock clock;
    private final int maxPoolSize;
    private final Duration connectionTimeout;
    private final Duration busyTimeout;
    private final Duration retention;
    private final Duration pruneInterval;
    private final int pruneBatchSize;

    private JdbcJobStoreConfig(Builder b) {
        this.database = b.database;
        this.sqliteFile = b.sqliteFile;
        this.jdbcUrl = b.jdbcUrl;
        this.username = b.username;
        this.password = b.password;
        this.schema = b.schema;
        this.host = b.host != null ? b.host : LocalHost.name();
        this.clock = b.clock;
        this.maxPoolSize = b.maxPoolSize;
        this.connectionTimeout = b.connectionTimeout;
        this.busyTimeout = b.busyTimeout;
        this.retention = b.retention;
        this.pruneInterval = b.pruneInterval;
        this.pruneBatchSize = b.pruneBatchSize;
    }

    /** A store in the SQLite database file {@code file}, created with its directory when missing. */
    public static Builder sqlite(Path file) {
        Objects.requireNonNull(file, "file");
        if (file.toString().isBlank() || file.toString().startsWith(":")) {
            throw ProvisioningException.invalid("file", "must be a file path, not " + file);
        }
        Builder b = new Builder(Database.SQLITE);
        b.sqliteFile = file.toAbsolutePath().normalize();
        return b;
    }

    /** A store on the PostgreSQL server at {@code jdbcUrl} ({@code jdbc:postgresql://host:port/database}). */
    public static Builder postgres(String jdbcUrl) {
        String url = ConfigChecks.nonBlank("jdbcUrl", jdbcUrl);
        if (!url.startsWith("jdbc:postgresql:")) {
            throw ProvisioningException.invalid("jdbcUrl", "must start with jdbc:postgresql:, got " + Redaction.redact(url));
        }
        Builder b = new Builder(Database.POSTGRESQL);
        b.jdbcUrl = url;
        return b;
    }

    public Database database() {
        return database;
    }

    /** The SQLite file; empty for PostgreSQL. */
    public Optional<Path> sqliteFile() {
        return Optional.ofNullable(sqliteFile);
    }

    /** The JDBC URL the store connects to (for SQLite, made from the file). */
    public String jdbcUrl() {
        return database == Database.SQLITE ? "jdbc:sqlite:" + sqliteFile : jdbcUrl;
    }

    public Optional<String> username() {
        return Optional.ofNullable(username);
    }

    /** The password; kept out of {@link #toString()}. */
    public Optional<String> password() {
        return Optional.ofNullable(password);
    }

    /** The PostgreSQL schema holding the tables, created when missing; empty for the connection's default. */
    public Optional<String> schema() {
        return Optional.ofNullable(schema);
    }

    /**
     * The host the store acts for: the host its jobs belong to, whose abandoned jobs it recovers,
     * and whose queue it claims from. Default: this machine's name.
     */
    public String host() {
        return host;
    }

    public Clock clock() {
        return clock;
    }

    public int maxPoolSize() {
        return maxPoolSize;
    }

    public Duration connectionTimeout() {
        return connectionTimeout;
    }

    public Duration busyTimeout() {
        return busyTimeout;
    }

    /** How long a finished job is kept; empty (the default) keeps every job. */
    public Optional<Duration> retention() {
        return Optional.ofNullable(retention);
    }

    public Duration pruneInterval() {
        return pruneInterval;
    }

    public int pruneBatchSize() {
        return pruneBatchSize;
    }

    /** Where the store's tables live, for messages and logs: the file, or the URL (credentials masked) and schema. */
    public String location() {
        return database == Database.SQLITE ? sqliteFile.toString()
                : Redaction.redact(jdbcUrl) + (schema == null ? "" : " schema " + schema);
    }

    @Override
    public String toString() {
        return "JdbcJobStoreConfig[" + database.name().toLowerCase(Locale.ROOT) + " " + location()
                + (username == null ? "" : ", user=" + username)
                + (password == null ? "" : ", password=****")
                + ", host=" + host + ", maxPoolSize=" + maxPoolSize + ", connectionTimeout=" + connectionTimeout
                + (database == Database.SQLITE ? ", busyTimeout=" + busyTimeout : "")
                + (retention == null ? "" : ", retention=" + retention + " every " + pruneInterval
                        + " in batches of " + pruneBatchSize)
                + "]";
    }

    /** Builds a {@link JdbcJobStoreConfig}. Not thread-safe. */
    public static final class Builder {
        private final Database database;
        private Path sqliteFile;
        private String jdbcUrl;
        private String username;
        private String password;
        private String schema;
        private String host;
        private Clock clock = Clock.systemUTC();
        private int maxPoolSize = 4;
        private Duration connectionTimeout = Duration.ofSeconds(5);
        private Duration busyTimeout = Duration.ofSeconds(10);
        private Duration retention;
        private Duration pruneInterval = Duration.ofHours(1);
        private int pruneBatchSize = 500;

        private Builder(Database database) {
            this.database = database;
        }

        /** User and password for PostgreSQL; the password is never printed. */
        public Builder credentials(String username, String password) {
            requirePostgres("credentials");
            this.username = ConfigChecks.nonBlank("username", username);
            this.password = Objects.requireNonNull(password, "password");
            return this;
        }

        /** The PostgreSQL schema for the tables, created when missing: lower-case letters, digits, '_'. */
        public Builder schema(String schema) {
            requirePostgres("schema");
            if (schema == null || !SCHEMA.matcher(schema).matches()) {
                throw ProvisioningException.invalid("schema", "must be 1-63 of a-z, 0-9 and _, not starting with "
                        + "a digit, got " + schema);
            }
            this.schema = schema;
            return this;
        }

        /**
         * The host this store acts for (default: this machine's name): a host id, the same for every
         * engine of that host, and the name the fleet queues jobs for. It does not name an engine:
         * each engine has its own id ({@code Provisioner.Builder.engineId}), which holds its jobs.
         */
        public Builder host(String host) {
            if (host == null || host.isBlank() || !HOST.matcher(host).matches()) {
                throw ProvisioningException.invalid("host", "must be 1-255 printable characters, got " + host);
            }
            this.host = host;
            return this;
        }

        /** The clock for leases and retention (default UTC system clock). */
        public Builder clock(Clock clock) {
            this.clock = Objects.requireNonNull(clock, "clock");
            return this;
        }

        /** Connections kept open at most (default 4). */
        public Builder maxPoolSize(int n) {
            if (n < 1 || n > 64) {
                throw ProvisioningException.invalid("maxPoolSize", "must be between 1 and 64, not " + n);
            }
            this.maxPoolSize = n;
            return this;
        }

        /**
         * How long an operation waits for a connection (default 5 s): while the database is down,
         * each write of a running job waits this long before the job goes on without it.
         */
        public Builder connectionTimeout(Duration timeout) {
            ConfigChecks.positiveMillis("connectionTimeout", timeout);
            if (timeout.toMillis() < 500) {
                throw ProvisioningException.invalid("connectionTimeout", "must be at least 500 ms");
            }
            this.connectionTimeout = timeout;
            return this;
        }

        /** How long SQLite waits for another writer's lock before failing (default 10 s). */
        public Builder busyTimeout(Duration timeout) {
            this.busyTimeout = ConfigChecks.positiveMillis("busyTimeout", timeout);
            return this;
        }

        /**
         * Deletes jobs that finished more than {@code maxAge} ago, every {@code interval}, in batches
         * (default: off, every job is kept). {@link JdbcJobStore#prune()} does one pass on demand.
         */
        public Builder retention(Duration maxAge, Duration interval) {
            this.retention = ConfigChecks.positiveMillis("retention", maxAge);
            this.pruneInterval = ConfigChecks.positiveMillis("pruneInterval", interval);
            return this;
        }

        /** Jobs deleted per statement when pruning (default 500): short transactions, short locks. */
        public Builder pruneBatchSize(int n) {
            if (n < 1 || n > 100_000) {
                throw ProvisioningException.invalid("pruneBatchSize", "must be between 1 and 100000, not " + n);
            }
            this.pruneBatchSize = n;
            return this;
        }

        private void requirePostgres(String field) {
            if (database != Database.POSTGRESQL) {
                throw ProvisioningException.invalid(field, "applies to PostgreSQL only");
            }
        }

        public JdbcJobStoreConfig build() {
            return new JdbcJobStoreConfig(this);
        }
    }
}
