package org.volprov.support;

import java.io.IOException;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;

/** Translation of I/O failures into the library's error codes. */
public final class IoErrors {
    private IoErrors() {
    }

    /** Whether {@code e} or one of its causes says the file system is full (ENOSPC or EDQUOT). */
    public static boolean isNoSpace(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (isNoSpaceText(t.getMessage())) {
                return true;
            }
        }
        return false;
    }

    /** Whether a tool's error text says the file system is full. */
    public static boolean isNoSpaceText(String text) {
        return text != null && (text.contains("No space left on device") || text.contains("Disk quota exceeded"));
    }

    /**
     * Throws {@code INSUFFICIENT_SPACE} when {@code e} is a full file system; returns {@code e}
     * otherwise, for the caller to throw.
     */
    public static IOException translate(IOException e, String context) {
        if (isNoSpace(e)) {
            throw new ProvisioningException(ErrorCode.INSUFFICIENT_SPACE, context + ": no space left on device", e);
        }
        return e;
    }
}
