package org.volprov.s3;

import java.util.List;
import java.util.Optional;
import org.volprov.ProvisioningException;
import org.volprov.source.ObjectStoreConfig;

/**
 * Immutable, validated configuration of an {@link S3ImageSource}: the {@linkplain ObjectStoreConfig
 * options of every object store}, with AWS S3 itself when no endpoint is set, and the addressing
 * style and connection pool of the AWS SDK. An empty {@link #endpoint()} means the AWS endpoint of
 * {@link #region()}; without static keys the SDK's default credentials chain (env, profile, instance
 * role) is used. Built once by {@link #builder()}; every setter checks
 * its argument and {@link Builder#build()} checks the combination, with a message that names the
 * field. {@link #toString()} never prints the secret key.
 */
public final class S3SourceConfig extends ObjectStoreConfig {

    private final boolean pathStyle;
    private final int maxConnections;

    private S3SourceConfig(Builder b, boolean pathStyle) {
        super(b);
        this.pathStyle = pathStyle;
        this.maxConnections = b.maxConnections;
    }

    public static Builder builder() {
        return new Builder();
    }

    /** Whether requests use {@code http://host/bucket/key} rather than {@code http://bucket.host/key}. */
    public boolean pathStyle() {
        return pathStyle;
    }

    public int maxConnections() {
        return maxConnections;
    }

    Optional<String> accessKey() {
        return staticAccessKey();
    }

    Optional<String> secretKey() {
        return staticSecretKey();
    }

    @Override
    protected String defaultEndpointName() {
        return "aws";
    }

    @Override
    protected String credentialsWithoutKeys() {
        return "default-chain";
    }

    @Override
    protected List<String> ownOptions() {
        return List.of("pathStyle=" + pathStyle, "maxConnections=" + maxConnections);
    }

    /**
     * Builds an {@link S3SourceConfig}; not thread-safe. Unset endpoint means AWS S3 itself; without
     * {@code credentials(...)} the SDK's default credentials chain is used.
     */
    public static final class Builder extends ObjectStoreConfig.Builder<Builder, S3SourceConfig> {
        private Boolean pathStyle;
        private int maxConnections = 16;

        private Builder() {
        }

        @Override
        protected Builder self() {
            return this;
        }

        /** Path-style addressing; default on when an endpoint is set, off for AWS. */
        public Builder pathStyle(boolean pathStyle) {
            this.pathStyle = pathStyle;
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

        @Override
        public S3SourceConfig build() {
            checkCommon();
            return new S3SourceConfig(this, pathStyle != null ? pathStyle : hasEndpoint());
        }
    }
}
