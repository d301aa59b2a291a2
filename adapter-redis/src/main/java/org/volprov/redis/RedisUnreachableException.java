package org.volprov.redis;

/**
 * Redis could not be reached for one call. Never leaves the adapter: every caller catches it and
 * goes on with local-only coordination.
 */
final class RedisUnreachableException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    RedisUnreachableException(String message, Throwable cause) {
        // No stack trace: while Redis is down this is thrown on every call, as control flow.
        super(message, cause, false, false);
    }
}
