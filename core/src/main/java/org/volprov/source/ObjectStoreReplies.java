package org.volprov.source;

import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;

/**
 * What the replies of an S3-compatible server mean, shared by the S3 and MinIO adapters so that both
 * classify a reply alike: the error table (status and S3 error code to {@link ErrorCode}) and the
 * checks every read makes of a reply (the size a HEAD states, the ETag and the range a ranged GET
 * answers with). Stateless and thread-safe.
 *
 * <p>The table, first match wins: a known S3 error code decides before the HTTP status (S3 answers
 * {@code RequestTimeout} and {@code ExpiredToken} with 400); then 404 is not found, 401/403 denied,
 * 412 a changed object, 416 a bad range, 408/425/429 and throttling retryable, 501/505 refused,
 * other 5xx retryable, 307 retryable, and every other 3xx and 4xx a permanent refusal. Anything
 * else (no status at all) is retryable.
 */
public final class ObjectStoreReplies {
    /**
     * The largest size a server may state for an object: 1 PiB, far above what any object store
     * serves (S3: 50 TB). A larger one is a broken reply, not an image.
     */
    public static final long MAX_OBJECT_BYTES = 1L << 50;

    private static final Set<String> NOT_FOUND = Set.of("NoSuchKey", "NoSuchBucket", "NoSuchObject", "NotFound",
            "ResourceNotFound", "NoSuchVersion");
    private static final Set<String> DENIED = Set.of("AccessDenied", "SignatureDoesNotMatch", "InvalidAccessKeyId",
            "ExpiredToken", "InvalidToken", "TokenRefreshRequired", "AllAccessDisabled", "AccountProblem",
            "InvalidSecurity", "RequestTimeTooSkewed", "Forbidden", "AuthorizationHeaderMalformed",
            "InvalidClientTokenId", "MissingSecurityHeader");
    private static final Set<String> TRANSIENT = Set.of("SlowDown", "SlowDownRead", "SlowDownWrite", "Throttling",
            "ThrottlingException", "RequestThrottled", "RequestTimeout", "RequestTimeoutException",
            "ServiceUnavailable", "InternalError", "OperationAborted", "XMinioServerNotInitialized",
            "XMinioReadQuorum", "XMinioWriteQuorum");
    private static final Set<String> REFUSED = Set.of("InvalidArgument", "InvalidRequest", "MethodNotAllowed",
            "InvalidObjectState", "NotImplemented", "MissingContentLength", "EntityTooLarge", "KeyTooLongError",
            "MetadataTooLarge", "InvalidBucketName", "InvalidURI", "InvalidStorageClass", "PermanentRedirect",
            "IllegalLocationConstraintException", "BadRequest", "InvalidObjectName", "XMinioInvalidObjectName",
            "UnexpectedContent", "InvalidEncryptionAlgorithmError", "InvalidTag");
    private static final Set<Integer> TRANSIENT_STATUS = Set.of(307, 408, 425, 429);
    private static final Pattern CONTENT_RANGE = Pattern.compile("bytes\\s+(\\d+)-(\\d+)/(\\d+|\\*)",
            Pattern.CASE_INSENSITIVE);
    private static final String DENIED_ADVICE =
            "; check the access key, the secret key, the region and the bucket's policy";

    private ObjectStoreReplies() {
    }

    /**
     * The code for an error reply.
     *
     * @param status the HTTP status, or 0 when there was none
     * @param code the S3 error code of the reply's body, or null (a HEAD has no body)
     * @param throttling whether the client library recognised the reply as throttling
     */
    public static ErrorCode classify(int status, String code, boolean throttling) {
        if (code != null) {
            if (NOT_FOUND.contains(code)) {
                return ErrorCode.IMAGE_NOT_FOUND;
            }
            if (DENIED.contains(code)) {
                return ErrorCode.ACCESS_DENIED;
            }
            if (TRANSIENT.contains(code)) {
                return ErrorCode.SOURCE_UNAVAILABLE;
            }
            if (REFUSED.contains(code)) {
                return ErrorCode.SOURCE_REFUSED;
            }
            if (code.equals("PreconditionFailed")) {
                return ErrorCode.IMAGE_CHANGED;
            }
            if (code.equals("InvalidRange")) {
                return ErrorCode.INVALID_REQUEST;
            }
        }
        if (throttling) {
            return ErrorCode.SOURCE_UNAVAILABLE;
        }
        if (status == 404) {
            return ErrorCode.IMAGE_NOT_FOUND;
        }
        if (status == 401 || status == 403) {
            return ErrorCode.ACCESS_DENIED;
        }
        if (status == 412) {
            return ErrorCode.IMAGE_CHANGED;
        }
        if (status == 416) {
            return ErrorCode.INVALID_REQUEST;
        }
        if (TRANSIENT_STATUS.contains(status)) {
            return ErrorCode.SOURCE_UNAVAILABLE;
        }
        if (status == 501 || status == 505) {
            return ErrorCode.SOURCE_REFUSED;
        }
        if (status >= 500) {
            return ErrorCode.SOURCE_UNAVAILABLE;
        }
        if (status >= 300 && status < 500) {
            return ErrorCode.SOURCE_REFUSED;
        }
        return ErrorCode.SOURCE_UNAVAILABLE;
    }

