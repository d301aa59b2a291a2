package org.volprov.source;

import java.io.InputStream;
import java.util.Objects;
import java.util.Optional;
import org.volprov.ErrorCode;
import org.volprov.ImageRef;
import org.volprov.ProvisioningException;
import org.volprov.support.ExactLengthInputStream;

/**
 * The two reads every S3-compatible image source makes, shared by the S3 and MinIO adapters so
 * that both check their arguments and replies alike: a ranged read of one version of an object,
 * and the read of its {@code .sha256} sibling. The adapter makes the request with its SDK; this
 * class decides what the answer means. Stateless and thread-safe.
 */
public final class ObjectStoreReads {

    /** A request made with an SDK, which may throw whatever that SDK throws. */
    @FunctionalInterface
    public interface Request<T> {
        T send() throws Exception;
    }

    /** Translates what an SDK threw into the engine's exception, keeping it as the cause. */
    @FunctionalInterface
    public interface Translation {
        ProvisioningException translate(Exception e);
    }

    private ObjectStoreReads() {
    }

    /**
     * Checks the arguments of {@code ImageSource.open}.
     *
     * @throws NullPointerException when {@code ref} or {@code etag} is null
     * @throws IllegalArgumentException when offset or length is negative or they overflow
     */
    public static void checkRangeArguments(ImageRef ref, String etag, long offset, long length) {
        Objects.requireNonNull(ref, "ref");
        Objects.requireNonNull(etag, "etag");
        if (offset < 0 || length < 0 || offset > Long.MAX_VALUE - length) {
            throw new IllegalArgumentException("offset and length must not be negative, got " + offset + ", " + length);
        }
    }

    /** The {@code Range} header of a read of {@code length > 0} bytes at {@code offset}. */
    public static String rangeHeader(long offset, long length) {
        return "bytes=" + offset + "-" + (offset + length - 1);
    }

    /** Names a ranged read in messages: the object and its range. */
    public static String describeRange(ImageRef ref, long offset, long length) {
        return ref + " [" + rangeHeader(offset, length) + "]";
    }

    /**
     * The body of a ranged read, once its reply is checked: the ETag must be the one asked for
     * and the range must start at {@code offset} ({@link ObjectStoreReplies#checkEtag},
     * {@link ObjectStoreReplies#checkRange}), and the server must not state fewer bytes than were
     * asked for. The stream delivers exactly {@code length} bytes or throws.
     *
     * @param answeredEtag the reply's {@code ETag}, or null
     * @param contentRange the reply's {@code Content-Range}, or null
     * @param contentLength the length the reply states, or null when it states none
     * @param abort drops the connection without reading the rest of the body; run here when the
     *     reply is refused, and by the stream when it is closed early
     * @throws ProvisioningException {@code IMAGE_CHANGED} or {@code SOURCE_REFUSED} for a reply of
     *     another version or range, {@code INVALID_REQUEST} for a range past the end of the object
     */
    public static InputStream checkedRange(String server, String what, String etag, long offset, long length,
            String answeredEtag, String contentRange, Long contentLength, InputStream body, Runnable abort) {
        try {
            ObjectStoreReplies.checkEtag(server, what, etag, answeredEtag);
            ObjectStoreReplies.checkRange(server, what, offset, contentRange);
            if (contentLength != null && contentLength < length) {
                throw new ProvisioningException(ErrorCode.INVALID_REQUEST,
                        "range " + what + " lies past the end of the object (server sent " + contentLength + " bytes)");
            }
        } catch (ProvisioningException e) {
            abort.run();
            throw e;
        }
        return new ExactLengthInputStream(body, length, abort, what);
    }

    /**
     * A length header's value, or null when there is none or it is not a number (no claim, then,
     * that the range is short: {@link ExactLengthInputStream} still counts the bytes).
     */
    public static Long lengthHeader(String value) {
        if (value == null) {
            return null;
        }
        try {
            return Long.parseLong(value.strip());
        } catch (NumberFormatException e) {
            return null;
        }
    }

    /**
     * The published checksum in a sibling object, or empty when there is no sibling. The request
     * must read the whole sibling without a {@code Range} header (a zero-byte object would answer
     * 416), and at most {@link PublishedChecksum#MAX_SIBLING_BYTES} + 1 bytes of it, so that a large
     * one is cut off after the cap and refused.
     *
     * @param read reads the sibling's first bytes
     * @param translate classifies a failure; {@code IMAGE_NOT_FOUND} means no sibling
     */
    public static Optional<String> publishedChecksum(ImageRef sibling, Request<byte[]> read, Translation translate) {
        byte[] content;
        try {
            content = read.send();
        } catch (Exception e) {
            ProvisioningException p = translate.translate(e);
            if (p.code() == ErrorCode.IMAGE_NOT_FOUND) {
                return Optional.empty();
            }
            throw p;
        }
        return PublishedChecksum.fromSibling(sibling, content);
    }
}
