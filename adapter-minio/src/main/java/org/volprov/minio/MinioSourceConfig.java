package org.volprov.minio;

import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;
import org.volprov.ProvisioningException;
import org.volprov.support.ConfigChecks;

/**
 * Immutable, validated configuration of a {@link MinioImageSource}. Built once by
 * {@link #builder()}; every setter checks its argument with a message that names the field.
 * {@link #toString()} never prints the secret key.
 */
public final class MinioSourceConfig {

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

    private MinioSourceConfig(Builder b) {
        this.endpoint = b.endpoint;
        this.region = b.region;
        this.accessKey = b.accessKey;
        this.secretKey = b.secretKey;
        this.trustMode = b.trustMode;
        this.caFile = b.caFile;
        this.connectTimeout = b.connectTimeout;
        this.readTimeout = b.readTimeout;
    }

    public static Builder builder() {
        return new Builder();
    }

    public URI endpoint() {
        return endpoint;
    }

    public String region() {
        return region;
    }

    /** Whether static keys are configured; otherwise keys come from the environment. */
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

    @Override
    public String toString() {
        return "MinioSourceConfig[endpoint=" + endpoint
                + ", region=" + region
                + ", credentials=" + (accessKey == null ? "environment" : "static(accessKey=" + ConfigChecks.maskKey(accessKey) + ")")
                + ", trust=" + trustMode + (caFile == null ? "" : "(" + caFile + ")")
                + ", connectTimeout=" + connectTimeout
                + ", readTimeout=" + readTimeout + "]";
    }


    /** Builds a {@link MinioSourceConfig}; not thread-safe. */
    public static final class Builder {
        private URI endpoint;
        private String region = "us-east-1";
        private String accessKey;
        private String secretKey;
        private boolean environmentCredentials;
        private TrustMode trustMode = TrustMode.SYSTEM;
        private Path caFile;
        private Duration connectTimeout = Duration.ofSeconds(10);
        private Duration readTimeout = Duration.ofSeconds(60);

        private Builder() {
        }

        /** The MinIO (or other S3-compatible) server, {@code http(s)://host[:port]}; required. */
        public Builder endpoint(URI endpoint) {
            this.endpoint = ConfigChecks.httpEndpoint("endpoint", endpoint);
            return this;
        }

        /** Shorthand for {@link #endpoint(URI)}. */
        public Builder endpoint(String endpoint) {
            this.endpoint = ConfigChecks.httpEndpoint("endpoint", endpoint);
            return this;
        }

        /**
         * The signing region; default {@code us-east-1}. Setting it spares the SDK a bucket-location
         * request before the first read.
         */
        public Builder region(String region) {
            this.region = ConfigChecks.nonBlank("region", region);
            return this;
        }

        /** Static keys. */
        public Builder credentials(String accessKey, String secretKey) {
            if (accessKey == null || accessKey.isBlank()) {
                throw ProvisioningException.invalid("accessKey", "must not be blank");
            }
            if (secretKey == null || secretKey.isEmpty()) {
                throw ProvisioningException.invalid("secretKey", "must not be empty");
            }
            this.accessKey = accessKey;
            this.secretKey = secretKey;
            this.environmentCredentials = false;
            return this;
        }

        /**
         * Keys from {@code MINIO_ACCESS_KEY}/{@code MINIO_SECRET_KEY}, else
         * {@code AWS_ACCESS_KEY_ID}/{@code AWS_SECRET_ACCESS_KEY}, read at each request.
         */
        public Builder environmentCredentials() {
            this.accessKey = null;
            this.secretKey = null;
            this.environmentCredentials = true;
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

        public MinioSourceConfig build() {
            if (endpoint == null) {
                throw ProvisioningException.invalid("endpoint", "is required");
            }
            if (accessKey == null && !environmentCredentials) {
                throw ProvisioningException.invalid("credentials",
                        "set static keys with credentials(accessKey, secretKey) or choose environmentCredentials()");
            }
            if (trustMode != TrustMode.SYSTEM && !"https".equals(endpoint.getScheme())) {
                throw ProvisioningException.invalid("endpoint", "TLS trust options need an https endpoint, got " + endpoint);
            }
            return new MinioSourceConfig(this);
        }

    }
}
