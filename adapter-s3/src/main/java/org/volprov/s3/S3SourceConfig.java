package org.volprov.s3;

import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;
import org.volprov.ProvisioningException;
import org.volprov.support.ConfigChecks;

/**
 * Immutable, validated configuration of an {@link S3ImageSource}. Built once by {@link #builder()};
 * every setter checks its argument and {@link Builder#build()} checks the combination, with a
 * message that names the field. {@link #toString()} never prints the secret key.
 */
public final class S3SourceConfig {

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
    private final boolean pathStyle;
    private final String accessKey;
    private final String secretKey;
    private final TrustMode trustMode;
    private final Path caFile;
    private final Duration connectTimeout;
    private final Duration readTimeout;
    private final int maxConnections;

    private S3SourceConfig(Builder b) {
        this.endpoint = b.endpoint;
        this.region = b.region;
        this.pathStyle = b.pathStyle != null ? b.pathStyle : b.endpoint != null;
        this.accessKey = b.accessKey;
        this.secretKey = b.secretKey;
        this.trustMode = b.trustMode;
        this.caFile = b.caFile;
        this.connectTimeout = b.connectTimeout;
        this.readTimeout = b.readTimeout;
        this.maxConnections = b.maxConnections;
    }

    public static Builder builder() {
        return new Builder();
    }

    /** The endpoint override; empty means the AWS endpoint of {@link #region()}. */
    public Optional<URI> endpoint() {
        return Optional.ofNullable(endpoint);
    }

    public String region() {
        return region;
    }

    /** Whether requests use {@code http://host/bucket/key} rather than {@code http://bucket.host/key}. */
    public boolean pathStyle() {
        return pathStyle;
    }

    /** Whether static keys are configured; otherwise the SDK's default credentials chain is used. */
    public boolean hasStaticCredentials() {
        return accessKey != null;
    }

    Optional<String> accessKey() {
        return Optional.ofNullable(accessKey);
    }

    Optional<String> secretKey() {
        return Optional.ofNullable(secretKey);
    }

    public TrustMode trustMode() {
        return trustMode;
    }

    /** The PEM file of trusted CA certificates when {@link #trustMode()} is {@code CA_FILE}. */
    public Optional<Path> caFile() {
        return Optional.ofNullable(caFile);
    }

    public Duration connectTimeout() {
        return connectTimeout;
    }

    /** The longest wait for the next bytes of a response (socket read timeout). */
    public Duration readTimeout() {
        return readTimeout;
    }

    public int maxConnections() {
        return maxConnections;
    }

    @Override
    public String toString() {
        return "S3SourceConfig[endpoint=" + (endpoint == null ? "aws" : endpoint)
                + ", region=" + region
                + ", pathStyle=" + pathStyle
                + ", credentials=" + (accessKey == null ? "default-chain" : "static(accessKey=" + ConfigChecks.maskKey(accessKey) + ")")
                + ", trust=" + trustMode + (caFile == null ? "" : "(" + caFile + ")")
                + ", connectTimeout=" + connectTimeout
                + ", readTimeout=" + readTimeout
                + ", maxConnections=" + maxConnections + "]";
    }


    /** Builds an {@link S3SourceConfig}; not thread-safe. */
    public static final class Builder {
        private URI endpoint;
        private String region = "us-east-1";
        private Boolean pathStyle;
        private String accessKey;
        private String secretKey;
        private TrustMode trustMode = TrustMode.SYSTEM;
        private Path caFile;
        private Duration connectTimeout = Duration.ofSeconds(10);
        private Duration readTimeout = Duration.ofSeconds(60);
        private int maxConnections = 16;

        private Builder() {
        }

        /**
         * The S3-compatible server, {@code http(s)://host[:port]} with no path, query or user info.
         * Unset means AWS S3 itself.
         */
        public Builder endpoint(URI endpoint) {
            this.endpoint = ConfigChecks.httpEndpoint("endpoint", endpoint);
            return this;
        }

        /** Shorthand for {@link #endpoint(URI)}. */
        public Builder endpoint(String endpoint) {
            this.endpoint = ConfigChecks.httpEndpoint("endpoint", endpoint);
            return this;
        }

        /** The signing region; default {@code us-east-1}, which S3-compatible servers accept. */
        public Builder region(String region) {
            this.region = ConfigChecks.nonBlank("region", region);
            return this;
        }

        /** Path-style addressing; default on when an endpoint is set, off for AWS. */
        public Builder pathStyle(boolean pathStyle) {
            this.pathStyle = pathStyle;
            return this;
        }

        /** Static keys; without them the SDK's default credentials chain (env, profile, instance role) is used. */
        public Builder credentials(String accessKey, String secretKey) {
            if (accessKey == null || accessKey.isBlank()) {
                throw ProvisioningException.invalid("accessKey", "must not be blank");
            }
            if (secretKey == null || secretKey.isEmpty()) {
                throw ProvisioningException.invalid("secretKey", "must not be empty");
            }
            this.accessKey = accessKey;
            this.secretKey = secretKey;
            return this;
        }

        /** Trusts the JVM's default trust store (the default). */
        public Builder trustSystemCertificates() {
            this.trustMode = TrustMode.SYSTEM;
            this.caFile = null;
            return this;
        }

        /** Trusts only the CA certificates in {@code pemFile} (one or more PEM blocks). */
        public Builder trustCaFile(Path pemFile) {
            this.caFile = ConfigChecks.caFile("caFile", pemFile);
            this.trustMode = TrustMode.CA_FILE;
            return this;
        }

        /** Accepts any certificate and host name. Only for test servers with throw-away certificates. */
        public Builder trustAllCertificates() {
            this.trustMode = TrustMode.TRUST_ALL;
            this.caFile = null;
            return this;
        }

        /** Time allowed to open a connection; default 10 s. */
        public Builder connectTimeout(Duration timeout) {
            this.connectTimeout = ConfigChecks.positiveMillis("connectTimeout", timeout);
            return this;
        }

        /** Longest silence while waiting for response bytes; default 60 s. */
        public Builder readTimeout(Duration timeout) {
            this.readTimeout = ConfigChecks.positiveMillis("readTimeout", timeout);
            return this;
        }

        /** Connection pool size; bounds parallel part downloads. Default 16. */
        public Builder maxConnections(int maxConnections) {
            if (maxConnections < 1 || maxConnections > 1024) {
                throw ProvisioningException.invalid("maxConnections", "must be between 1 and 1024, got " + maxConnections);
            }
            this.maxConnections = maxConnections;
            return this;
        }

        public S3SourceConfig build() {
            if (trustMode != TrustMode.SYSTEM && endpoint != null && !"https".equals(endpoint.getScheme())) {
                throw ProvisioningException.invalid("endpoint",
                        "TLS trust options need an https endpoint, got " + endpoint);
            }
            return new S3SourceConfig(this);
        }

    }
}
