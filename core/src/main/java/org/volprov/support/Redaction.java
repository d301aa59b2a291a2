package org.volprov.support;

import java.util.regex.Pattern;

/**
 * Masks secrets in text that may reach a log, an exception or a job's error message: the password of
 * a URI's user info ({@code redis://user:secret@host}, {@code qemu+ssh://root:secret@hv/system},
 * {@code jdbc:postgresql://u:secret@db/x}) and the value of password-like parameters
 * ({@code password=}, {@code sslpassword=}, {@code pwd=}, {@code ...secret=}, {@code ...token=},
 * {@code X-Amz-Signature=}), in query strings and JDBC property lists alike. Works on free text
 * (a library's error message that echoes a URI) as on a single URI. Stateless and thread-safe.
 *
 * <p>It errs on the side of masking: a URI whose path holds an {@code @} after a port loses the
 * port and path up to it in the redacted form. Text that does not parse as a URI is scanned all the
 * same, which is why callers pass the raw input rather than a parsed form.
 */
public final class Redaction {
    /** What stands in for a removed secret. */
    public static final String MASK = "****";

    // [scheme:]//user:password@ -- the password may hold anything but white space (an unencoded '/'
    // or '@' too, as users type them); the match ends at the last '@' of the run.
    private static final Pattern USER_INFO =
            Pattern.compile("((?:[A-Za-z][A-Za-z0-9+.-]*:)?//[^/?#@\\s:]*):[^\\s]*@");
    private static final Pattern SECRET_PARAMETER = Pattern.compile(
            "(?i)\\b((?:[\\w.-]*(?:password|passwd|secret|token|signature)|pwd|pass)\\s*=\\s*)[^&;\\s,)\"']*");

    private Redaction() {
    }

    /**
     * {@code cause} itself when no message in its chain holds a secret; otherwise a chain of
     * stand-ins with the same classes (named in the message), redacted messages and the same stack
     * traces. For a library's exception kept as a cause that quotes a URI, password and all: the
     * chain is printed when the failure is logged.
     */
    public static Throwable redactedCause(Throwable cause) {
        boolean secret = false;
        for (Throwable t = cause; t != null && !secret; t = t.getCause() == t ? null : t.getCause()) {
            String m = t.getMessage();
            secret = m != null && !m.equals(redact(m));
        }
        return secret ? standIn(cause, 0) : cause;
    }

    private static Throwable standIn(Throwable t, int depth) {
        Throwable cause = t.getCause() == null || t.getCause() == t || depth > 16 ? null : standIn(t.getCause(), depth + 1);
        RuntimeException s = new RuntimeException(t.getClass().getName() + ": " + redact(t.getMessage()), cause);
        s.setStackTrace(t.getStackTrace());
        return s;
    }

    /** {@code text} with every password and password-like parameter value replaced by {@link #MASK}; null stays null. */
    public static String redact(String text) {
        if (text == null) {
            return null;
        }
        String s = USER_INFO.matcher(text).replaceAll("$1:" + MASK + "@");
        return SECRET_PARAMETER.matcher(s).replaceAll("$1" + MASK);
    }
}
