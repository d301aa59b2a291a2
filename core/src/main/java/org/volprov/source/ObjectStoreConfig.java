package org.volprov.source;

import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.volprov.ProvisioningException;
import org.volprov.support.ConfigChecks;

/**
 * What every S3-compatible image source is configured with: the endpoint, the signing region,
 * static keys, TLS trust and the two timeouts. Each object-store adapter's config extends it with
 * what only that client has, and its builder extends {@link Builder}, so the options, their
 * defaults, their checks and their messages are written once for every adapter.
 *
 * <p>Immutable and thread-safe once built. Every setter checks its argument and {@code build()}
 * checks the combination, with a message that names the field. {@link #toString()} never prints
 * the secret key, and shows only the first four characters of the access key.
 */
public abstract class ObjectStoreConfig {

    /** How the server's TLS certificate is checked. */
    public enum TrustMode {
        /** The JVM's default trust store. */
        SYSTEM,
        /** Only the CA certificates in a PEM file. */
        CA_FILE,
        /** Any certificate and any host name: for throw-away test servers, never production. */
        TRUST_ALL
    }

    private final URI endpoint;
    private final String region;
    private final String accessKey;
    private final String secretKey;
    private final TrustMode trustMode;
    private final Path caFile;
    private final Duration connectTimeout;
    private final Duration readTimeout;

    protected ObjectStoreConfig(Builder<?, ?> b) {
        this.endpoint = b.endpoint;
        this.region = b.region;
        this.accessKey = b.accessKey;
        this.secretKey = b.secretKey;
        this.trustMode = b.trustMode;
        this.caFile = b.caFile;
        this.connectTimeout = b.connectTimeout;
        this.readTimeout = b.readTimeout;
    }

    /** The server, {@code http(s)://host[:port]}; empty only where an adapter has a default one. */
    public Optional<URI> endpoint() {
        return Optional.ofNullable(endpoint);
    }

    /** The signing region. */
    public String region() {
        return region;
    }

    /** Whether static keys are configured; otherwise the adapter finds keys as its config says. */
    public boolean hasStaticCredentials() {
        return accessKey != null;
    }

    /** The static access key, for the adapter that builds its client; never for display. */
    protected final Optional<String> staticAccessKey() {
        return Optional.ofNullable(accessKey);
    }

    /** The static secret key, for the adapter that builds its client; never for display. */
    protected final Optional<String> staticSecretKey() {
        return Optional.ofNullable(secretKey);
    }

    public TrustMode trustMode() {
        return trustMode;
    }

    /** The PEM file of trusted CA certificates when {@link #trustMode()} is {@code CA_FILE}. */
    public Optional<Path> caFile() {
        return Optional.ofNullable(caFile);
    }

    /** The time allowed to open a connection. */
    public Duration connectTimeout() {
        return connectTimeout;
    }

    /** The longest wait for the next bytes of a response (socket read timeout). */
    public Duration readTimeout() {
        return readTimeout;
    }

    /** How an empty {@link #endpoint()} is shown: the server an adapter talks to without one. */
    protected String defaultEndpointName() {
        return "none";
    }

    /** How the credentials are described when no static keys are set. */
    protected abstract String credentialsWithoutKeys();

    /** The options only this adapter has, as {@code name=value} pieces for {@link #toString()}. */
    protected List<String> ownOptions() {
        return List.of();
    }

    @Override
    public final String toString() {
        List<String> parts = new ArrayList<>();
        parts.add("endpoint=" + (endpoint == null ? defaultEndpointName() : endpoint));
        parts.add("region=" + region);
        parts.addAll(ownOptions());
        parts.add("credentials=" + (accessKey == null ? credentialsWithoutKeys()
                : "static(accessKey=" + ConfigChecks.maskKey(accessKey) + ")"));
        parts.add("trust=" + trustMode + (caFile == null ? "" : "(" + caFile + ")"));
        parts.add("connectTimeout=" + connectTimeout);
        parts.add("readTimeout=" + readTimeout);
        return getClass().getSimpleName() + "[" + String.join(", ", parts) + "]";
    }

