package org.volprov.minio;

import java.util.Optional;
import org.volprov.ProvisioningException;
import org.volprov.source.ObjectStoreConfig;

/**
 * Immutable, validated configuration of a {@link MinioImageSource}: the {@linkplain ObjectStoreConfig
 * options of every object store}, with the endpoint required (so {@link #endpoint()} is never
 * empty) and the keys either static or read from the environment. Built once by {@link #builder()}; every setter checks its argument with a
 * message that names the field. {@link #toString()} never prints the secret key.
 */
public final class MinioSourceConfig extends ObjectStoreConfig {

    private MinioSourceConfig(Builder b) {
        super(b);
    }

    public static Builder builder() {
        return new Builder();
    }

    Optional<String> accessKey() {
        return staticAccessKey();
    }

    Optional<String> secretKey() {
        return staticSecretKey();
    }

    @Override
    protected String credentialsWithoutKeys() {
        return "environment";
    }

    /**
     * Builds a {@link MinioSourceConfig}; not thread-safe. The endpoint is required, and so is a
     * choice of keys: {@code credentials(...)} or {@link #environmentCredentials()}. Setting the
     * region spares the SDK a bucket-location request before the first read.
     */
    public static final class Builder extends ObjectStoreConfig.Builder<Builder, MinioSourceConfig> {
        private boolean environmentCredentials;

        private Builder() {
        }

        @Override
        protected Builder self() {
            return this;
        }

        @Override
        public Builder credentials(String accessKey, String secretKey) {
            super.credentials(accessKey, secretKey);
            this.environmentCredentials = false;
            return this;
        }

        /**
         * Keys from {@code MINIO_ACCESS_KEY}/{@code MINIO_SECRET_KEY}, else
         * {@code AWS_ACCESS_KEY_ID}/{@code AWS_SECRET_ACCESS_KEY}, read at each request.
         */
        public Builder environmentCredentials() {
            clearCredentials();
            this.environmentCredentials = true;
            return this;
        }

        @Override
        public MinioSourceConfig build() {
            if (!hasEndpoint()) {
                throw ProvisioningException.invalid("endpoint", "is required");
            }
            if (!hasCredentials() && !environmentCredentials) {
                throw ProvisioningException.invalid("credentials",
                        "set static keys with credentials(accessKey, secretKey) or choose environmentCredentials()");
            }
            checkCommon();
            return new MinioSourceConfig(this);
        }
    }
}
