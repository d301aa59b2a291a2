package org.volprov.source;

import java.util.Locale;
import java.util.Optional;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.volprov.ImageRef;

/**
 * Parses the content of a {@code <key>.sha256} object: a bare 64-hex digest or a {@code sha256sum}
 * line ({@code <digest>  <name>} or {@code <digest> *<name>}), case-insensitive, surrounding white
 * space ignored. Anything else is "no published checksum".
 */
public final class PublishedChecksum {
    /** How much of a {@code .sha256} object a source reads: a larger one holds no usable digest. */
    public static final int MAX_SIBLING_BYTES = 4096;
    private static final Logger LOG = LoggerFactory.getLogger(PublishedChecksum.class);
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

    /**
     * The digest in a sibling object's content, read as at most {@code MAX_SIBLING_BYTES + 1} bytes.
     * Warns, and returns empty, when the content is too large or holds no digest: the image is then
     * treated as having no published checksum, never as an error.
     */
    public static Optional<String> fromSibling(ImageRef sibling, byte[] content) {
        if (content.length > MAX_SIBLING_BYTES) {
            LOG.warn("{} is larger than {} bytes; treating the image as having no published checksum", sibling,
                    MAX_SIBLING_BYTES);
            return Optional.empty();
        }
        Optional<String> digest = parse(new String(content, java.nio.charset.StandardCharsets.UTF_8));
        if (digest.isEmpty()) {
            LOG.warn("{} holds no SHA-256 digest; treating the image as having no published checksum", sibling);
        }
        return digest;
    }

    /** Whether {@code digest} is 64 lower-case hex characters. */
    public static boolean isDigest(String digest) {
        return digest != null && digest.length() == 64 && HEX64.matcher(digest).matches()
                && digest.equals(digest.toLowerCase(Locale.ROOT));
    }
}
