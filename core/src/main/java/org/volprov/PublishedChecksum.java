package org.volprov;

import java.util.Locale;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * Parses the content of a {@code <key>.sha256} object: a bare 64-hex digest or a {@code sha256sum}
 * line ({@code <digest>  <name>} or {@code <digest> *<name>}), case-insensitive, surrounding white
 * space ignored. Anything else is "no published checksum".
 */
public final class PublishedChecksum {
    private static final Pattern HEX64 = Pattern.compile("[0-9a-fA-F]{64}");

    private PublishedChecksum() {
    }

    /** The lower-case digest, or empty when {@code content} is not one of the accepted forms. */
    public static Optional<String> parse(String content) {
        if (content == null) {
            return Optional.empty();
        }
        String trimmed = content.strip();
        if (trimmed.isEmpty()) {
            return Optional.empty();
        }
        String first = trimmed.split("\\s+", 2)[0];
        if (!HEX64.matcher(first).matches()) {
            return Optional.empty();
        }
        if (first.length() != trimmed.length()) {
            // A sha256sum file: "<digest>  <name>" or "<digest> *<name>", on one line.
            String rest = trimmed.substring(first.length());
            if (!Character.isWhitespace(rest.charAt(0)) || rest.strip().isEmpty() || rest.strip().contains("\n")) {
                return Optional.empty();
            }
        }
        return Optional.of(first.toLowerCase(Locale.ROOT));
    }

    /** Whether {@code digest} is 64 lower-case hex characters. */
    public static boolean isDigest(String digest) {
        return digest != null && digest.length() == 64 && HEX64.matcher(digest).matches()
                && digest.equals(digest.toLowerCase(Locale.ROOT));
    }
}