    /**
     * The exception for an error reply, classified by {@link #classify}, with a message that says
     * what was asked, what the server answered and what to do.
     *
     * @param server names the server in the message ({@code "S3"}, {@code "MinIO"})
     * @param action what was being done, e.g. {@code "reading"}
     * @param target the object or range, for the message
     * @param serverMessage the reply's message, or null
     */
    public static ProvisioningException error(String server, String action, Object target, int status, String code,
            String serverMessage, boolean throttling, Throwable cause) {
        String detail = " (HTTP " + status + (code == null ? "" : ", " + code)
                + (serverMessage == null || serverMessage.isBlank() ? "" : ": " + serverMessage) + ")";
        ErrorCode kind = classify(status, code, throttling);
        String message = switch (kind) {
            case IMAGE_NOT_FOUND -> "no such bucket or object: " + target + detail;
            case ACCESS_DENIED -> "access denied " + action + " " + target + detail + DENIED_ADVICE;
            case IMAGE_CHANGED -> target + " changed since its metadata was read: the server refused a read"
                    + " conditional on the ETag it had stated" + detail;
            case INVALID_REQUEST -> "range not satisfiable " + action + " " + target + detail;
            case SOURCE_REFUSED -> server + " server refused " + action + " " + target + detail
                    + "; asking again gets the same answer, so it is not retried" + refusalAdvice(status, code);
            default -> server + " server unavailable " + action + " " + target + " (retryable)" + detail;
        };
        return new ProvisioningException(kind, message, cause);
    }

    /**
     * The exception for a request that got no reply: connection refused or reset, a timeout, a TLS
     * failure. {@code SOURCE_UNAVAILABLE}, which the engine retries.
     *
     * @param detail what went wrong, for the message
     */
    public static ProvisioningException unreachable(String server, String action, Object target, String detail,
            Throwable cause) {
        return new ProvisioningException(ErrorCode.SOURCE_UNAVAILABLE,
                "cannot reach " + server + " " + action + " " + target + " (retryable): " + detail, cause);
    }

    /** The exception for a client library that found no keys to sign with: {@code ACCESS_DENIED}. */
    public static ProvisioningException noCredentials(String server, String action, Object target, Throwable cause) {
        return new ProvisioningException(ErrorCode.ACCESS_DENIED,
                "no " + server + " credentials found " + action + " " + target + ": " + cause.getMessage(), cause);
    }

    private static String refusalAdvice(int status, String code) {
        String c = code == null ? "" : code;
        if (c.equals("InvalidObjectState")) {
            return ": the object is archived (a Glacier or deep-archive storage class); restore it first";
        }
        if (c.equals("PermanentRedirect") || status == 301) {
            return ": the bucket lives in another region or behind another endpoint; configure that one";
        }
        if (c.equals("NotImplemented") || c.equals("MethodNotAllowed") || status == 405 || status == 501) {
            return ": the server does not support the request (HEAD and ranged GET of objects)";
        }
        return ": check the image URI, the object and the server in front of it";
    }

    /**
     * The size a HEAD reply states, checked.
     *
     * @param contentLength the reply's {@code Content-Length}, or null when it had none
     * @throws ProvisioningException {@code SOURCE_REFUSED} when it is missing, negative or absurd:
     *     an object of unknown size is never taken as empty
     */
    public static long statedSize(String server, Object target, Long contentLength) {
        if (contentLength == null) {
            throw new ProvisioningException(ErrorCode.SOURCE_REFUSED, "the " + server + " server stated no size"
                    + " (no Content-Length) for " + target + "; an object of unknown size is not downloaded:"
                    + " check the server or the proxy in front of it");
        }
        if (contentLength < 0 || contentLength > MAX_OBJECT_BYTES) {
            throw new ProvisioningException(ErrorCode.SOURCE_REFUSED, "the " + server + " server stated a size of "
                    + contentLength + " bytes for " + target + ", which no object has; check the server or the proxy"
                    + " in front of it");
        }
        return contentLength;
    }

