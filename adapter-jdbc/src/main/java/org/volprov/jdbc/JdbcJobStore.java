package org.volprov.jdbc;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.time.Instant;
import java.util.Collection;
import java.util.HashSet;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.jdbi.v3.core.Handle;
import org.jdbi.v3.core.Jdbi;
import org.jdbi.v3.core.statement.NoTemplateEngine;
import org.jdbi.v3.core.statement.SqlStatement;
import org.jdbi.v3.core.statement.StatementContext;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.sqlite.SQLiteConfig;
import org.sqlite.SQLiteDataSource;
import org.volprov.ErrorCode;
import org.volprov.Job;
import org.volprov.JobFilter;
import org.volprov.JobState;
import org.volprov.Progress;
import org.volprov.ProvisioningException;
import org.volprov.Stage;
import org.volprov.job.JobJson;
import org.volprov.job.JobQueue;
import org.volprov.support.ConfigChecks;
import org.volprov.support.DaemonThreads;

/**
 * A {@link JobQueue} (and so a {@link org.volprov.job.JobStore}) on Jdbi 3, in SQLite (one file, WAL
 * journal, busy timeout) or PostgreSQL (the fleet's shared queue, claims with
 * {@code FOR UPDATE SKIP LOCKED}).
 *
 * <p>{@link #open} applies the schema migrations and refuses a database of a newer version. The
 * store acts for {@link JdbcJobStoreConfig#host()}: inserted jobs are that host's, and
 * {@link #abandoned} and {@link #takeOver} see only that host's. Each job that has not ended has a
 * holder engine and a lease expiry in its row; every write is one statement whose {@code WHERE}
 * names the holder, so an engine that lost a job cannot write it, and a take-over is one
 * conditional {@code UPDATE} on an expired lease, so two engines never both take one job (PostgreSQL
 * re-checks the condition on the row it waited for; SQLite serializes writers). An ended job never
 * changes (rewriting the same terminal snapshot is accepted, so a retried write succeeds).
 *
 * <p>Connections come from a HikariCP pool that validates them on borrow. When PostgreSQL restarts,
 * an operation that breaks on a connection the server dropped is tried again on another one, so the
 * first operation after the server is back succeeds. While the database is down every operation
 * fails with {@code BACKEND_FAILURE} after the configured connection timeout; the engine keeps its
 * jobs running and writes their state when the database returns.
 *
 * <p>Thread-safe. Errors are {@link ProvisioningException} {@code BACKEND_FAILURE} with the driver's
 * exception as cause, except where {@link JobQueue} says otherwise.
 */
public final class JdbcJobStore implements JobQueue {
    private static final Logger LOG = LoggerFactory.getLogger(JdbcJobStore.class);
    private static final String ACTIVE = "('PENDING', 'RUNNING')";
    private static final String TERMINAL = "('COMPLETED', 'FAILED', 'CANCELLED')";
    private static final String LEASE_RAN_OUT = "(lease_expires_at IS NULL OR lease_expires_at <= :now)";
    private static final int MAX_PRUNE_BATCHES = 100_000;
    /** Ids per renewal statement: well below both databases' limits on bound parameters. */
    private static final int RENEW_BATCH = 500;

    private final JdbcJobStoreConfig config;
    private final Dialect dialect;
    private final HikariDataSource pool;
    private final Jdbi jdbi;
    private final String host;
    private final int attempts;
    private final ScheduledExecutorService pruner;
    private final AtomicBoolean closed = new AtomicBoolean();

    private JdbcJobStore(JdbcJobStoreConfig config, Dialect dialect, HikariDataSource pool) {
        this.config = config;
        this.dialect = dialect;
        this.pool = pool;
        this.host = config.host();
        this.jdbi = Jdbi.create(pool);
        // No templates: SQL text is never rewritten, so a '<' in a comparison stays a comparison.
        jdbi.setTemplateEngine(new NoTemplateEngine());
        // Every pooled connection may have been dropped by a server restart: one try per connection, and one more.
        this.attempts = dialect == Dialect.POSTGRESQL ? config.maxPoolSize() + 1 : 1;
        Migrations.migrate(jdbi, dialect, config.schema().orElse(null), config.location());
        if (config.retention().isPresent()) {
            this.pruner = Executors.newSingleThreadScheduledExecutor(DaemonThreads.named("volprov-jobs-prune"));
            long every = config.pruneInterval().toMillis();
            pruner.scheduleWithFixedDelay(this::pruneQuietly, every, every, TimeUnit.MILLISECONDS);
        } else {
            this.pruner = null;
        }
    }

