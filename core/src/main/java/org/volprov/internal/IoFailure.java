package org.volprov.internal;

import java.io.IOException;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;
import org.volprov.support.IoErrors;

/** Turns a local I/O failure into {@code INSUFFICIENT_SPACE} or {@code BACKEND_FAILURE}. */
public final class IoFailure {
    private IoFailure() {
    }

    public static ProvisioningException of(String what, Throwable cause) {
        if (cause instanceof ProvisioningException pe) {
            return pe;
        }
        if (IoErrors.isNoSpace(cause)) {
            return new ProvisioningException(ErrorCode.INSUFFICIENT_SPACE, what + ": no space left on device", cause);
        }
        String m = cause instanceof IOException && cause.getMessage() != null ? cause.getMessage() : String.valueOf(cause);
        return new ProvisioningException(ErrorCode.BACKEND_FAILURE, what + " failed: " + m, cause);
    }
}
