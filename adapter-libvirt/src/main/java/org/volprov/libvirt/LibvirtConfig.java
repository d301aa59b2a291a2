package org.volprov.libvirt;

import java.net.URI;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Objects;
import java.util.Optional;
import org.volprov.support.Redaction;

/**
 * Immutable settings of a {@link LibvirtVolumeBackend}. Built with {@link #builder()}; every setter
 * checks its argument and names the field it refuses.
 */
public final class LibvirtConfig {
    /** The URI used when none is set: the system QEMU driver on this host. */
    public static final String DEFAULT_URI = "qemu:///system";

    private final String uri;
    private final String poolName;
    private final Path definePoolAt;
    private final WriteMode writeMode;

    private LibvirtConfig(Builder b) {
        this.uri = b.uri;
        this.poolName = b.poolName;
        this.definePoolAt = b.definePoolAt;
        this.writeMode = b.writeMode;
    }

    public static Builder builder() {
        return new Builder();
    }

    /** The libvirt connection URI, e.g. {@code qemu:///system} or {@code qemu+ssh://host/system}. */
    public String uri() {
        return uri;
    }

    /** The storage pool that holds the volumes. */
    public String poolName() {
        return poolName;
    }

    /**
     * Where to define and start a {@code dir} pool when {@link #poolName()} does not exist (or is
     * defined but inactive); empty (the default) means a missing pool is an error.
     */
    public Optional<Path> definePoolAt() {
        return Optional.ofNullable(definePoolAt);
    }

    public WriteMode writeMode() {
        return writeMode;
    }

    /** Whether the URI names this host; see {@link #isLocal(String)}. */
    public boolean isLocalUri() {
        return isLocal(uri);
    }

    /**
     * Whether {@code uri} names this host, decided from its form alone: no authority at all
     * ({@code driver:///path}) and no transport but {@code unix} ({@code qemu:///system},
     * {@code qemu+unix:///system?socket=...}). Everything else counts as remote, also
     * {@code qemu://localhost/system} and a host name {@code java.net.URI} cannot parse
     * ({@code qemu+ssh://root@hv_17/system}, whose host it reports as null): a remote URI taken for a
     * local one would write a path on this host while the volume stays untouched, while a local URI
     * taken for a remote one only streams.
     */
    public static boolean isLocal(String uri) {
        int colon = uri.indexOf(':');
        if (colon <= 0) {
            return false;
        }
        String scheme = uri.substring(0, colon).toLowerCase(Locale.ROOT);
        int plus = scheme.indexOf('+');
        if (plus >= 0 && !scheme.substring(plus + 1).equals("unix")) {
            return false;
        }
        return uri.startsWith(":///", colon);
    }

    /** {@link #uri()} with a password it may carry masked: the form messages and logs show. */
    public String redactedUri() {
        return Redaction.redact(uri);
    }

    @Override
    public String toString() {
        return "LibvirtConfig[uri=" + redactedUri() + ", pool=" + poolName
                + (definePoolAt == null ? "" : ", definePoolAt=" + definePoolAt) + ", writeMode=" + writeMode + "]";
    }

    /** Builds a {@link LibvirtConfig}; {@link #poolName(String)} is required. Not thread-safe. */
    public static final class Builder {
        private String uri = DEFAULT_URI;
        private String poolName;
        private Path definePoolAt;
        private WriteMode writeMode = WriteMode.AUTO;

        private Builder() {
        }

        /** The connection URI (default {@value LibvirtConfig#DEFAULT_URI}). */
        public Builder uri(String uri) {
            Objects.requireNonNull(uri, "uri");
            URI u;
            try {
                u = new URI(uri);
            } catch (URISyntaxException e) {
                // Neither the exception's message nor its input is shown: both hold the whole URI.
                throw new IllegalArgumentException("uri: is not a valid URI: " + e.getReason() + " at index "
                        + e.getIndex());
            }
            if (u.getScheme() == null) {
                throw new IllegalArgumentException("uri: must have a driver scheme such as qemu:///system, was "
                        + Redaction.redact(uri));
            }
            this.uri = uri;
            return this;
        }

        /** The storage pool's name: 1 to 255 printable characters, no '/'. */
        public Builder poolName(String poolName) {
            Objects.requireNonNull(poolName, "poolName");
            if (poolName.isBlank() || poolName.length() > 255) {
                throw new IllegalArgumentException("poolName: must be 1 to 255 characters and not blank");
            }
            if (poolName.indexOf('/') >= 0 || poolName.chars().anyMatch(Character::isISOControl)) {
                throw new IllegalArgumentException("poolName: must not contain '/' or control characters");
            }
            this.poolName = poolName;
            return this;
        }

        /**
         * Defines and starts a {@code dir} pool at {@code directory} when the pool is missing. Off by
         * default: production pools (LVM) are set up by the operator.
         */
        public Builder definePoolAt(Path directory) {
            Objects.requireNonNull(directory, "definePoolAt");
            if (!directory.isAbsolute()) {
                throw new IllegalArgumentException("definePoolAt: must be an absolute path, was " + directory);
            }
            if (directory.toString().chars().anyMatch(Character::isISOControl)) {
                throw new IllegalArgumentException("definePoolAt: must not contain control characters");
            }
            this.definePoolAt = directory.normalize();
            return this;
        }

        /** How volumes are written (default {@link WriteMode#AUTO}). */
        public Builder writeMode(WriteMode writeMode) {
            this.writeMode = Objects.requireNonNull(writeMode, "writeMode");
            return this;
        }

        public LibvirtConfig build() {
            if (poolName == null) {
                throw new IllegalArgumentException("poolName: is required");
            }
            return new LibvirtConfig(this);
        }
    }
}
