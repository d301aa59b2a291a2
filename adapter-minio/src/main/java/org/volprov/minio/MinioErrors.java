package org.volprov.minio;

import io.minio.errors.ErrorResponseException;
import io.minio.errors.InvalidResponseException;
import io.minio.errors.MinioException;
import io.minio.errors.ServerException;
import java.io.IOException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;
import org.volprov.source.ObjectStoreReplies;

/**
 * Translates MinIO SDK exceptions into {@link ProvisioningException}s, keeping them as the cause. An
 * error reply is classified by {@link ObjectStoreReplies}, the table the S3 adapter uses too.
 */
final class MinioErrors {
    /** The SDK states the status of a reply that is not S3 XML (a proxy's error page) only in its message. */
    private static final Pattern NON_XML_STATUS = Pattern.compile("Response code: (\\d{3})");

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
            return ObjectStoreReplies.error(MinioImageSource.SERVER, action, target, status, code, serverMessage,
                    false, e);
        }
        if (e instanceof ServerException s) {
            return ObjectStoreReplies.error(MinioImageSource.SERVER, action, target, s.statusCode(), null,
                    s.getMessage(), false, e);
        }
        if (e instanceof InvalidResponseException) {
            Matcher m = NON_XML_STATUS.matcher(String.valueOf(e.getMessage()));
            int status = m.find() ? Integer.parseInt(m.group(1)) : 0;
            return ObjectStoreReplies.error(MinioImageSource.SERVER, action, target, status, null,
                    "a reply that is not S3 XML", false, e);
        }
        if (e instanceof IOException) {
            // Connection refused or reset, timeouts, TLS failures: the engine retries these.
            return ObjectStoreReplies.unreachable(MinioImageSource.SERVER, action, target, e.toString(), e);
        }
        if (e.getClass().getName().startsWith("io.minio.credentials.")
                || (e instanceof IllegalStateException && String.valueOf(e.getMessage()).contains("credential"))) {
            return ObjectStoreReplies.noCredentials(MinioImageSource.SERVER, action, target, e);
        }
        return new ProvisioningException(ErrorCode.SOURCE_UNAVAILABLE,
                "MinIO request failed " + action + " " + target + ": " + e, e);
    }
}
