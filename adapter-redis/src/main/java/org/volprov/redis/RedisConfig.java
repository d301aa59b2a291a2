package org.volprov.redis;

import java.net.InetAddress;
import java.net.URI;
import java.net.URLDecoder;
import java.net.UnknownHostException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Objects;
import java.util.regex.Pattern;
import org.volprov.ProvisioningException;
import org.volprov.support.ConfigChecks;

/**
 * Where Redis is and how the adapter uses it. Immutable; every option is checked when set (and
 * their combination by {@link Builder#build()}); a bad one is refused with a
 * {@link ProvisioningException} {@code INVALID_REQUEST} whose message names it. {@link #toString()} never prints
 * the password.
 *
 * <pre>{@code
 * RedisConfig config = RedisConfig.builder()
 *         .uri("redis://redis.internal:6379/0")
 *         .password(System.getenv("REDIS_PASSWORD"))
 *         .keyPrefix("volprov")
 *         .hostId("hv-017")
 *         .build();
 * }</pre>
 */
public final class RedisConfig {
    private static final Pattern NAME = Pattern.compile("[A-Za-z0-9._:-]{1,100}");

    private final String host;
    private final int port;
    private final int database;
    private final boolean tls;
    private final String user;
    private final String password;
    private final String keyPrefix;
    private final String hostId;
    private final Duration leaseTime;
    private final Duration renewInterval;
    private final Duration probeInterval;
    private final Duration connectTimeout;
    private final Duration socketTimeout;
    private final int maxConnections;

    private RedisConfig(Builder b) {
        this.host = b.host;
        this.port = b.port;
        this.database = b.database;
        this.tls = b.tls;
        this.user = b.user;
        this.password = b.password;
        this.keyPrefix = b.keyPrefix;
        this.hostId = b.hostId != null ? b.hostId : localHostName();
        this.leaseTime = b.leaseTime;
        this.renewInterval = b.renewInterval != null ? b.renewInterval : b.leaseTime.dividedBy(3);
        this.probeInterval = b.probeInterval;
        this.connectTimeout = b.connectTimeout;
        this.socketTimeout = b.socketTimeout;
        this.maxConnections = b.maxConnections;
    }

    public static Builder builder() {
        return new Builder();
    }

    public String host() {
        return host;
    }

    public int port() {
        return port;
    }

    public int database() {
        return database;
    }

    public boolean tls() {
        return tls;
    }

    /** The ACL user, or null for the default user. */
    public String user() {
        return user;
    }

    /** The password, or null; never printed. */
    String password() {
        return password;
    }

    /** Every key this adapter writes starts with this and a colon. */
    public String keyPrefix() {
        return keyPrefix;
    }

    /** Names this host's cache in Redis: processes on one host sharing one cache directory use the same one. */
    public String hostId() {
        return hostId;
    }

    /** How long a lock or a lease outlives a process that stopped renewing it. */
    public Duration leaseTime() {
        return leaseTime;
    }

    /** How often held locks and leases are renewed (and the host's heartbeat written). */
    public Duration renewInterval() {
        return renewInterval;
    }

    /** How often an unreachable Redis is tried again. */
    public Duration probeInterval() {
        return probeInterval;
    }

    public Duration connectTimeout() {
        return connectTimeout;
    }

    public Duration socketTimeout() {
        return socketTimeout;
    }

    public int maxConnections() {
        return maxConnections;
    }

    /** {@code redis[s]://host:port/db}, without credentials. */
    public String endpoint() {
        return (tls ? "rediss://" : "redis://") + host + ":" + port + "/" + database;
    }

    @Override
    public String toString() {
        return "RedisConfig[" + endpoint() + (user != null ? ", user=" + user : "")
                + (password != null ? ", password=****" : "") + ", keyPrefix=" + keyPrefix + ", hostId=" + hostId
                + ", leaseTime=" + leaseTime + ", renewInterval=" + renewInterval + ", probeInterval=" + probeInterval
                + ", connectTimeout=" + connectTimeout + ", socketTimeout=" + socketTimeout
                + ", maxConnections=" + maxConnections + "]";
    }

    private static String localHostName() {
        try {
            String name = InetAddress.getLocalHost().getHostName();
            return NAME.matcher(name).matches() ? name : "localhost";
        } catch (UnknownHostException e) {
            return "localhost";
        }
    }

    /** Builds a {@link RedisConfig}; every option has a default but the host id should be set. */
    public static final class Builder {
        private String host = "127.0.0.1";
        private int port = 6379;
        private int database;
        private boolean tls;
        private String user;
        private String password;
        private String keyPrefix = "volprov";
        private String hostId;
        private Duration leaseTime = Duration.ofSeconds(30);
        private Duration renewInterval;
        private Duration probeInterval = Duration.ofSeconds(5);
        private Duration connectTimeout = Duration.ofSeconds(2);
        private Duration socketTimeout = Duration.ofSeconds(2);
        private int maxConnections = 16;

        private Builder() {
        }

