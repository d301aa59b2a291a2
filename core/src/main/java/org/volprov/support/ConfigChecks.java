package org.volprov.support;

import java.net.URI;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Locale;
import java.util.Objects;
import org.volprov.ProvisioningException;

/**
 * The checks adapters' config builders share; each fails with {@code INVALID_REQUEST} naming the
 * field. A value echoed in a message is {@linkplain Redaction redacted} first: an endpoint may carry
 * a password in its user info, and these messages reach logs.
 */
public final class ConfigChecks {
    private ConfigChecks() {
    }

    /** An {@code http(s)://host[:port]} endpoint with nothing else, normalised (lower-case scheme, no trailing slash). */
    public static URI httpEndpoint(String field, URI endpoint) {
        Objects.requireNonNull(endpoint, field);
        String scheme = endpoint.getScheme() == null ? "" : endpoint.getScheme().toLowerCase(Locale.ROOT);
        if (!scheme.equals("http") && !scheme.equals("https")) {
            throw ProvisioningException.invalid(field, "must be an http or https URI, got " + shown(endpoint));
        }
        if (endpoint.getHost() == null) {
            throw ProvisioningException.invalid(field, "must name a host, got " + shown(endpoint));
        }
        if (endpoint.getRawUserInfo() != null || endpoint.getRawQuery() != null || endpoint.getRawFragment() != null
                || (endpoint.getRawPath() != null && !endpoint.getRawPath().isEmpty()
                && !endpoint.getRawPath().equals("/"))) {
            throw ProvisioningException.invalid(field, "must be scheme://host[:port] only, got " + shown(endpoint));
        }
        return URI.create(scheme + "://" + endpoint.getRawAuthority());
    }

    /** {@link #httpEndpoint(String, URI)} of a string. */
    public static URI httpEndpoint(String field, String endpoint) {
        Objects.requireNonNull(endpoint, field);
        URI parsed;
        try {
            parsed = new URI(endpoint);
        } catch (URISyntaxException e) {
            // The exception's message and input echo the whole string, password included.
            throw ProvisioningException.invalid(field, "is not a URI: " + e.getReason() + " at index " + e.getIndex());
        }
        return httpEndpoint(field, parsed);
    }

    private static String shown(URI endpoint) {
        return Redaction.redact(endpoint.toString());
    }

    /** {@code value} stripped, when it is not blank. */
    public static String nonBlank(String field, String value) {
        if (value == null || value.isBlank()) {
            throw ProvisioningException.invalid(field, "must not be blank");
        }
        return value.strip();
    }

    /** A positive duration that fits in an int of milliseconds, as HTTP clients want. */
    public static Duration positiveMillis(String field, Duration d) {
        if (d == null || d.isNegative() || d.isZero()) {
            throw ProvisioningException.invalid(field, "must be a positive duration");
        }
        if (d.toMillis() > Integer.MAX_VALUE) {
            throw ProvisioningException.invalid(field, "must be at most " + Integer.MAX_VALUE + " ms");
        }
        return d;
    }

    /** The absolute path of a readable PEM file of CA certificates; parsed now so a bad file fails at build. */
    public static Path caFile(String field, Path pemFile) {
        Objects.requireNonNull(pemFile, field);
        if (!Files.isRegularFile(pemFile)) {
            throw ProvisioningException.invalid(field, "is not a readable file: " + pemFile);
        }
        PemTrust.trustManagers(pemFile);
        return pemFile.toAbsolutePath();
    }

    /** An access key id shortened for logs: not a secret, but its full form is not needed to recognise it. */
    public static String maskKey(String key) {
        return key.length() <= 4 ? "****" : key.substring(0, 4) + "****";
    }
}
