package org.volprov.s3;

import java.util.Set;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;
import software.amazon.awssdk.awscore.exception.AwsServiceException;
import software.amazon.awssdk.core.exception.SdkClientException;
import software.amazon.awssdk.core.exception.SdkServiceException;

/** Translates AWS SDK exceptions into {@link ProvisioningException}s, keeping them as the cause. */
final class S3Errors {
    private static final Set<String> NOT_FOUND = Set.of("NoSuchKey", "NoSuchBucket", "NotFound");
    private static final Set<String> DENIED = Set.of("AccessDenied", "SignatureDoesNotMatch", "InvalidAccessKeyId",
            "ExpiredToken", "InvalidToken", "TokenRefreshRequired", "AllAccessDisabled", "AccountProblem",
            "InvalidSecurity", "RequestTimeTooSkewed", "Forbidden");
    private static final Set<String> TRANSIENT = Set.of("SlowDown", "Throttling", "ThrottlingException",
            "RequestTimeout", "ServiceUnavailable", "InternalError", "RequestTimeoutException", "XMinioServerNotInitialized");

    private static final String DENIED_ADVICE =
            "; check the access key, the secret key, the region and the bucket's policy";

    private S3Errors() {
    }

    static ProvisioningException translate(String action, Object target, RuntimeException e) {
        if (e instanceof ProvisioningException p) {
            return p;
        }
        if (e instanceof SdkServiceException s) {
            String code = null;
            String serverMessage = s.getMessage();
            if (s instanceof AwsServiceException a && a.awsErrorDetails() != null) {
                code = a.awsErrorDetails().errorCode();
                if (a.awsErrorDetails().errorMessage() != null) {
                    serverMessage = a.awsErrorDetails().errorMessage();
                }
            }
            int status = s.statusCode();
            String detail = " (HTTP " + status + (code == null ? "" : ", " + code)
                    + (serverMessage == null ? "" : ": " + serverMessage) + ")";
            if ((code != null && NOT_FOUND.contains(code)) || status == 404) {
                return new ProvisioningException(ErrorCode.IMAGE_NOT_FOUND, "no such bucket or object: " + target + detail, e);
            }
            if ((code != null && DENIED.contains(code)) || status == 401 || status == 403) {
                return new ProvisioningException(ErrorCode.ACCESS_DENIED,
                        "access denied " + action + " " + target + detail + DENIED_ADVICE, e);
            }
            if ("InvalidRange".equals(code) || status == 416) {
                return new ProvisioningException(ErrorCode.INVALID_REQUEST,
                        "range not satisfiable " + action + " " + target + detail, e);
            }
            if ((code != null && TRANSIENT.contains(code)) || status >= 500 || status == 429 || status == 408
                    || s.isThrottlingException()) {
                return new ProvisioningException(ErrorCode.SOURCE_UNAVAILABLE,
                        "S3 server unavailable " + action + " " + target + " (retryable)" + detail, e);
            }
            return new ProvisioningException(ErrorCode.SOURCE_UNAVAILABLE,
                    "S3 server refused " + action + " " + target + detail, e);
        }
        if (e instanceof SdkClientException c && c.getMessage() != null
                && c.getMessage().startsWith("Unable to load credentials")) {
            return new ProvisioningException(ErrorCode.ACCESS_DENIED,
                    "no S3 credentials found " + action + " " + target + ": " + c.getMessage(), e);
        }
        // Connection refused or reset, timeouts, TLS failures: the engine retries these.
        return new ProvisioningException(ErrorCode.SOURCE_UNAVAILABLE,
                "cannot reach S3 " + action + " " + target + " (retryable): " + rootMessage(e), e);
    }

    static String rootMessage(Throwable e) {
        Throwable t = e;
        while (t.getCause() != null && t.getCause() != t) {
            t = t.getCause();
        }
        return t == e ? String.valueOf(e.getMessage()) : e.getMessage() + " (" + t + ")";
    }
}