    /**
     * The setters every object-store config has. Not thread-safe.
     *
     * @param <B> the adapter's builder, returned by every setter
     * @param <C> the config it builds
     */
    public abstract static class Builder<B extends Builder<B, C>, C extends ObjectStoreConfig> {
        private URI endpoint;
        private String region = "us-east-1";
        private String accessKey;
        private String secretKey;
        private TrustMode trustMode = TrustMode.SYSTEM;
        private Path caFile;
        private Duration connectTimeout = Duration.ofSeconds(10);
        private Duration readTimeout = Duration.ofSeconds(60);

        protected Builder() {
        }

        /** This builder, as its own type. */
        protected abstract B self();

        /** Builds the config, after {@link #checkCommon()}. */
        public abstract C build();

        /** The S3-compatible server, {@code http(s)://host[:port]} with no path, query or user info. */
        public B endpoint(URI endpoint) {
            this.endpoint = ConfigChecks.httpEndpoint("endpoint", endpoint);
            return self();
        }

        /** Shorthand for {@link #endpoint(URI)}. */
        public B endpoint(String endpoint) {
            this.endpoint = ConfigChecks.httpEndpoint("endpoint", endpoint);
            return self();
        }

        /** The signing region; default {@code us-east-1}, which S3-compatible servers accept. */
        public B region(String region) {
            this.region = ConfigChecks.nonBlank("region", region);
            return self();
        }

        /** Static keys. */
        public B credentials(String accessKey, String secretKey) {
            if (accessKey == null || accessKey.isBlank()) {
                throw ProvisioningException.invalid("accessKey", "must not be blank");
            }
            if (secretKey == null || secretKey.isEmpty()) {
                throw ProvisioningException.invalid("secretKey", "must not be empty");
            }
            this.accessKey = accessKey;
            this.secretKey = secretKey;
            return self();
        }

        /** Forgets the static keys, for an adapter's way of finding keys elsewhere. */
        protected final void clearCredentials() {
            this.accessKey = null;
            this.secretKey = null;
        }

        /** Trusts the JVM's default trust store (the default). */
        public B trustSystemCertificates() {
            this.trustMode = TrustMode.SYSTEM;
            this.caFile = null;
            return self();
        }

        /** Trusts only the CA certificates in {@code pemFile} (one or more PEM blocks). */
        public B trustCaFile(Path pemFile) {
            this.caFile = ConfigChecks.caFile("caFile", pemFile);
            this.trustMode = TrustMode.CA_FILE;
            return self();
        }

        /** Accepts any certificate and host name. Only for test servers with throw-away certificates. */
        public B trustAllCertificates() {
            this.trustMode = TrustMode.TRUST_ALL;
            this.caFile = null;
            return self();
        }

        /** Time allowed to open a connection; default 10 s. */
        public B connectTimeout(Duration timeout) {
            this.connectTimeout = ConfigChecks.positiveMillis("connectTimeout", timeout);
            return self();
        }

        /** Longest silence while waiting for response bytes; default 60 s. */
        public B readTimeout(Duration timeout) {
            this.readTimeout = ConfigChecks.positiveMillis("readTimeout", timeout);
            return self();
        }

        /** Whether an endpoint is set. */
        protected final boolean hasEndpoint() {
            return endpoint != null;
        }

        /** Whether static keys are set. */
        protected final boolean hasCredentials() {
            return accessKey != null;
        }

        /** The checks of the combination every adapter makes; call from {@link #build()}. */
        protected final void checkCommon() {
            if (trustMode != TrustMode.SYSTEM && endpoint != null && !"https".equals(endpoint.getScheme())) {
                throw ProvisioningException.invalid("endpoint",
                        "TLS trust options need an https endpoint, got " + endpoint);
            }
        }
    }
}
