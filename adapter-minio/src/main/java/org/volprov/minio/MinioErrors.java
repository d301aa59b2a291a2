package org.volprov.minio;

import io.minio.errors.ErrorResponseException;
import io.minio.errors.MinioException;
import io.minio.errors.ServerException;
import java.io.IOException;
import java.util.Set;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;

/** Translates MinIO SDK exceptions into {@link ProvisioningException}s, keeping them as the cause. */
final class MinioErrors {
    private static final Set<String> NOT_FOUND = Set.of("NoSuchKey", "NoSuchBucket", "NoSuchObject", "NotFound",
            "ResourceNotFound");
    private static final Set<String> DENIED = Set.of("AccessDenied", "SignatureDoesNotMatch", "InvalidAccessKeyId",
            "ExpiredToken", "InvalidToken", "TokenRefreshRequired", "AllAccessDisabled", "AccountProblem",
            "InvalidSecurity", "RequestTimeTooSkewed", "Forbidden");
    private static final Set<String> TRANSIENT = Set.of("SlowDown", "SlowDownRead", "Throttling", "RequestTimeout",
            "ServiceUnavailable", "InternalError", "XMinioServerNotInitialized");

    private static final String DENIED_ADVICE =
            "; check the access key, the secret key, the region and the bucket's policy";

    private MinioErrors() {
    }

    static ProvisioningException translate(String action, Object target, Exception e) {
        if (e instanceof ProvisioningException p) {
            return p;
        }
        if ((e.getClass() == MinioException.class || e.getClass() == RuntimeException.class)
                && e.getCause() instanceof Exception wrapped) {
            // MinIO 9 wraps what is not a server's answer (I/O, TLS, credentials) in a plain
            // MinioException or RuntimeException: classify what it wraps.
            return translate(action, target, wrapped);
        }
        if (e instanceof ErrorResponseException r) {
            String code = r.errorResponse() == null ? null : r.errorResponse().code();
            String serverMessage = r.errorResponse() == null ? r.getMessage() : r.errorResponse().message();
            int status = r.response() == null ? 0 : r.response().code();
            String detail = " (HTTP " + status + (code == null ? "" : ", " + code)
                    + (serverMessage == null ? "" : ": " + serverMessage) + ")";
            if ((code != null && NOT_FOUND.contains(code)) || status == 404) {
                return new ProvisioningException(ErrorCode.IMAGE_NOT_FOUND, "no such bucket or object: " + target + detail, e);
            }
            if ((code != null && DENIED.contains(code)) || status == 401 || status == 403) {
                return new ProvisioningException(ErrorCode.ACCESS_DENIED, "access denied " + action + " " + target + detail
                        + DENIED_ADVICE, e);
            }
            if ("InvalidRange".equals(code) || status == 416) {
                return new ProvisioningException(ErrorCode.INVALID_REQUEST,
                        "range not satisfiable " + action + " " + target + detail, e);
            }
            if ((code != null && TRANSIENT.contains(code)) || status >= 500 || status == 429 || status == 408) {
                return new ProvisioningException(ErrorCode.SOURCE_UNAVAILABLE,
                        "MinIO server unavailable " + action + " " + target + " (retryable)" + detail, e);
            }
            return new ProvisioningException(ErrorCode.SOURCE_UNAVAILABLE,
                    "MinIO server refused " + action + " " + target + detail, e);
        }
        if (e instanceof ServerException s) {
            return new ProvisioningException(ErrorCode.SOURCE_UNAVAILABLE,
                    "MinIO server error " + action + " " + target + " (HTTP " + s.statusCode() + ", retryable): "
                            + s.getMessage(), e);
        }
        if (e instanceof IOException) {
            // Connection refused or reset, timeouts, TLS failures: the engine retries these.
            return new ProvisioningException(ErrorCode.SOURCE_UNAVAILABLE,
                    "cannot reach MinIO " + action + " " + target + " (retryable): " + e, e);
        }
        if (e.getClass().getName().startsWith("io.minio.credentials.")
                || (e instanceof IllegalStateException && String.valueOf(e.getMessage()).contains("credential"))) {
            return new ProvisioningException(ErrorCode.ACCESS_DENIED,
                    "no MinIO credentials " + action + " " + target + ": " + e.getMessage(), e);
        }
        return new ProvisioningException(ErrorCode.SOURCE_UNAVAILABLE,
                "MinIO request failed " + action + " " + target + ": " + e, e);
    }
}
