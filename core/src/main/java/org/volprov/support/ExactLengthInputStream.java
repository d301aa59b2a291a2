package org.volprov.support;

import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.util.Objects;

/**
 * Delivers exactly {@code length} bytes or throws: a connection the server closes early must not
 * look like a complete object. Closing before the end aborts the connection instead of draining it,
 * so an abandoned multi-GiB range costs nothing. Not thread-safe, like any stream.
 */
public final class ExactLengthInputStream extends InputStream {
    private final InputStream in;
    private final Runnable abort;
    private final String what;
    private final long length;
    private long remaining;
    private boolean closed;

    /**
     * @param in the response body, positioned at the first byte of the range
     * @param length how many bytes the range holds
     * @param abort drops the underlying connection without reading the rest
     * @param what names the range in error messages
     */
    public ExactLengthInputStream(InputStream in, long length, Runnable abort, String what) {
        this.in = Objects.requireNonNull(in, "in");
        this.length = length;
        this.remaining = length;
        this.abort = Objects.requireNonNull(abort, "abort");
        this.what = what;
    }

    @Override
    public int read() throws IOException {
        byte[] one = new byte[1];
        int n = read(one, 0, 1);
        return n < 0 ? -1 : one[0] & 0xff;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
        Objects.checkFromIndexSize(off, len, b.length);
        if (closed) {
            throw new IOException("stream closed: " + what);
        }
        if (remaining == 0) {
            return -1;
        }
        if (len == 0) {
            return 0;
        }
        int n;
        try {
            n = in.read(b, off, (int) Math.min(len, remaining));
        } catch (IOException e) {
            throw new IOException("reading " + what + " failed after " + (length - remaining) + " of " + length
                    + " bytes: " + e, e);
        }
        if (n < 0) {
            throw new EOFException("connection closed after " + (length - remaining) + " of " + length
                    + " bytes of " + what);
        }
        remaining -= n;
        return n;
    }

    @Override
    public int available() throws IOException {
        return closed ? 0 : (int) Math.min(in.available(), remaining);
    }

    /** Bytes still expected. */
    long remaining() {
        return remaining;
    }

    @Override
    public void close() throws IOException {
        if (closed) {
            return;
        }
        closed = true;
        if (remaining > 0) {
            // Draining the rest to reuse the connection could mean reading gigabytes for nothing.
            try {
                abort.run();
            } catch (RuntimeException ignored) {
                // The connection is being dropped anyway; closing below releases what is left.
            }
        }
        in.close();
    }
}