    /** {@link #statedSize(String, Object, Long)} of a header's text; unparseable text counts as none. */
    public static long statedSize(String server, Object target, String contentLength) {
        if (contentLength == null) {
            return statedSize(server, target, (Long) null);
        }
        try {
            return statedSize(server, target, Long.parseLong(contentLength.strip()));
        } catch (NumberFormatException e) {
            throw new ProvisioningException(ErrorCode.SOURCE_REFUSED, "the " + server + " server stated a size of '"
                    + printable(contentLength) + "' for " + target + ", which is not a number; check the server or"
                    + " the proxy in front of it");
        }
    }

    /**
     * The ETag a HEAD reply states, without quotes.
     *
     * @throws ProvisioningException {@code SOURCE_REFUSED} when it has none: without one, reads
     *     cannot be made conditional and a new version could not be told from the old one
     */
    public static String statedEtag(String server, Object target, String etag) {
        String e = etag == null ? "" : unquote(etag);
        if (e.isBlank()) {
            throw new ProvisioningException(ErrorCode.SOURCE_REFUSED, "the " + server + " server stated no ETag for "
                    + target + "; without one a download cannot be checked against a change of the object");
        }
        return e;
    }

    /** The value of an {@code If-Match} header for {@code etag}: a quoted entity tag, as RFC 9110 wants. */
    public static String ifMatch(String etag) {
        return "\"" + unquote(etag) + "\"";
    }

    /**
     * Checks the ETag a ranged read answered with. A server that ignores {@code If-Match} (or a cache
     * in front of it) still says which version it sent.
     *
     * @param answered the reply's {@code ETag} header, or null
     * @throws ProvisioningException {@code IMAGE_CHANGED} when it names another version;
     *     {@code SOURCE_REFUSED} when the reply has none
     */
    public static void checkEtag(String server, Object what, String expected, String answered) {
        if (answered == null || unquote(answered).isBlank()) {
            throw new ProvisioningException(ErrorCode.SOURCE_REFUSED, "the " + server + " server answered the read of "
                    + what + " without an ETag; the bytes cannot be checked against a change of the object");
        }
        if (!unquote(answered).equals(unquote(expected))) {
            throw new ProvisioningException(ErrorCode.IMAGE_CHANGED, what + " changed since its metadata was read:"
                    + " the read was answered with ETag " + printable(unquote(answered)) + ", not " + unquote(expected));
        }
    }

    /**
     * Checks that a ranged read was answered with the range asked for.
     *
     * @param contentRange the reply's {@code Content-Range} header, or null
     * @throws ProvisioningException {@code SOURCE_REFUSED} when a read past the first byte was
     *     answered without a range (the whole object: a server that ignores {@code Range}) or with
     *     another one
     */
    public static void checkRange(String server, Object what, long offset, String contentRange) {
        if (contentRange == null) {
            if (offset != 0) {
                throw new ProvisioningException(ErrorCode.SOURCE_REFUSED, "the " + server + " server ignored the"
                        + " Range header for " + what + "; it cannot serve resumed or parallel reads");
            }
            return;
        }
        Matcher m = CONTENT_RANGE.matcher(contentRange.strip());
        if (!m.matches() || parse(m.group(1)) != offset) {
            throw new ProvisioningException(ErrorCode.SOURCE_REFUSED, "the " + server + " server answered the read of "
                    + what + " with the range '" + printable(contentRange) + "'; it cannot serve resumed or parallel"
                    + " reads");
        }
    }

    private static long parse(String digits) {
        try {
            return Long.parseLong(digits);
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    private static String unquote(String etag) {
        String e = etag.strip();
        if (e.startsWith("W/")) {
            e = e.substring(2);
        }
        return e.replace("\"", "");
    }

    /** At most 80 printable characters of a header from outside, for a message. */
    private static String printable(String s) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < s.length() && b.length() < 80; i++) {
            char c = s.charAt(i);
            b.append(c >= 0x20 && c < 0x7f ? c : '?');
        }
        return b.toString();
    }
}