    /**
     * Opens the store: connects, migrates the schema, and starts pruning when a retention is set.
     *
     * @throws ProvisioningException {@code BACKEND_FAILURE} when the database cannot be reached, its
     *     schema is newer than this library's, or the PostgreSQL driver is missing
     */
    public static JdbcJobStore open(JdbcJobStoreConfig config) {
        Objects.requireNonNull(config, "config");
        Dialect dialect = config.database() == JdbcJobStoreConfig.Database.SQLITE ? Dialect.SQLITE : Dialect.POSTGRESQL;
        HikariDataSource pool;
        try {
            pool = new HikariDataSource(hikari(config));
        } catch (RuntimeException e) {
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "cannot open the job store at "
                    + config.location() + ": " + rootMessage(e), e);
        }
        try {
            JdbcJobStore store = new JdbcJobStore(config, dialect, pool);
            LOG.debug("opened job store {}", config);
            return store;
        } catch (RuntimeException e) {
            pool.close();
            if (e instanceof ProvisioningException p) {
                throw p;
            }
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "cannot open the job store at "
                    + config.location() + ": " + rootMessage(e), e);
        }
    }

    private static HikariConfig hikari(JdbcJobStoreConfig config) {
        HikariConfig h = new HikariConfig();
        h.setPoolName("volprov-jobs");
        h.setMaximumPoolSize(config.maxPoolSize());
        h.setMinimumIdle(1);
        h.setConnectionTimeout(config.connectionTimeout().toMillis());
        h.setValidationTimeout(Math.max(250, config.connectionTimeout().toMillis() / 2));
        h.setInitializationFailTimeout(config.connectionTimeout().toMillis());
        if (config.database() == JdbcJobStoreConfig.Database.SQLITE) {
            Path file = config.sqliteFile().orElseThrow();
            try {
                Files.createDirectories(file.getParent());
            } catch (IOException e) {
                throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "cannot create the directory of the "
                        + "job store " + file + ": " + e.getMessage(), e);
            }
            SQLiteConfig sc = new SQLiteConfig();
            sc.setJournalMode(SQLiteConfig.JournalMode.WAL);
            // FULL: a committed state survives a power cut, as the terminal state of a job must.
            sc.setSynchronous(SQLiteConfig.SynchronousMode.FULL);
            sc.setBusyTimeout((int) config.busyTimeout().toMillis());
            // Transactions take the write lock at BEGIN: two writers wait in turn instead of deadlocking.
            sc.setTransactionMode(SQLiteConfig.TransactionMode.IMMEDIATE);
            SQLiteDataSource ds = new SQLiteDataSource(sc);
            ds.setUrl(config.jdbcUrl());
            h.setDataSource(ds);
        } else {
            try {
                Class.forName("org.postgresql.Driver");
            } catch (ClassNotFoundException e) {
                throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "the PostgreSQL job store needs the "
                        + "org.postgresql:postgresql driver on the class path", e);
            }
            h.setJdbcUrl(config.jdbcUrl());
            config.username().ifPresent(h::setUsername);
            config.password().ifPresent(h::setPassword);
            config.schema().ifPresent(h::setSchema);
            // Finds connections a restarted server dropped while they sat idle.
            h.setKeepaliveTime(Duration.ofSeconds(30).toMillis());
            h.addDataSourceProperty("ApplicationName", "volprov");
            h.addDataSourceProperty("tcpKeepAlive", "true");
            h.addDataSourceProperty("connectTimeout", Long.toString(Math.max(1, config.connectionTimeout().toSeconds())));
            // A server that stops answering (a partition) must not hold a job's thread for ever.
            h.addDataSourceProperty("socketTimeout", "60");
        }
        return h;
    }

    public JdbcJobStoreConfig config() {
        return config;
    }

    /** The schema version of the database, {@link #LATEST_SCHEMA_VERSION} once opened. */
    public int schemaVersion() {
        return call("reading the schema version", (h, attempt) -> Migrations.current(h));
    }

    /** The schema version this library creates and understands. */
    public static final int LATEST_SCHEMA_VERSION = Migrations.LATEST;

    @Override
    public String host() {
        return host;
    }

    @Override
    public void insert(Job job, String engine, Duration lease) {
        Objects.requireNonNull(job, "job");
        requireEngine(engine);
        requireLease(lease);
        add(job, host, false, engine, lease);
    }

    @Override
    public void enqueue(Job job, String target) {
        Objects.requireNonNull(job, "job");
        requireHost(target);
        if (job.state() != JobState.PENDING) {
            throw ProvisioningException.invalid("job", "only a PENDING job can be queued, not " + job.state());
        }
        add(job, target, true, null, null);
    }

    /** Records a job of {@code owner}, held by {@code holder} for {@code lease} (both null: nobody holds it). */
    private void add(Job job, String owner, boolean queued, String holder, Duration lease) {
        String sql = "INSERT INTO volprov_jobs (id, request, volume_name, correlation_id, state, stage, bytes_done,"
                + " bytes_total, error_code, error_message, cache_hit, image_digest, volume_path, created_volume,"
                + " attempts, owner_host, queued, holder_engine, lease_expires_at, created_at, started_at, updated_at,"
                + " finished_at)"
                + " VALUES (:id, " + dialect.json(":request") + ", :volume_name, :correlation_id, :state, :stage,"
                + " :bytes_done, :bytes_total, :error_code, :error_message, :cache_hit, :image_digest, :volume_path,"
                + " :created_volume, :attempts, :owner_host, :queued, :holder, :until, :created_at, :started_at,"
                + " :updated_at, :finished_at) ON CONFLICT (id) DO NOTHING";
        String request = JobJson.writeRequest(job.request());
        call("recording job " + job.id(), (h, attempt) -> {
            Instant until = lease == null ? null : config.clock().instant().plus(lease);
            int rows = bindJob(h.createUpdate(sql), job)
                    .bind("request", request)
                    // A prefetch has no volume; the column is NOT NULL since version 1, and no volume is called ''.
                    .bind("volume_name", Objects.requireNonNullElse(job.request().volumeName(), ""))
                    .bind("correlation_id", job.request().correlationId())
                    .bind("owner_host", owner)
                    .bind("queued", queued)
                    .bind("holder", holder)
                    .bind("until", dialect.time(until))
                    .bind("created_at", dialect.time(job.createdAt()))
                    .execute();
            // On a retry the first try may have committed before its connection broke.
            if (rows == 0 && !(attempt > 1 && find(h, job.id()).filter(job::equals).isPresent())) {
                throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "job " + job.id() + " exists already");
            }
            return null;
        });
    }

    private <S extends SqlStatement<S>> S bindJob(S st, Job job) {
        Progress p = job.progress();
        return st.bind("id", job.id())
                .bind("state", job.state().name())
                .bind("stage", p.stage().name())
                .bind("bytes_done", p.bytesDone())
                .bind("bytes_total", p.bytesTotal())
                .bind("error_code", job.errorCode() == null ? null : job.errorCode().name())
                .bind("error_message", job.errorMessage())
                .bind("cache_hit", job.cacheHit())
                .bind("image_digest", job.imageDigest())
                .bind("volume_path", job.volumePath())
                .bind("created_volume", job.createdVolume())
                .bind("attempts", job.attempts())
                .bind("started_at", dialect.time(job.startedAt()))
                .bind("updated_at", dialect.time(job.updatedAt()))
                .bind("finished_at", dialect.time(job.finishedAt()));
    }

    @Override
    public boolean update(Job job, String engine) {
        Objects.requireNonNull(job, "job");
        requireEngine(engine);
        // One statement checks the holder and writes: no other writer can come between the two. The
        // request and creation time never change; the lease ends with the job.
        String sql = "UPDATE volprov_jobs SET state = :state, stage = :stage, bytes_done = :bytes_done,"
                + " bytes_total = :bytes_total, error_code = :error_code, error_message = :error_message,"
                + " cache_hit = :cache_hit, image_digest = :image_digest, volume_path = :volume_path,"
                + " created_volume = :created_volume, attempts = :attempts, started_at = :started_at,"
                + " updated_at = :updated_at, finished_at = :finished_at,"
                + " lease_expires_at = CASE WHEN :terminal THEN NULL ELSE lease_expires_at END"
                + " WHERE id = :id AND holder_engine = :engine AND state IN " + ACTIVE;
        // A refused write: the same end written already (a retry) counts as written, nothing else does.
        String same = "SELECT COUNT(*) FROM volprov_jobs WHERE id = :id AND holder_engine = :engine"
                + " AND state = :state AND finished_at = :finished_at";
        return call("recording job " + job.id(), (h, attempt) -> {
            int rows = bindJob(h.createUpdate(sql), job)
                    .bind("terminal", job.state().terminal())
                    .bind("engine", engine)
                    .execute();
            if (rows == 1) {
                return true;
            }
            if (find(h, job.id()).isEmpty()) {
                throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "job " + job.id() + " does not exist");
            }
            return job.state().terminal() && h.createQuery(same).bind("id", job.id()).bind("engine", engine)
                    .bind("state", job.state().name()).bind("finished_at", dialect.time(job.finishedAt()))
                    .mapTo(Integer.class).one() == 1;
        });
    }

    @Override
    public Optional<Job> find(String id) {
        Objects.requireNonNull(id, "id");
        return call("reading job " + id, (h, attempt) -> find(h, id));
    }

    private Optional<Job> find(Handle h, String id) {
        return h.createQuery("SELECT * FROM volprov_jobs WHERE id = :id").bind("id", id).map(this::job).findOne();
    }

    @Override
    public List<Job> list(JobFilter filter) {
        Objects.requireNonNull(filter, "filter");
        StringBuilder sql = new StringBuilder("SELECT * FROM volprov_jobs WHERE 1 = 1");
        List<String> states = filter.states().stream().map(Enum::name).sorted().toList();
        if (!states.isEmpty()) {
            sql.append(" AND state IN (");
            for (int i = 0; i < states.size(); i++) {
                sql.append(i == 0 ? "" : ", ").append(":s").append(i);
            }
            sql.append(')');
        }
        filter.volumeName().ifPresent(v -> sql.append(" AND volume_name = :volume"));
        filter.correlationId().ifPresent(c -> sql.append(" AND correlation_id = :correlation"));
        sql.append(" ORDER BY created_at DESC, id DESC LIMIT :limit");
        return call("listing jobs", (h, attempt) -> {
            var q = h.createQuery(sql.toString()).bind("limit", filter.limit());
            for (int i = 0; i < states.size(); i++) {
                q.bind("s" + i, states.get(i));
            }
            filter.volumeName().ifPresent(v -> q.bind("volume", v));
            filter.correlationId().ifPresent(c -> q.bind("correlation", c));
            return q.map(this::job).list();
        });
    }

    @Override
    public Set<String> renew(Collection<String> jobIds, String engine, Duration lease) {
        Objects.requireNonNull(jobIds, "jobIds");
        requireEngine(engine);
        requireLease(lease);
        List<String> ids = List.copyOf(jobIds);
        Set<String> held = new HashSet<>();
        for (int from = 0; from < ids.size(); from += RENEW_BATCH) {
            List<String> batch = ids.subList(from, Math.min(ids.size(), from + RENEW_BATCH));
            StringBuilder sql = new StringBuilder("UPDATE volprov_jobs SET lease_expires_at = :until"
                    + " WHERE holder_engine = :engine AND state IN " + ACTIVE + " AND id IN (");
            for (int i = 0; i < batch.size(); i++) {
                sql.append(i == 0 ? "" : ", ").append(":i").append(i);
            }
            sql.append(") RETURNING id");
            held.addAll(call("renewing the leases of engine " + engine, (h, attempt) -> {
                var q = h.createQuery(sql.toString())
                        .bind("until", dialect.time(config.clock().instant().plus(lease)))
                        .bind("engine", engine);
                for (int i = 0; i < batch.size(); i++) {
                    q.bind("i" + i, batch.get(i));
                }
                return q.mapTo(String.class).list();
            }));
        }
        return held;
    }

    @Override
    public List<Job> abandoned(int max) {
        if (max < 1) {
            throw ProvisioningException.invalid("max", "must be at least 1");
        }
        // Queued jobs that never started are claimed, not recovered.
        return call("reading abandoned jobs", (h, attempt) -> h.createQuery("SELECT * FROM volprov_jobs"
                        + " WHERE owner_host = :me AND state IN " + ACTIVE + " AND (queued = :false OR state = 'RUNNING')"
                        + " AND " + LEASE_RAN_OUT + " ORDER BY created_at, id LIMIT :max")
                .bind("me", host).bind("false", false).bind("now", dialect.time(config.clock().instant()))
                .bind("max", max).map(this::job).list());
    }

    @Override
    public Optional<Job> takeOver(String jobId, String engine, Duration lease) {
        Objects.requireNonNull(jobId, "jobId");
        requireEngine(engine);
        requireLease(lease);
        String sql = "UPDATE volprov_jobs SET holder_engine = :engine, lease_expires_at = :until"
                + " WHERE id = :id AND owner_host = :me AND state IN " + ACTIVE + " AND " + LEASE_RAN_OUT
                + " RETURNING *";
        return call("taking over job " + jobId, (h, attempt) -> {
            Instant now = config.clock().instant();
            return h.createQuery(sql)
                    .bind("engine", engine).bind("until", dialect.time(now.plus(lease)))
                    .bind("id", jobId).bind("me", host).bind("now", dialect.time(now))
                    .map(this::job).findOne();
        });
    }

    @Override
    public Optional<Job> claim(String target, String engine, Duration lease) {
        requireHost(target);
        requireEngine(engine);
        requireLease(lease);
        // The inner SELECT locks the oldest free row and skips rows other claimers have locked; the
        // UPDATE takes the lease in the same statement. SQLite serializes writers, so it needs no lock.
        String sql = "UPDATE volprov_jobs SET holder_engine = :engine, lease_expires_at = :until WHERE id = ("
                + "SELECT id FROM volprov_jobs WHERE owner_host = :host AND state = 'PENDING'"
                + " AND queued = :true AND " + LEASE_RAN_OUT
                + " ORDER BY created_at, id LIMIT 1" + dialect.skipLocked() + ") RETURNING *";
        return call("claiming a job for " + target, (h, attempt) -> {
            Instant now = config.clock().instant();
            return h.createQuery(sql)
                    .bind("engine", engine)
                    .bind("until", dialect.time(now.plus(lease)))
                    .bind("now", dialect.time(now))
                    .bind("host", target)
                    .bind("true", true)
                    .map(this::job).findOne();
        });
    }

    @Override
    public void release(String jobId, String engine) {
        Objects.requireNonNull(jobId, "jobId");
        requireEngine(engine);
        call("releasing job " + jobId, (h, attempt) -> h.createUpdate("UPDATE volprov_jobs"
                        + " SET holder_engine = NULL, lease_expires_at = NULL WHERE id = :id AND holder_engine = :engine"
                        + " AND queued = :true AND state = 'PENDING'")
                .bind("id", jobId).bind("engine", engine).bind("true", true)
                .execute());
    }

    /**
     * Deletes the jobs that finished more than the configured retention ago, in batches of
     * {@link JdbcJobStoreConfig#pruneBatchSize()}, each its own short transaction. Returns how many
     * were deleted; 0 when no retention is configured.
     */
    public int prune() {
        return config.retention().map(this::prune).orElse(0);
    }

    /** Deletes, in batches, the jobs that finished more than {@code maxAge} ago; returns how many. */
    public int prune(Duration maxAge) {
        if (maxAge == null || maxAge.isNegative()) {
            throw ProvisioningException.invalid("maxAge", "must not be negative");
        }
        Instant cutoff = config.clock().instant().minus(maxAge);
        String sql = "DELETE FROM volprov_jobs WHERE id IN (SELECT id FROM volprov_jobs"
                + " WHERE finished_at IS NOT NULL AND finished_at < :cutoff AND state IN " + TERMINAL
                + " ORDER BY finished_at LIMIT :batch)";
        int total = 0;
        for (int batch = 0; batch < MAX_PRUNE_BATCHES; batch++) {
            int n = call("pruning finished jobs", (h, attempt) -> h.createUpdate(sql)
                    .bind("cutoff", dialect.time(cutoff)).bind("batch", config.pruneBatchSize()).execute());
            total += n;
            if (n < config.pruneBatchSize()) {
                break;
            }
        }
        if (total > 0) {
            LOG.debug("job store at {}: pruned {} jobs finished before {}", config.location(), total, cutoff);
        }
        return total;
    }

    private void pruneQuietly() {
        try {
            prune();
        } catch (RuntimeException e) {
            LOG.warn("job store at {}: pruning failed, trying again in {}: {}", config.location(),
                    config.pruneInterval(), e.getMessage());
        }
    }

    /** Stops pruning and closes the pool; idempotent. */
    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) {
            return;
        }
        if (pruner != null) {
            pruner.shutdownNow();
        }
        pool.close();
    }

    @Override
    public String toString() {
        return "JdbcJobStore[" + config + "]";
    }

    /** For tests in this package: statements the API does not offer (a newer schema, say). */
    Jdbi jdbi() {
        return jdbi;
    }

    // ---- plumbing ----

    @FunctionalInterface
    private interface Operation<T> {
        T run(Handle h, int attempt) throws SQLException;
    }

    private <T> T call(String what, Operation<T> op) {
        if (closed.get()) {
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "the job store at " + config.location()
                    + " is closed");
        }
        for (int attempt = 1; ; attempt++) {
            int n = attempt;
            try {
                return jdbi.withHandle(h -> op.run(h, n));
            } catch (ProvisioningException e) {
                throw e;
            } catch (RuntimeException | SQLException e) {
                if (attempt < attempts && Dialect.connectionLost(e) && !closed.get()) {
                    LOG.debug("job store at {}: {} broke on a lost connection; trying another", config.location(),
                            what, e);
                    continue;
                }
                throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "job store at " + config.location() + ": "
                        + what + " failed: " + rootMessage(e), e);
            }
        }
    }

    private Job job(ResultSet rs, StatementContext ctx) throws SQLException {
        String errorCode = rs.getString("error_code");
        return new Job(
                rs.getString("id"),
                JobJson.readRequest(rs.getString("request")),
                JobState.valueOf(rs.getString("state")),
                new Progress(Stage.parse(rs.getString("stage")), rs.getLong("bytes_done"), rs.getLong("bytes_total")),
                errorCode == null ? null : ErrorCode.valueOf(errorCode),
                rs.getString("error_message"),
                rs.getBoolean("cache_hit"),
                rs.getString("image_digest"),
                rs.getString("volume_path"),
                rs.getBoolean("created_volume"),
                rs.getInt("attempts"),
                dialect.time(rs, "created_at"),
                dialect.time(rs, "started_at"),
                dialect.time(rs, "updated_at"),
                dialect.time(rs, "finished_at"));
    }

    private static void requireHost(String host) {
        ConfigChecks.nonBlank("host", host);
    }

    private static void requireEngine(String engine) {
        ConfigChecks.nonBlank("engine", engine);
    }

    private static void requireLease(Duration lease) {
        ConfigChecks.positiveMillis("lease", lease);
    }

    static String rootMessage(Throwable e) {
        Throwable last = e;
        for (int i = 0; i < 10 && last.getCause() != null; i++) {
            last = last.getCause();
        }
        return last.getMessage() == null ? last.getClass().getSimpleName() : last.getMessage();
    }
}
