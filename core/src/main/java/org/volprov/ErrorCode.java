package org.volprov;

/**
 * Stable codes carried by every {@link ProvisioningException}. Callers branch on these, never on
 * messages; new codes may be added, existing ones never change meaning.
 */
public enum ErrorCode {
    /** A request field broke a rule; the message names the field. Nothing was created. */
    INVALID_REQUEST(false),
    /** The bucket or the object does not exist. */
    IMAGE_NOT_FOUND(false),
    /** The source refused the credentials or the access. */
    ACCESS_DENIED(false),
    /** The downloaded bytes do not hash to the published SHA-256. */
    CHECKSUM_MISMATCH(false),
    /**
     * The engine requires a published checksum ({@code Provisioner.Builder.requirePublishedChecksum})
     * and the image has none it can read: the {@code <key>.sha256} sibling is absent, refused by the
     * source's policy, or holds no digest. Not retried.
     */
    CHECKSUM_MISSING(false),
    /** The source could not be reached or answered with a server error; retried before it is reported. */
    SOURCE_UNAVAILABLE(true),
    /**
     * The source refused the request for good, or answered in a way that cannot be used safely:
     * HTTP 400, 405, 411, 413, 414, 431, 501, an archived object ({@code InvalidObjectState}), a
     * server that ignores ranged reads, an object whose size or ETag the server does not state.
     * Asking again gets the same answer, so it is not retried.
     */
    SOURCE_REFUSED(false),
    /**
     * The object changed while it was read: a read conditional on the ETag that {@code stat}
     * returned was refused (HTTP 412) or answered with another ETag. Sources throw it; it is never
     * retried as such. The engine drops what it downloaded and starts over from a fresh
     * {@code stat} a few times; a job fails with this code when the object kept changing.
     */
    IMAGE_CHANGED(false),
    /** The cache or the storage pool has no room for the image or the volume. */
    INSUFFICIENT_SPACE(false),
    /** A volume with that name exists and its size does not fit the request. */
    VOLUME_CONFLICT(false),
    /** The image's virtual size is larger than the requested volume. */
    VOLUME_TOO_SMALL(false),
    /** Another job is already working on that volume. */
    VOLUME_BUSY(false),
    /** The image is of a kind this library does not provision (backing file, encryption, unknown format). */
    UNSUPPORTED_IMAGE(false),
    /** The volume backend, the converter or the job store failed. */
    BACKEND_FAILURE(false),
    /**
     * The volume, read back after it was written and flushed ({@code Provisioner.Builder.verifyWrittenVolume}),
     * does not hold the decoded image followed by zeros: the write path or the storage under it lost
     * or changed bytes. The volume was rolled back like after any failure.
     */
    VOLUME_VERIFY_FAILED(false),
    /** The queue of waiting jobs is full; submit again later. */
    QUEUE_FULL(false),
    /** The job was cancelled. */
    CANCELLED(false),
    /** The job ran longer than its timeout. */
    TIMED_OUT(false),
    /** The process running the job stopped before the job ended. */
    INTERRUPTED(false);

    private final boolean retryable;

    ErrorCode(boolean retryable) {
        this.retryable = retryable;
    }

    /** Whether the engine retries an operation that failed with this code. */
    public boolean retryable() {
        return retryable;
    }
}