        /**
         * {@code redis://[[user]:password@]host[:port][/database]}, or {@code rediss://} for TLS.
         * Credentials in the URI are taken as if set with {@link #user} and {@link #password}.
         */
        public Builder uri(String uri) {
            Objects.requireNonNull(uri, "uri");
            URI u;
            try {
                u = URI.create(uri);
            } catch (IllegalArgumentException e) {
                // The message of URI.create may echo the password: say only what is wrong.
                throw ProvisioningException.invalid("uri", "is not a valid URI");
            }
            String scheme = u.getScheme();
            if (!"redis".equals(scheme) && !"rediss".equals(scheme)) {
                throw ProvisioningException.invalid("uri", "must start with redis:// or rediss://");
            }
            if (u.getHost() == null || u.getHost().isEmpty()) {
                throw ProvisioningException.invalid("uri", "has no host");
            }
            this.tls = "rediss".equals(scheme);
            this.host = u.getHost();
            port(u.getPort() == -1 ? 6379 : u.getPort());
            String path = u.getPath();
            if (path != null && path.length() > 1) {
                try {
                    database(Integer.parseInt(path.substring(1)));
                } catch (NumberFormatException e) {
                    throw ProvisioningException.invalid("uri", "the database must be a number, was " + path.substring(1));
                }
            }
            String info = u.getRawUserInfo();
            if (info != null) {
                int colon = info.indexOf(':');
                String u0 = colon < 0 ? "" : decode(info.substring(0, colon));
                String p0 = decode(colon < 0 ? info : info.substring(colon + 1));
                this.user = u0.isEmpty() ? null : u0;
                this.password = p0.isEmpty() ? null : p0;
            }
            return this;
        }

        private static String decode(String s) {
            return URLDecoder.decode(s, StandardCharsets.UTF_8);
        }

        /** The server's host name or address; default 127.0.0.1. */
        public Builder host(String host) {
            Objects.requireNonNull(host, "host");
            if (host.isBlank()) {
                throw ProvisioningException.invalid("host", "must not be blank");
            }
            this.host = host;
            return this;
        }

        /** Default 6379. */
        public Builder port(int port) {
            if (port < 1 || port > 65535) {
                throw ProvisioningException.invalid("port", "must be between 1 and 65535, was " + port);
            }
            this.port = port;
            return this;
        }

        /** The logical database; default 0. */
        public Builder database(int database) {
            if (database < 0) {
                throw ProvisioningException.invalid("database", "must not be negative, was " + database);
            }
            this.database = database;
            return this;
        }

        /** Connect with TLS (the JVM's trust store); default off. */
        public Builder tls(boolean tls) {
            this.tls = tls;
            return this;
        }

        /** The ACL user; default none (the default user). */
        public Builder user(String user) {
            this.user = user == null || user.isEmpty() ? null : user;
            return this;
        }

        /** The password; default none. Never printed. */
        public Builder password(String password) {
            this.password = password == null || password.isEmpty() ? null : password;
            return this;
        }

        /**
         * Starts every key; default {@code volprov}. Letters, digits and {@code . _ : -}, at most
         * 100. Give each deployment (and each test) its own.
         */
        public Builder keyPrefix(String keyPrefix) {
            this.keyPrefix = checkName("keyPrefix", keyPrefix);
            return this;
        }

        /**
         * This host's name in Redis; default the local host name. Letters, digits and
         * {@code . _ : -}, at most 100. Every process on a host that shares a cache directory uses
         * the same id; each host of a fleet its own.
         */
        public Builder hostId(String hostId) {
            this.hostId = checkName("hostId", hostId);
            return this;
        }

        /** How long a lock or lease outlives a process that stopped renewing it; at least 200 ms; default 30 s. */
        public Builder leaseTime(Duration leaseTime) {
            Objects.requireNonNull(leaseTime, "leaseTime");
            if (leaseTime.toMillis() < 200) {
                throw ProvisioningException.invalid("leaseTime", "must be at least 200 ms, was " + leaseTime);
            }
            this.leaseTime = leaseTime;
            return this;
        }

        /** How often locks and leases are renewed; positive and at most half of {@code leaseTime}; default a third of it. */
        public Builder renewInterval(Duration renewInterval) {
            this.renewInterval = positive("renewInterval", renewInterval);
            return this;
        }

        /** How often an unreachable Redis is tried again; positive; default 5 s. */
        public Builder probeInterval(Duration probeInterval) {
            this.probeInterval = positive("probeInterval", probeInterval);
            return this;
        }

        /** Default 2 s: a Redis that does not answer sends the adapter to local-only mode this fast. */
        public Builder connectTimeout(Duration connectTimeout) {
            this.connectTimeout = positive("connectTimeout", connectTimeout);
            return this;
        }

        /** Default 2 s. */
        public Builder socketTimeout(Duration socketTimeout) {
            this.socketTimeout = positive("socketTimeout", socketTimeout);
            return this;
        }

        /** Pooled connections; 1 to 1024; default 16. */
        public Builder maxConnections(int maxConnections) {
            if (maxConnections < 1 || maxConnections > 1024) {
                throw ProvisioningException.invalid("maxConnections", "must be between 1 and 1024, was " + maxConnections);
            }
            this.maxConnections = maxConnections;
            return this;
        }

        /**
         * @throws ProvisioningException {@code INVALID_REQUEST} when {@code renewInterval} is more than
         *     half of {@code leaseTime}
         */
        public RedisConfig build() {
            // A volume lock is trusted for most of a lease after its last renewal: at most half a
            // lease between renewals leaves room for one renewal to be late.
            if (renewInterval != null && renewInterval.compareTo(leaseTime.dividedBy(2)) > 0) {
                throw ProvisioningException.invalid("renewInterval", "must be at most half of leaseTime (" + leaseTime
                        + "), was " + renewInterval);
            }
            return new RedisConfig(this);
        }

        private static String checkName(String field, String value) {
            Objects.requireNonNull(value, field);
            if (!NAME.matcher(value).matches()) {
                throw ProvisioningException.invalid(field, "must be 1 to 100 letters, digits or . _ : -, was \""
                        + value + "\"");
            }
            return value;
        }

        private static Duration positive(String field, Duration d) {
            return ConfigChecks.positiveMillis(field, d);
        }
    }
}
