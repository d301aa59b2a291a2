package org.volprov;

import java.net.URI;
import java.net.URISyntaxException;
import java.util.Locale;
import java.util.Objects;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * An object in a bucket. Parsed from {@code s3://bucket/key} or
 * {@code http(s)://host[:port]/bucket/key}; in the second form the host and port must be those of
 * the configured source endpoint, so a request can never make the library fetch from another host.
 *
 * @param bucket the bucket name (S3 naming rules)
 * @param key the object key: 1 to 1024 characters, no control characters, no empty, {@code .} or
 *     {@code ..} path segments (so no leading or trailing {@code /} and no {@code //}): such a key
 *     names different objects on different stores (S3 keeps it verbatim, a file system or a proxy
 *     normalises it), so it is refused rather than guessed at
 */
public record ImageRef(String bucket, String key) {
    private static final Pattern BUCKET = Pattern.compile("[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]");
    private static final int MAX_KEY = 1024;

    public ImageRef {
        validateBucket(bucket);
        validateKey(key);
    }

    /** The sibling object that holds the published SHA-256 of this one. */
    public ImageRef checksumSibling() {
        return new ImageRef(bucket, key + ".sha256");
    }

    /** {@code s3://bucket/key}, a stable form for logs and job records. */
    @Override
    public String toString() {
        return "s3://" + bucket + "/" + key;
    }

    /**
     * Parses an image URI without an endpoint check; http(s) URIs are refused.
     *
     * @throws ProvisioningException {@code INVALID_REQUEST} naming {@code imageUri}
     */
    public static ImageRef parse(String uri) {
        return parse(uri, Optional.empty());
    }

    /**
     * Parses an image URI; an http(s) URI must name {@code endpoint}'s host and port.
     *
     * @throws ProvisioningException {@code INVALID_REQUEST} naming {@code imageUri}
     */
    public static ImageRef parse(String uri, Optional<URI> endpoint) {
        return parse(uri, endpoint, true);
    }

    /**
     * Checks the syntax of an image URI without checking an http(s) host against an endpoint; the
     * engine checks the host at submit, where the source's endpoint is known.
     *
     * @throws ProvisioningException {@code INVALID_REQUEST} naming {@code imageUri}
     */
    public static ImageRef parseSyntax(String uri) {
        return parse(uri, Optional.empty(), false);
    }

    private static ImageRef parse(String uri, Optional<URI> endpoint, boolean checkHost) {
        if (uri == null || uri.isBlank()) {
            throw ProvisioningException.invalid("imageUri", "must not be blank");
        }
        if (uri.length() > 2048) {
            throw ProvisioningException.invalid("imageUri", "must be at most 2048 characters");
        }
        String lower = uri.toLowerCase(Locale.ROOT);
        if (lower.startsWith("s3://")) {
            String rest = uri.substring(5);
            int slash = rest.indexOf('/');
            if (slash <= 0 || slash == rest.length() - 1) {
                throw ProvisioningException.invalid("imageUri", "must be s3://bucket/key");
            }
            return of(rest.substring(0, slash), rest.substring(slash + 1));
        }
        if (lower.startsWith("http://") || lower.startsWith("https://")) {
            URI parsed;
            try {
                parsed = new URI(uri);
            } catch (URISyntaxException e) {
                throw ProvisioningException.invalid("imageUri", "is not a valid URI (" + e.getReason() + ")");
            }
            if (parsed.getHost() == null) {
                throw ProvisioningException.invalid("imageUri", "must name a host");
            }
            if (parsed.getRawQuery() != null || parsed.getRawFragment() != null || parsed.getRawUserInfo() != null) {
                throw ProvisioningException.invalid("imageUri", "must not carry user info, a query or a fragment");
            }
            if (checkHost) {
                URI allowed = endpoint.orElseThrow(() -> ProvisioningException.invalid(
                        "imageUri", "http(s) URIs need a source with an endpoint; use s3://bucket/key"));
                if (!sameAuthority(parsed, allowed)) {
                    throw ProvisioningException.invalid("imageUri", "host " + parsed.getHost() + ":" + port(parsed)
                            + " is not the configured source endpoint " + allowed.getHost() + ":" + port(allowed));
                }
            }
            String path = parsed.getPath();
            if (path == null || path.length() < 2) {
                throw ProvisioningException.invalid("imageUri", "must be http(s)://host[:port]/bucket/key");
            }
            String rest = path.substring(1);
            int slash = rest.indexOf('/');
            if (slash <= 0 || slash == rest.length() - 1) {
                throw ProvisioningException.invalid("imageUri", "must be http(s)://host[:port]/bucket/key");
            }
            return of(rest.substring(0, slash), rest.substring(slash + 1));
        }
        throw ProvisioningException.invalid("imageUri", "must be s3://bucket/key or http(s)://host[:port]/bucket/key");
    }

    private static ImageRef of(String bucket, String key) {
        return new ImageRef(bucket, key);
    }

    private static boolean sameAuthority(URI a, URI b) {
        return a.getHost().equalsIgnoreCase(Objects.requireNonNullElse(b.getHost(), ""))
                && port(a) == port(b);
    }

    private static int port(URI uri) {
        if (uri.getPort() >= 0) {
            return uri.getPort();
        }
        return "https".equalsIgnoreCase(uri.getScheme()) ? 443 : 80;
    }

    private static void validateBucket(String bucket) {
        if (bucket == null || !BUCKET.matcher(bucket).matches() || bucket.contains("..")) {
            throw ProvisioningException.invalid("imageUri",
                    "bucket must be 3-63 characters of a-z, 0-9, '.', '-', starting and ending with a letter or digit");
        }
    }

    private static void validateKey(String key) {
        if (key == null || key.isEmpty()) {
            throw ProvisioningException.invalid("imageUri", "object key must not be empty");
        }
        if (key.length() > MAX_KEY) {
            throw ProvisioningException.invalid("imageUri", "object key must be at most " + MAX_KEY + " characters");
        }
        for (int i = 0; i < key.length(); i++) {
            if (Character.isISOControl(key.charAt(i))) {
                throw ProvisioningException.invalid("imageUri", "object key must not contain control characters");
            }
        }
        for (String segment : key.split("/", -1)) {
            if (segment.isEmpty()) {
                throw ProvisioningException.invalid("imageUri",
                        "object key must not start or end with '/' or contain '//'");
            }
            if (segment.equals(".") || segment.equals("..")) {
                throw ProvisioningException.invalid("imageUri", "object key must not have '.' or '..' path segments");
            }
        }
    }
}
