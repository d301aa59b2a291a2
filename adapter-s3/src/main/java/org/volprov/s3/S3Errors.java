package org.volprov.s3;

import org.volprov.ProvisioningException;
import org.volprov.source.ObjectStoreReplies;
import software.amazon.awssdk.awscore.exception.AwsServiceException;
import software.amazon.awssdk.core.exception.SdkClientException;
import software.amazon.awssdk.core.exception.SdkServiceException;

/**
 * Translates AWS SDK exceptions into {@link ProvisioningException}s, keeping them as the cause. An
 * error reply is classified by {@link ObjectStoreReplies}, the table the MinIO adapter uses too.
 */
final class S3Errors {

    private S3Errors() {
    }

    static ProvisioningException translate(String action, Object target, Exception e) {
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
            return ObjectStoreReplies.error(S3ImageSource.SERVER, action, target, s.statusCode(), code, serverMessage,
                    s.isThrottlingException(), e);
        }
        if (e instanceof SdkClientException c && c.getMessage() != null
                && c.getMessage().startsWith("Unable to load credentials")) {
            return ObjectStoreReplies.noCredentials(S3ImageSource.SERVER, action, target, e);
        }
        // Connection refused or reset, timeouts, TLS failures, a body cut off: the engine retries these.
        return ObjectStoreReplies.unreachable(S3ImageSource.SERVER, action, target, rootMessage(e), e);
    }

    static String rootMessage(Throwable e) {
        Throwable t = e;
        while (t.getCause() != null && t.getCause() != t) {
            t = t.getCause();
        }
        return t == e ? String.valueOf(e.getMessage()) : e.getMessage() + " (" + t + ")";
    }
}
