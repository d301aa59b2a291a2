package org.volprov.benchmarks;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * {@code key=value} lines, one per entry, nothing escaped: the files the runner script reads with
 * {@code grep} and {@code cut} as well as from Java. {@code java.util.Properties} would write URLs
 * as {@code http\://...}, which a shell cannot use as is.
 */
final class KeyValues {
    private KeyValues() {
    }

    static Map<String, String> read(Path file) {
        Map<String, String> m = new LinkedHashMap<>();
        try {
            for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
                int eq = line.indexOf('=');
                if (eq > 0 && !line.startsWith("#")) {
                    m.put(line.substring(0, eq).strip(), line.substring(eq + 1).strip());
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file, e);
        }
        return m;
    }

    /** Writes through a temp file and a rename, so that a reader polling for the file never sees half of it. */
    static void write(Path file, Map<String, String> values) {
        StringBuilder b = new StringBuilder();
        values.forEach((k, v) -> {
            if (k.contains("=") || k.contains("\n") || v.contains("\n")) {
                throw new IllegalArgumentException("cannot store " + k);
            }
            b.append(k).append('=').append(v).append('\n');
        });
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        try {
            Files.writeString(tmp, b, StandardCharsets.UTF_8);
            Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + file, e);
        }
    }

    static String require(Map<String, String> m, String key, Path from) {
        String v = m.get(key);
        if (v == null || v.isEmpty()) {
            throw new IllegalStateException(from + " has no " + key);
        }
        return v;
    }
}
