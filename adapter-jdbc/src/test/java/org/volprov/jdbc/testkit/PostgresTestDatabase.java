package org.volprov.jdbc.testkit;

import java.net.URI;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ThreadLocalRandom;
import org.junit.jupiter.api.Assumptions;
import org.testcontainers.DockerClientFactory;
import org.testcontainers.postgresql.PostgreSQLContainer;
import org.testcontainers.utility.DockerImageName;
import org.volprov.jdbc.JdbcJobStoreConfig;
import org.volprov.testing.DockerEngine;

/**
 * A real PostgreSQL server for tests, resolved once per JVM in this order and announced on stdout:
 * <ol>
 *   <li>{@code TEST_POSTGRES_DSN}: a {@code jdbc:postgresql://} URL, or a libpq URI
 *       {@code postgresql://user:password@host:port/database};</li>
 *   <li>PostgreSQL in a container ({@value #POSTGRES_IMAGE}) when a Docker engine answers;</li>
 *   <li>the local server: {@value #LOCAL_URL}, user {@code postgres}, trust authentication.</li>
 * </ol>
 * When none answers, the calling test is skipped with the reason. Each test takes its own schema
 * from {@link #newSchemaName()} and drops it with {@link #dropSchema}. Thread-safe.
 */
public final class PostgresTestDatabase {
    public static final String POSTGRES_IMAGE = "postgres:15.8-alpine";
    public static final String LOCAL_URL = "jdbc:postgresql://127.0.0.1:5432/test";

    private static PostgresTestDatabase shared;
    private static String unavailable;

    private final String kind;
    private final String jdbcUrl;
    private final String username;
    private final String password;

    private PostgresTestDatabase(String kind, String jdbcUrl, String username, String password) {
        this.kind = kind;
        this.jdbcUrl = jdbcUrl;
        this.username = username;
        this.password = password;
    }

    /** The server for this JVM; skips the calling test when none can be reached. */
    public static synchronized PostgresTestDatabase shared() {
        if (shared == null && unavailable == null) {
            try {
                shared = resolve();
                shared.check();
                System.out.println("[volprov tests] PostgreSQL: " + shared.kind + " at "
                        + JdbcJobStoreConfig.postgres(shared.jdbcUrl).host("-").build().location()
                        + " as " + shared.username);
            } catch (RuntimeException | SQLException e) {
                unavailable = "no PostgreSQL for the tests (" + (shared == null ? "none resolved" : shared.kind)
                        + "): " + e.getMessage();
                shared = null;
                System.out.println("[volprov tests] " + unavailable);
            }
        }
        Assumptions.assumeTrue(shared != null, () -> unavailable);
        return shared;
    }

    private static PostgresTestDatabase resolve() {
        String dsn = System.getenv("TEST_POSTGRES_DSN");
        if (dsn != null && !dsn.isBlank()) {
            return fromDsn(dsn.strip());
        }
        if (dockerAvailable()) {
            PostgreSQLContainer pg = new PostgreSQLContainer(DockerImageName.parse(POSTGRES_IMAGE));
            pg.start();
            Runtime.getRuntime().addShutdownHook(new Thread(pg::stop, "postgres-test-container-stop"));
            return new PostgresTestDatabase("testcontainers " + POSTGRES_IMAGE, pg.getJdbcUrl(), pg.getUsername(),
                    pg.getPassword());
        }
        return new PostgresTestDatabase("the local server", LOCAL_URL, "postgres", null);
    }

    static PostgresTestDatabase fromDsn(String dsn) {
        if (dsn.startsWith("jdbc:postgresql:")) {
            return new PostgresTestDatabase("TEST_POSTGRES_DSN", dsn, System.getenv().getOrDefault("TEST_POSTGRES_USER",
                    "postgres"), System.getenv("TEST_POSTGRES_PASSWORD"));
        }
        URI u = URI.create(dsn);
        if (!"postgres".equals(u.getScheme()) && !"postgresql".equals(u.getScheme())) {
            throw new IllegalArgumentException("TEST_POSTGRES_DSN must be a jdbc:postgresql: URL or a postgresql:// URI");
        }
        String user = "postgres";
        String password = null;
        if (u.getUserInfo() != null) {
            String[] parts = u.getUserInfo().split(":", 2);
            user = parts[0];
            password = parts.length > 1 ? parts[1] : null;
        }
        String url = "jdbc:postgresql://" + u.getHost() + (u.getPort() > 0 ? ":" + u.getPort() : "")
                + (u.getRawPath() == null || u.getRawPath().isEmpty() ? "/postgres" : u.getRawPath())
                + (u.getRawQuery() == null ? "" : "?" + u.getRawQuery());
        return new PostgresTestDatabase("TEST_POSTGRES_DSN", url, user, password);
    }

    private static boolean dockerAvailable() {
        return DockerEngine.available(() -> DockerClientFactory.instance().isDockerAvailable());
    }

    private void check() throws SQLException {
        try (Connection c = connect()) {
            c.isValid(5);
        }
    }

    /** What was resolved, for messages. */
    public String kind() {
        return kind;
    }

    public String jdbcUrl() {
        return jdbcUrl;
    }

    /**
     * Environment variables that make {@link #shared()} in a child JVM resolve to this same server
     * (through {@code TEST_POSTGRES_DSN}), whatever this JVM resolved it from.
     */
    public Map<String, String> childEnvironment() {
        Map<String, String> env = new HashMap<>();
        env.put("TEST_POSTGRES_DSN", jdbcUrl);
        env.put("TEST_POSTGRES_USER", username);
        if (password != null) {
            env.put("TEST_POSTGRES_PASSWORD", password);
        }
        return env;
    }

    /** A new JDBC connection, for a test's own statements. */
    public Connection connect() throws SQLException {
        Properties p = new Properties();
        p.setProperty("user", username);
        if (password != null) {
            p.setProperty("password", password);
        }
        p.setProperty("connectTimeout", "5");
        return DriverManager.getConnection(jdbcUrl, p);
    }

    /** A schema name no other test run uses; the store creates the schema. */
    public static String newSchemaName() {
        byte[] b = new byte[6];
        ThreadLocalRandom.current().nextBytes(b);
        return "volprov_test_" + HexFormat.of().formatHex(b);
    }

    /** A store config on this server, in {@code schema}. */
    public JdbcJobStoreConfig.Builder config(String schema) {
        JdbcJobStoreConfig.Builder b = JdbcJobStoreConfig.postgres(jdbcUrl).schema(schema);
        if (password != null) {
            b.credentials(username, password);
        } else {
            b.credentials(username, "");
        }
        return b;
    }

    /** Runs one statement. */
    public void execute(String sql) {
        try (Connection c = connect(); Statement st = c.createStatement()) {
            st.execute(sql);
        } catch (SQLException e) {
            throw new IllegalStateException(sql + ": " + e.getMessage(), e);
        }
    }

    /** Drops {@code schema} and everything in it. */
    public void dropSchema(String schema) {
        execute("DROP SCHEMA IF EXISTS " + schema + " CASCADE");
    }
}
