package org.volprov;

import java.util.Objects;

/**
 * The one exception root of the library. Adapters translate vendor exceptions into it and keep
 * the original as the cause.
 */
public class ProvisioningException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final ErrorCode code;

    public ProvisioningException(ErrorCode code, String message) {
        this(code, message, null);
    }

    public ProvisioningException(ErrorCode code, String message, Throwable cause) {
        super(message, cause);
        this.code = Objects.requireNonNull(code, "code");
    }

    public ErrorCode code() {
        return code;
    }

    /** Shorthand for a rejected request field. */
    public static ProvisioningException invalid(String field, String rule) {
        return new ProvisioningException(ErrorCode.INVALID_REQUEST, field + ": " + rule);
    }

    @Override
    public String toString() {
        return getClass().getName() + ": [" + code + "] " + getMessage();
    }
}
